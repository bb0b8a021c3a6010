"""`llmroute bench`: how fast each candidate (or a task's whole route) answers, and the route
order that suggests. The plan and the progress go to stderr, the results to stdout."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from llmroute.cli.options import (
    ConfigOpt,
    DeadlineOpt,
    LogContentOpt,
    LogOptions,
    MaxTokensOpt,
    NoLogOpt,
    TimeoutOpt,
    TtftOpt,
    VerboseOpt,
)


class RankBy(StrEnum):
    latency = "latency"
    ttft = "ttft"


def bench(
    task: Annotated[
        str | None,
        typer.Option("-t", "--task", help="Measure every entry of this task's route."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("-m", "--model", help="Measure this provider:model (repeatable)."),
    ] = None,
    all_tasks: Annotated[
        bool, typer.Option("--all", help="Measure every entry of every task.")
    ] = False,
    route: Annotated[
        str | None,
        typer.Option("--route", metavar="TASK", help="Also measure the whole router on this task."),
    ] = None,
    requests: Annotated[
        int, typer.Option("-n", "--requests", min=1, help="Requests per target.")
    ] = 10,
    concurrency: Annotated[
        int, typer.Option("-c", "--concurrency", min=1, help="Requests in flight at once.")
    ] = 2,
    prompt: Annotated[
        str | None, typer.Option("-p", "--prompt", help="The prompt (default: a short count).")
    ] = None,
    prompt_file: Annotated[
        Path | None, typer.Option("--prompt-file", help="Read the prompt from this file.")
    ] = None,
    max_tokens: MaxTokensOpt = None,
    rank_by: Annotated[
        RankBy,
        typer.Option("--rank-by", help="Rank by median latency or time to first token."),
    ] = RankBy.latency,
    max_share: Annotated[
        float,
        typer.Option(
            "--max-share",
            min=0.0,
            max=1.0,
            help="Ask first when a key would spend more than this share of what is left "
            "of a known daily budget.",
        ),
    ] = 0.1,
    yes: Annotated[
        bool, typer.Option("-y", "--yes", help="Do not ask before spending a daily budget.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    csv_output: Annotated[
        bool, typer.Option("--csv", help="Print CSV: a header, one row per target.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No plan or progress on stderr.")
    ] = False,
    config: ConfigOpt = None,
    timeout: TimeoutOpt = None,
    deadline: DeadlineOpt = None,
    ttft_timeout: TtftOpt = None,
    verbose: VerboseOpt = 0,
    no_log: NoLogOpt = False,
    log_content: LogContentOpt = None,
) -> None:
    """Measure candidates: N streamed requests each, C at a time, through the router.

    Targets: the entries of -t TASK (with the fallback task), -m provider:model entries, or
    --all tasks' entries; with none of these, the default task's. An entry is measured pinned
    through the router, so its pool's keys take turns and pacing and cooldowns hold. --route
    TASK measures the whole router on TASK as a user gets it (fallbacks and waits included).

    Per target: answered and failed requests by kind, latency p50/p95/max and time to first
    token p50/p95 (of answered requests; for an entry, counted from when its answering
    request was sent, not from a wait for budget), output tokens per second of request time,
    and 429 answers. Candidates that answered at least 90% of their requests are ranked by
    median latency (or --rank-by ttft); for -t/--all, the ranking suggests a route order.

    Before it starts, bench states how many requests each key will get (about N/keys, as a
    pool rotates; a route spends on its first entry, more on fallbacks). When that exceeds
    --max-share of what is left of a configured daily budget ("1000/day"), it asks first;
    without a terminal it stops (exit 2) unless --yes is given.

    Results go to stdout (a table, --json or --csv); the plan and a progress bar (only on a
    terminal) to stderr. Exit code 0 when some request was answered, 1 when none was or the
    spend was declined, 2 for usage and configuration errors.
    """
    from llmroute.cli.bench_run import BenchOptions, run_bench_command

    options = BenchOptions(
        task=task, models=tuple(model or ()), all_tasks=all_tasks, route=route,
        requests=requests, concurrency=concurrency, prompt=prompt, prompt_file=prompt_file,
        max_tokens=max_tokens, rank_by=rank_by.value, max_share=max_share, yes=yes,
        json_output=json_output, csv_output=csv_output, quiet=quiet, config=config,
        timeout=timeout, deadline=deadline, ttft_timeout=ttft_timeout, verbose=verbose,
        log=LogOptions(off=no_log, content=log_content),
    )  # fmt: skip
    raise typer.Exit(run_bench_command(options))
