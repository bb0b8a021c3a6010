"""Progress and summary of `llmroute batch`, on stderr."""

from __future__ import annotations

from collections import deque
from types import TracebackType

from rich import box
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from llmroute.batch.runner import Tally
from llmroute.cli.report import Report


class BatchProgress:
    """A bar with done/failed counts, rate, ETA and who is serving; none off a terminal."""

    def __init__(self, report: Report, total: int) -> None:
        self._enabled = not report.quiet and report.console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("[dim]{task.fields[who]}"),
            console=report.console, transient=False,
        )  # fmt: skip
        self._task = self._progress.add_task("batch", total=total, failed=0, rate="", who="")
        self._recent: deque[str] = deque(maxlen=24)

    def __enter__(self) -> BatchProgress:
        if self._enabled:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._enabled:
            self._progress.stop()

    def update(self, tally: Tally, who: str | None) -> None:
        if not self._enabled:
            return
        if who:
            self._recent.append(who)
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = f"{tally.done / elapsed:.1f}/s" if elapsed > 0 else ""
        serving = ", ".join(dict.fromkeys(reversed(self._recent)))
        self._progress.update(
            self._task, completed=tally.done, failed=sum(tally.failed.values()), rate=rate,
            who=f"serving: {serving}" if serving else "",
        )  # fmt: skip


def summary_line(tally: Tally) -> str:
    line = f"{sum(tally.answered.values())} answered, {sum(tally.failed.values())} failed"
    if tally.failed:
        line += " (" + ", ".join(f"{n} {kind}" for kind, n in tally.failed.most_common()) + ")"
    if tally.skipped:
        line += f", {tally.skipped} already done"
    return line


def summary_table(tally: Tally) -> Table:
    """Per key alias: answered, tokens, share of the work."""
    answered = sum(tally.answered.values())
    table = Table(box=box.SIMPLE, pad_edge=False)
    for column in ("key", "answered", "tokens", "share"):
        table.add_column(column, justify="left" if column == "key" else "right")
    for who, n in tally.answered.most_common():
        share = f"{100 * n / answered:.0f}%" if answered else "-"
        table.add_row(who, str(n), str(tally.tokens[who]), share)
    return table
