"""`llmroute bench`: how fast each candidate (or a task's whole route) answers, and the route
order that suggests. The plan and the progress go to stderr, the results to stdout."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmroute.cli.options import (
    ConfigOpt,
    DeadlineOpt,
    MaxTokensOpt,
    TimeoutOpt,
    TtftOpt,
    VerboseOpt,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from llmroute.bench.options import BenchOptions
    from llmroute.bench.outcome import Outcome
    from llmroute.bench.plan import Plan, Spend
    from llmroute.bench.target import Selection, Target
    from llmroute.cli.report import Report
    from llmroute.config import Config
    from llmroute.pools import Pool

DEFAULT_PROMPT = "Count from 1 to 20, separated by spaces. Reply with the numbers only."


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
    from llmroute.bench.options import BenchOptions
    from llmroute.cli.boundary import guarded
    from llmroute.cli.report import Report

    options = BenchOptions(
        task=task, models=tuple(model or ()), all_tasks=all_tasks, route=route,
        requests=requests, concurrency=concurrency, prompt=prompt, prompt_file=prompt_file,
        max_tokens=max_tokens, rank_by=rank_by.value, max_share=max_share, yes=yes,
        json_output=json_output, csv_output=csv_output, quiet=quiet, config=config,
        timeout=timeout, deadline=deadline, ttft_timeout=ttft_timeout,
    )  # fmt: skip
    report = Report.for_stderr(quiet=quiet, verbose=verbose)
    raise typer.Exit(guarded(lambda: _run(options, report), report, json_output=json_output))


def _run(o: BenchOptions, report: Report) -> int:
    """Plan, ask when the plan is costly, measure, then print the outcome."""
    from llmroute.bench.target import select
    from llmroute.cli import bench_view as view
    from llmroute.environment import load_environment, locate_config
    from llmroute.errors import UsageError
    from llmroute.pools import build_pools

    if o.json_output and o.csv_output:
        raise UsageError("--json and --csv both print to stdout: choose one")
    prompt = read_bench_prompt(o.prompt, o.prompt_file)
    env = load_environment()
    config = locate_config(o.config, env)
    pools = build_pools(config, env)
    chosen = select(config, pools, task=o.task, models=o.models, all_tasks=o.all_tasks,
                    route=o.route)  # fmt: skip
    plan = _plan(config, env, pools, chosen.targets, o.requests)
    if not o.quiet:
        report.console.print(view.plan_text(chosen, plan, o.requests, o.concurrency,
                                            len(prompt), o.max_share), soft_wrap=True)  # fmt: skip
    if plan.over(o.max_share) and not o.yes and not _confirmed(plan, o.max_share):
        report.error("bench declined: nothing was sent")
        return 1
    outcome = _measure(o, report, config, env, chosen, plan, prompt)
    _print(o, report, outcome)
    return 0 if outcome.answered else 1


def _measure(
    o: BenchOptions,
    report: Report,
    config: Config,
    env: Mapping[str, str],
    chosen: Selection,
    plan: Plan,
    prompt: str,
) -> Outcome:
    import asyncio
    import time

    from llmroute.bench.outcome import Outcome
    from llmroute.bench.ranking import MIN_SUCCESS, rank, recommend
    from llmroute.bench.runner import BenchSpec, run_bench
    from llmroute.cli import bench_view as view

    spec = BenchSpec(
        chosen.targets, o.requests, o.concurrency, [{"role": "user", "content": prompt}],
        {"max_tokens": o.max_tokens} if o.max_tokens else {},
        o.deadline, o.timeout, o.ttft_timeout,
    )  # fmt: skip
    started = time.perf_counter()
    with view.progress(report.console, enabled=not o.quiet) as listener:
        summaries = asyncio.run(run_bench(config, env, spec, listener))
    ranked = rank(summaries, o.rank_by, MIN_SUCCESS)
    advice = [recommend(t, [str(e) for e in config.tasks[t]], ranked) for t in chosen.tasks]
    return Outcome(
        o.requests, o.concurrency, len(prompt), o.rank_by, MIN_SUCCESS, ranked,
        [a for a in advice if len(a.unranked) < len(a.configured)], plan, chosen.skipped,
        time.perf_counter() - started,
    )  # fmt: skip


def _print(o: BenchOptions, report: Report, outcome: Outcome) -> None:
    import json

    from llmroute.cli import bench_view as view
    from llmroute.cli.report import make_console

    if o.json_output:
        sys.stdout.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
    elif o.csv_output:
        sys.stdout.write(outcome.to_csv())
    else:
        view.print_outcome(make_console(stderr=False), outcome)
        if not o.quiet:
            view.print_waits(report.console, outcome)


def read_bench_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    from llmroute.errors import UsageError

    if prompt is not None and prompt_file is not None:
        raise UsageError("give the prompt with --prompt or --prompt-file, not both")
    if prompt_file is not None:
        try:
            prompt = prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the prompt file {prompt_file}: {exc}") from None
    text = DEFAULT_PROMPT if prompt is None else prompt
    if not text.strip():
        raise UsageError("the prompt is empty: give some text with --prompt or --prompt-file")
    return text


def _plan(
    config: Config,
    env: Mapping[str, str],
    pools: Mapping[str, Pool],
    targets: Sequence[Target],
    requests: int,
) -> Plan:
    """The spend, checked against what the shared state says is left of each budget."""
    import time

    from llmroute.bench.plan import plan_spend
    from llmroute.state import open_store, state_url

    store = open_store(state_url(config, env))
    try:
        now = time.time()
        return plan_spend(config, pools, targets, requests, store.snapshot(now).usage, now)
    finally:
        store.close()


def _confirmed(plan: Plan, share: float) -> bool:
    from llmroute.errors import UsageError

    over = plan.over(share)
    if not interactive():
        raise UsageError(
            f"bench would spend more than {share:.0%} of what is left of a daily budget "
            f"({_phrases(over)}); pass --yes to go ahead, or lower -n"
        )
    return typer.confirm(f"Spend {_phrases(over)}?", default=False, err=True)


def _phrases(over: list[Spend]) -> str:
    return "; ".join(s.phrase() for s in over)


def interactive() -> bool:
    """Someone can answer a question: stdin and stderr are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()
