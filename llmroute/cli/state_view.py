"""The `llmroute state` table."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich import box
from rich.table import Table

from llmroute.status import COOLING, DISABLED, KeyStatus


def state_table(rows: Sequence[KeyStatus], now: float) -> Table:
    table = Table(box=box.SIMPLE, pad_edge=False, title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for column in ("budget left", "provider says", "failures"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r.key,
            r.model,
            _state(r, now),
            "\n".join(r.budgets) or "-",
            "\n".join(r.learned) or "-",
            str(r.failures or ""),
        )
    return table


def _state(r: KeyStatus, now: float) -> str:
    if r.state == DISABLED:
        return f"[red]disabled[/]\n[dim]{r.reason}[/]"
    if r.state == COOLING and r.until is not None and not math.isinf(r.until):
        return f"[yellow]cooling {r.until - now:.0f}s[/]\n[dim]{r.reason}[/]"
    return "[green]ready[/]"
