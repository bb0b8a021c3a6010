"""`llmroute ask`: one prompt in, one answer on stdout, the story on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TaskOpt = Annotated[
    str | None, typer.Option("-t", "--task", help="Task whose route to use (see the config).")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("-m", "--model", help="Pin one provider:model, bypassing the task's route."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: $LLMROUTE_CONFIG, ./routes.toml, XDG)."),
]


def ask(
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt. Piped stdin comes first, then this.")
    ] = None,
    task: TaskOpt = None,
    model: ModelOpt = None,
    system: Annotated[str | None, typer.Option("-s", "--system", help="System prompt.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0.0)] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1)] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "-o", "--option", metavar="KEY VALUE", help="Extra request parameter (repeatable)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (answer and attempts).")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer at once, when it is complete.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No report on stderr.")] = False,
    config: ConfigOpt = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="Seconds per upstream attempt.")
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option("--deadline", min=0.1, help="Seconds for the whole request (default 60)."),
    ] = None,
    ttft_timeout: Annotated[
        float | None,
        typer.Option(
            "--ttft-timeout", min=0.1, help="Streaming: seconds to the first token (default 20)."
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="Log every attempt (-vv: debug).")
    ] = 0,
) -> None:
    """Ask once: the answer streams to stdout, the report (who answered, fallbacks) to stderr.

    Until the first token arrives, a failing provider is replaced by the next one unseen. If
    the answer breaks after that, the text so far stays, the break is reported, exit code 1.
    """
    from llmroute.cli.run import AskRequest, run_ask

    request = AskRequest(
        prompt=prompt,
        task=model or task,
        system=system,
        params={
            **({"temperature": temperature} if temperature is not None else {}),
            **({"max_tokens": max_tokens} if max_tokens is not None else {}),
        },
        options=[tuple(pair) for pair in option or []],  # type: ignore[misc]
        json_output=json_output,
        stream=not (no_stream or json_output),
        quiet=quiet,
        config=config,
        timeout=timeout,
        deadline=deadline,
        ttft_timeout=ttft_timeout,
        verbose=verbose,
    )
    raise typer.Exit(run_ask(request))
