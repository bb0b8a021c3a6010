"""The `llmroute providers` table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table

from llmroute.checkup import OK, KeyCheck
from llmroute.status import READY

STATUS_STYLE = {OK: "green", "not set": "yellow", "unusable": "red", "disabled": "dim"}


def providers_table(checks: Sequence[KeyCheck]) -> Table:
    table = Table(box=box.SIMPLE, pad_edge=False)
    table.add_column("provider", no_wrap=True)
    table.add_column("key", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("state / headroom", overflow="fold")
    for c in checks:
        style = STATUS_STYLE.get(c.status, "red")
        time = "-" if c.latency_s is None else f"{c.latency_s * 1000:.0f}ms"
        detail = escape(c.detail)
        if c.probes:
            detail += "\nprobe: " + ", ".join(f"{m} {r}" for m, r in c.probes.items())
        key = f"{c.key} {c.masked}" if c.masked else c.key or "-"
        table.add_row(c.provider, key, f"[{style}]{c.status}[/]", time, detail, _state(c))
    return table


def tasks_line(ready: Mapping[str, bool]) -> str:
    parts = [f"{t} [green]ready[/]" if ok else f"{t} [red]cannot be served now[/]"
             for t, ok in ready.items()]  # fmt: skip
    return "tasks: " + ", ".join(parts)


def _state(c: KeyCheck) -> str:
    """Cooldowns, the tightest configured budget left per model, what headers said."""
    lines = []
    for model, s in c.state.items():
        if s.state != READY:
            lines.append(f"{model}: {s.state} ({s.reason})")
        elif s.budgets:
            lines.append(f"{model}: {s.budgets[0]} left")
    return escape("\n".join([*lines, *c.headroom]) or "-")
