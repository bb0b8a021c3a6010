"""The report on stderr: who answered, how long it took, what was tried first and why."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmroute.cli.summary import MARK, summary_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llmroute.attempt import Attempt, Result


class Report:
    """Renders router events and outcomes; silent with -q (errors still show)."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet

    @classmethod
    def for_stderr(cls, *, quiet: bool = False, verbose: int = 0) -> Report:

        _configure_logging(verbose)
        return cls(make_console(stderr=True), quiet=quiet)

    def event(self, event: Any) -> None:
        """Live notes while the router works: only waits are worth interrupting for."""
        from llmroute.attempt import Waiting

        if isinstance(event, Waiting) and not self.quiet:
            self.console.print(
                f"[yellow]waiting {event.seconds:.1f}s[/] for {event.candidate.label} "
                f"({event.reason}): every candidate is cooling down",
                markup=True,
                soft_wrap=True,
            )

    def result(self, result: Result) -> None:
        if self.quiet:
            return
        self.console.print(summary_line(result), markup=True, soft_wrap=True)
        if result.fallbacks:
            self.attempts(result.fallbacks, title="tried first")

    def attempts(self, attempts: Sequence[Attempt], title: str = "attempts") -> None:
        if self.quiet or not attempts:
            return
        self.console.print(attempts_table(attempts, title))

    def note(self, text: str) -> None:
        """A dim one-line remark (e.g. chat's note after each reply); silent with -q."""
        if not self.quiet:
            from rich.markup import escape

            self.console.print(f"[dim]{escape(text)}[/]", markup=True, soft_wrap=True)

    def usage_hint(self) -> None:
        """After a run of many requests (batch, bench): where to see what they spent."""
        self.note("see `llmroute usage` for what went to each key, and today's daily headroom")

    def broken_line(self, partial: str) -> None:
        """Start the report on a line of its own when a broken answer left one open."""
        if partial and not partial.endswith("\n") and self.console.is_terminal:
            self.console.print()

    def error(self, message: str) -> None:
        from rich.markup import escape

        self.console.print(
            f"[bold red]llmroute:[/] {escape(message)}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )


PIPE_WIDTH = 140  # a log file or a pipe has no width: do not fold tables at 80 columns


def make_console(*, stderr: bool) -> Console:
    """Rich drops colour by itself when the stream is not a terminal or NO_COLOR is set."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def summary_line(result: Result) -> str:
    from rich.markup import escape

    return f"[green]{MARK}[/] {escape(summary_of(result))}"


def summary_of(result: Result) -> str:
    usage = result.usage
    return summary_text(
        alias=result.candidate.key.alias, model=result.candidate.model,
        latency_s=result.latency_s, ttft_s=result.ttft_s,
        tokens=(usage.prompt_tokens, usage.completion_tokens) if usage else None,
        called=sum(1 for a in result.attempts if a.called),
    )  # fmt: skip


def attempts_table(attempts: Sequence[Attempt], title: str) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE, pad_edge=False)
    for column in ("key", "model", "outcome", "time", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column != "reason")
    for a in attempts:
        outcome = a.outcome + (f" {a.status}" if a.status and a.outcome != "ok" else "")
        time = f"{a.latency_s:.2f}s" if a.called else "-"
        table.add_row(a.candidate.key.alias, a.candidate.model, outcome, time, a.reason)
    return table


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record, not at set-up."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _configure_logging(verbose: int) -> None:
    logger = logging.getLogger("llmroute")
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    if not verbose:
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("llmroute: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
