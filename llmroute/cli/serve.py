"""`llmroute serve`: one router for every client, behind OpenAI's HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.options import ConfigOpt, LogContentOpt, LogOptions, NoLogOpt, VerboseOpt

DEFAULT_PORT = 4141


def serve(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on (another than loopback needs a token)."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = DEFAULT_PORT,
    config: ConfigOpt = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="LLMROUTE_SERVER_TOKEN",
            show_envvar=True,
            help="Require `Authorization: Bearer TOKEN` from clients.",
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", help="State store for this gateway (e.g. redis://host:6379/0 for replicas)."
        ),
    ] = None,
    drain: Annotated[
        int,
        typer.Option(
            "--drain", min=0, help="Seconds requests in flight may finish after SIGTERM/Ctrl-C."
        ),
    ] = 10,
    max_body_mb: Annotated[
        int, typer.Option("--max-body-mb", min=1, help="Largest request body accepted, in MiB.")
    ] = 20,
    verbose: VerboseOpt = 0,
    no_log: NoLogOpt = False,
    log_content: LogContentOpt = None,
) -> None:
    """Serve the router as an OpenAI-compatible API: POST /v1/chat/completions (streamed and
    not), GET /v1/models, GET /health, GET /v1/llmroute/state, GET /v1/llmroute/usage.

    A client's `model` is a task, a pinned provider:model, or absent (the default task); every
    other field passes through. Point any OpenAI client at http://HOST:PORT/v1. `llmroute ask`
    finds a local gateway by itself (see `ask --help`). One access-log line per request goes
    to stderr; -v adds every attempt. Requests are logged (see `llmroute logs`) without their
    text unless --log-content or `[settings] log_content = true`: a team's prompts pass here.
    """
    from llmroute.cli.serve_run import ServeOptions, run_serve

    options = ServeOptions(
        host=host, port=port, config=config, token=token or None, state=state, drain=drain,
        max_body=max_body_mb * 1024 * 1024, verbose=verbose,
        log=LogOptions(off=no_log, content=log_content),
    )  # fmt: skip
    raise typer.Exit(run_serve(options))
