"""Running `llmroute bench`: plan the spend, ask first when it is costly, measure, print."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llmroute.bench.plan import Plan, Spend, plan_spend
from llmroute.bench.target import Selection, select
from llmroute.cli.boundary import guarded
from llmroute.cli.options import LogOptions
from llmroute.cli.report import Report, make_console
from llmroute.errors import UsageError
from llmroute.setup import Setup, open_setup

if TYPE_CHECKING:
    from llmroute.bench.outcome import Outcome

DEFAULT_PROMPT = "Count from 1 to 20, separated by spaces. Reply with the numbers only."


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """What the user asked of a bench, as given on the command line."""

    task: str | None
    models: tuple[str, ...]
    all_tasks: bool
    route: str | None
    requests: int
    concurrency: int
    prompt: str | None
    prompt_file: Path | None
    max_tokens: int | None
    rank_by: str
    max_share: float
    yes: bool
    json_output: bool
    csv_output: bool
    quiet: bool
    config: Path | None
    timeout: float | None
    deadline: float | None
    ttft_timeout: float | None
    verbose: int
    log: LogOptions = field(default_factory=LogOptions)


def run_bench_command(options: BenchOptions) -> int:
    report = Report.for_stderr(quiet=options.quiet, verbose=options.verbose)
    return guarded(lambda: _run(options, report), report, json_output=options.json_output)


def _run(o: BenchOptions, report: Report) -> int:
    """Plan, ask when the plan is costly, measure, then print the outcome."""
    from llmroute.cli import bench_view as view

    if o.json_output and o.csv_output:
        raise UsageError("--json and --csv both print to stdout: choose one")
    prompt = read_bench_prompt(o.prompt, o.prompt_file)
    setup = open_setup(o.config)
    try:
        chosen = select(setup.config, setup.pools, task=o.task, models=o.models,
                        all_tasks=o.all_tasks, route=o.route)  # fmt: skip
        plan = _plan(setup, chosen, o.requests)
    finally:
        setup.close()  # the measuring router opens the store again, for itself
    if not o.quiet:
        report.console.print(view.plan_text(chosen, plan, o.requests, o.concurrency,
                                            len(prompt), o.max_share), soft_wrap=True)  # fmt: skip
    if plan.over(o.max_share) and not o.yes and not _confirmed(plan, o.max_share):
        report.error("bench declined: nothing was sent")
        return 1
    outcome = _measure(o, report, setup, chosen, plan, prompt)
    _print(o, report, outcome)
    return 0 if outcome.answered else 1


def _measure(
    o: BenchOptions, report: Report, setup: Setup, chosen: Selection, plan: Plan, prompt: str
) -> Outcome:
    import asyncio

    from llmroute.bench.outcome import Outcome
    from llmroute.bench.ranking import MIN_SUCCESS, rank, recommend
    from llmroute.bench.runner import BenchSpec, run_bench
    from llmroute.cli import bench_view as view

    spec = BenchSpec(
        targets=chosen.targets, requests=o.requests, concurrency=o.concurrency,
        messages=[{"role": "user", "content": prompt}],
        params={"max_tokens": o.max_tokens} if o.max_tokens else {},
        deadline=o.deadline, timeout=o.timeout, ttft_timeout=o.ttft_timeout,
    )  # fmt: skip
    started = time.perf_counter()
    with view.progress(report.console, enabled=not o.quiet) as listener:
        summaries = asyncio.run(
            run_bench(setup.config, setup.env, spec, listener, log=o.log.policy("bench"))
        )
    ranked = rank(summaries, o.rank_by, MIN_SUCCESS)
    tasks = setup.config.tasks
    advice = [recommend(t, [str(e) for e in tasks[t]], ranked) for t in chosen.tasks]
    return Outcome(
        requests=o.requests, concurrency=o.concurrency, prompt_chars=len(prompt),
        rank_by=o.rank_by, min_success=MIN_SUCCESS, ranked=ranked,
        recommendations=[a for a in advice if len(a.unranked) < len(a.configured)],
        plan=plan, skipped=chosen.skipped, elapsed_s=time.perf_counter() - started,
    )  # fmt: skip


def _print(o: BenchOptions, report: Report, outcome: Outcome) -> None:
    import json

    from llmroute.cli import bench_view as view

    if o.json_output:
        sys.stdout.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
    elif o.csv_output:
        sys.stdout.write(outcome.to_csv())
    else:
        view.print_outcome(make_console(stderr=False), outcome)
        if not o.quiet:
            view.print_waits(report.console, outcome)
    if not o.log.off:
        report.usage_hint()


def read_bench_prompt(prompt: str | None, prompt_file: Path | None) -> str:
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


def _plan(setup: Setup, chosen: Selection, requests: int) -> Plan:
    """The spend, checked against what the shared state says is left of each budget."""
    now = time.time()
    usage = setup.store.snapshot(now).usage
    return plan_spend(setup.config, setup.pools, chosen.targets, requests, usage, now)


def _confirmed(plan: Plan, share: float) -> bool:
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
