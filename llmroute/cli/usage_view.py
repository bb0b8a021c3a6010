"""How `llmroute usage` reads: a table of figures, then each daily limit as a bar."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llmroute.requestlog.headroom import Headroom
    from llmroute.requestlog.report import UsageReport
    from llmroute.requestlog.usage import UsageRow

BAR_WIDTH = 24


def print_usage(console: Console, report: UsageReport, since: str) -> None:
    if report.rows:
        console.print(usage_table(report, since))
    if report.headroom:
        console.print(headroom_table(report.headroom, report.until))


def usage_table(report: UsageReport, since: str) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title=f"since {since}", title_justify="left", box=box.SIMPLE, pad_edge=False)
    table.add_column(report.by)
    for column in ("answered", "failed", "fallbacks", "429s", "tokens in", "tokens out",
                   "p50", "p95", "ttft p50"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in report.rows:
        table.add_row(*_cells(row))
    if len(report.rows) > 1:
        table.add_section()
        table.add_row(*_cells(report.total), style="bold")
    return table


def _cells(row: UsageRow) -> list[str]:
    figures = row.to_dict()
    return [
        row.group, str(row.answered), str(row.failed), str(row.fallbacks),
        str(row.rate_limited), f"{row.tokens_in:,}", f"{row.tokens_out:,}",
        *(_seconds(figures[k]) for k in ("p50_s", "p95_s", "ttft_p50_s")),
    ]  # fmt: skip


def headroom_table(rows: list[Headroom], now: float) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(title="daily limits (UTC day)", title_justify="left", box=box.SIMPLE,
                  pad_edge=False)  # fmt: skip
    for column in ("budget", "model", "requests", "", "tokens", "resets"):
        table.add_column(column, justify="right" if column in ("requests", "tokens") else "left")
    for h in rows:
        lim = h.limit
        share = max(_share(h.requests, lim.requests), _share(h.tokens, lim.tokens))
        model = "* (every model)" if lim.model == "*" else lim.model
        budget = lim.budget + (" [dim](learned)[/]" if lim.source == "learned" else "")
        table.add_row(
            budget, model, _used(h.requests, lim.requests), bar(share),
            _used(h.tokens, lim.tokens), _resets(h.resets_at, now),
        )  # fmt: skip
    return table


def bar(share: float, width: int = BAR_WIDTH) -> str:
    """Rich markup: the used share filled, green, then yellow past 75 %, red past 90 %."""
    filled = round(min(1.0, share) * width)
    colour = "red" if share >= 0.9 else "yellow" if share >= 0.75 else "green"
    return f"[{colour}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/] {share:>4.0%}"


def _share(used: int, limit: int | None) -> float:
    return used / limit if limit else 0.0


def _used(used: int, limit: int | None) -> str:
    return "-" if limit is None else f"{used:,} / {limit:,}"


def _resets(at: float, now: float) -> str:
    left = max(0, int(at - now))
    clock = time.strftime("%H:%M UTC", time.gmtime(at))
    return f"in {left // 3600}h{left % 3600 // 60:02d}m ({clock})"


def _seconds(value: object) -> str:
    return "-" if value is None else f"{value:.2f}s"
