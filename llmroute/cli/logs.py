"""`llmroute logs`: what was asked, who answered, how it went; and `logs prune`."""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.options import ConfigOpt

SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="From then on: 2h, 7d, today, yesterday, 2026-12-01."),
]

logs_app = typer.Typer(invoke_without_command=True)


@logs_app.callback()
def logs(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("-n", "--count", min=0, help="The last N requests (0: all).")
    ] = 10,
    task: Annotated[
        str | None, typer.Option("-t", "--task", help="Only this task (or pinned provider:model).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only requests that tried this provider.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Only requests that tried this key (groq#2).")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only requests without a whole answer.")
    ] = False,
    since: SinceOpt = None,
    query: Annotated[
        str | None, typer.Option("-q", "--query", help="Only prompts or answers with these words.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON object per line.")] = False,
    table: Annotated[bool, typer.Option("--table", help="A table, one row each.")] = False,
    last: Annotated[
        bool, typer.Option("--last", help="Only the last answer's text, for pipes.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Show the request log: what was asked, who answered, how it went.

    The last requests, oldest first: when, from which command, the task, who answered (key
    alias and model), how it ended, timings, tokens, the attempts, the prompt and the answer
    (unless their text was not logged: `serve`, --no-log-content, `log_content = false`).

    The log is beside the state file (or in the user state directory; LLMROUTE_LOG names
    another file). Keys are never in it, only their aliases.
    """
    if ctx.invoked_subcommand is not None:
        return
    from llmroute.cli.logs_run import LogsOptions, run_logs

    options = LogsOptions(
        count=count, task=task, provider=provider, key=key, failed=failed, since=since,
        query=query, json_output=json_output, jsonl=jsonl, table=table, last=last,
        config=config,
    )  # fmt: skip
    raise typer.Exit(run_logs(options))


@logs_app.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", help="Forget requests older than this (default: log_retention, 30d)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Forget old requests now (it also happens by itself, at most once an hour)."""
    from llmroute.cli.logs_run import run_prune

    raise typer.Exit(run_prune(older_than=older_than, config=config))
