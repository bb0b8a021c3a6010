"""What `llmroute bench` shows: the plan, a progress bar, the results table, a latency chart
and the suggested route order."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from llmroute.bench.outcome import Outcome
from llmroute.bench.plan import Plan, TargetSpend
from llmroute.bench.ranking import TTFT, Ranked, Recommendation
from llmroute.bench.stats import Sample
from llmroute.bench.target import Selection, Target

CHART_WIDTH = 32
EIGHTHS = " ▏▎▍▌▋▊▉"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.2f}s" if value < 100 else f"{value:.0f}s"


# -- before: the plan ------------------------------------------------------------------------


def plan_text(
    chosen: Selection, plan: Plan, requests: int, concurrency: int, prompt_chars: int, share: float
) -> str:
    count = len(chosen.targets)
    lines = [
        f"bench: {count} target{'s' if count > 1 else ''} × {requests} streamed requests, "
        f"{concurrency} at a time; a prompt of {prompt_chars} characters"
    ]
    width = max(len(t.target.label) for t in plan.targets)
    lines += [f"  {escape(t.target.label.ljust(width))}  {_keys(t)}" for t in plan.targets]
    for s in plan.spends:
        if s.daily is None:
            continue
        left = s.daily if s.left is None else s.left
        line = (f"  {escape(s.budget)} · {escape(s.model)}: {s.requests} of its "
                f"{s.daily}/{s.window} ({left} left)")  # fmt: skip
        lines.append(f"[yellow]{line}, more than {share:.0%}[/]" if s.exceeds(share) else line)
    lines += [f"  [dim]not measured: {escape(what)} ({escape(why)})[/]"
              for what, why in chosen.skipped]  # fmt: skip
    return "\n".join(lines)


def _keys(t: TargetSpend) -> str:
    aliases = ", ".join(escape(alias) for alias, _ in t.keys)
    each = t.keys[0][1]
    text = f"{each} on {aliases}" if len(t.keys) == 1 else f"about {each} each on {aliases}"
    return text + (", more on its fallbacks if these fail" if t.fallbacks else "")


# -- during: the progress bar ------------------------------------------------------------------


class ProgressBar:
    """One bar per target, with its failures and waits so far."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
            console=console, transient=True,
        )  # fmt: skip
        self._tasks: dict[Target, TaskID] = {}
        self._failed: dict[Target, int] = {}

    def started(self, target: Target, total: int) -> None:
        self._tasks[target] = self.progress.add_task(escape(target.label), total=total, note="")

    def measured(self, target: Target, sample: Sample) -> None:
        failed = self._failed[target] = self._failed.get(target, 0) + (not sample.ok)
        note = f"[red]{failed} failed[/]" if failed else ""
        self.progress.update(self._tasks[target], advance=1, note=note)

    def waiting(self, target: Target, seconds: float) -> None:
        note = f"[yellow]waiting {seconds:.1f}s for budget[/]"
        self.progress.update(self._tasks[target], note=note)


@contextmanager
def progress(console: Console, *, enabled: bool = True) -> Iterator[ProgressBar | None]:
    """A live progress bar on a terminal; None (no bar, no output) anywhere else."""
    if not (enabled and console.is_terminal):
        yield None
        return
    bar = ProgressBar(console)
    with bar.progress:
        yield bar


# -- after: the results --------------------------------------------------------------------------


def print_outcome(console: Console, outcome: Outcome) -> None:
    console.print(results_table(outcome))
    for line in failure_lines(outcome.ranked):
        console.print(line, soft_wrap=True, highlight=False)
    chart = latency_chart(outcome.ranked, console.width)
    if chart is not None:
        console.print()
        console.print(chart)
    for line in recommendation_lines(outcome.recommendations, outcome.min_success):
        console.print(line, soft_wrap=True, highlight=False)


def print_waits(console: Console, outcome: Outcome) -> None:
    for r in outcome.ranked:
        if r.summary.waited_s > 0:
            console.print(
                f"{escape(r.summary.target.label)} waited {r.summary.waited_s:.1f}s in all for "
                "budget or a cooldown: pacing held requests back rather than meet 429s",
                soft_wrap=True, highlight=False,
            )  # fmt: skip


def results_table(outcome: Outcome) -> Table:
    by = "time to first token" if outcome.rank_by == TTFT else "latency"
    table = Table(
        title=f"{outcome.requests} requests per target, {outcome.concurrency} at a time; "
        f"ranked by median {by}",
        title_justify="left", box=box.SIMPLE, pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    # Two header lines: the group (latency, time to first token) over its figures.
    table.add_column("\n#", justify="right", no_wrap=True)
    table.add_column("\ntarget", overflow="fold")  # long model ids fold; the figures do not
    table.add_column("\nok", justify="right", no_wrap=True)
    for column in ("latency\np50", "\np95", "\nmax", "ttft\np50", "\np95", "\ntok/s", "\n429s"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in outcome.ranked:
        s = r.summary
        table.add_row(
            str(r.rank) if r.rank else "-", escape(s.target.label), f"{s.ok}/{s.requests}",
            seconds(s.latency.p50), seconds(s.latency.p95),
            seconds(s.latency.max), seconds(s.ttft.p50), seconds(s.ttft.p95),
            "-" if s.tokens_per_s is None else f"{s.tokens_per_s:.0f}", str(s.rate_limited),
        )  # fmt: skip
    return table


def failure_lines(ranked: Sequence[Ranked]) -> list[str]:
    """Per target that failed: its failures by kind, each with one example."""
    lines = []
    for r in ranked:
        s = r.summary
        if not s.failures:
            continue
        kinds = [f"{kind} {n}" + (f" ({s.examples[kind]})" if kind in s.examples else "")
                 for kind, n in s.failures.items()]  # fmt: skip
        lines.append(
            f"[red]{escape(s.target.label)} failed {s.failed}:[/] {escape(', '.join(kinds))}"
        )
    return lines


def latency_chart(ranked: Sequence[Ranked], columns: int = 100) -> Text | None:
    """Median latency as a bar (█), and on to the 95th percentile (░); None for fewer than
    two targets, where a chart adds nothing to the table. Labels too long for `columns`
    lose their middle."""
    rows = [r.summary for r in ranked if r.summary.latency.p50 is not None]
    if len(rows) < 2:
        return None
    scale = max(s.latency.p95 or s.latency.p50 or 0.0 for s in rows) or 1.0
    room = max(12, columns - CHART_WIDTH - len("   99.99s · p95 99.99s"))
    width = min(room, max(len(s.target.label) for s in rows))
    text = Text("latency: █ median, ░ to p95\n", style="dim")
    for s in rows:
        p50 = s.latency.p50 or 0.0
        median = bar(p50, scale)
        tail = "░" * max(0, round((s.latency.p95 or p50) / scale * CHART_WIDTH) - len(median))
        text.append(f"{shorten(s.target.label, width).ljust(width)}  ")
        text.append(median, style="cyan")
        text.append(tail, style="dim cyan")
        pad = " " * (CHART_WIDTH - len(median) - len(tail) + 1)
        text.append(f"{pad} {seconds(p50)} · p95 {seconds(s.latency.p95)}\n")
    text.rstrip()
    return text


def shorten(label: str, width: int) -> str:
    """`openrouter:meta-…instruct:free`: both ends of a label tell more than one end."""
    if len(label) <= width:
        return label
    head = (width - 1) // 2
    return f"{label[:head]}…{label[len(label) - (width - 1 - head) :]}"


def bar(value: float, scale: float, width: int = CHART_WIDTH) -> str:
    """A bar of `value / scale` of `width` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(value / scale, 1.0)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def recommendation_lines(recs: Sequence[Recommendation], min_success: float) -> list[str]:
    lines = []
    for rec in recs:
        lines.append("")
        if rec.changed:
            order = ", ".join(rec.suggested)
            route = ", ".join(json.dumps(e) for e in rec.suggested)
            lines.append(f"suggested route order for {escape(rec.task)}: [bold]{escape(order)}[/]")
            lines.append(escape(f"  [tasks.{rec.task}]\n  route = [{route}]"))
        else:
            lines.append(f"the route order of {escape(rec.task)} is already the fastest measured")
        if rec.unranked:
            lines.append(
                f"  [dim]not ranked: {escape(', '.join(rec.unranked))} (answered fewer than "
                f"{min_success:.0%} of its requests, or not measured)[/]"
            )
    return lines
