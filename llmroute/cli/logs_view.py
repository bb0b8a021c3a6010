"""How `llmroute logs` reads: Markdown-ish blocks by default, or a Rich table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from llmroute.requestlog.record import ANSWERED, LogRecord

if TYPE_CHECKING:
    from rich.table import Table


def blocks(records: Sequence[LogRecord]) -> str:
    return "\n".join(block(r) for r in records)


def block(r: LogRecord) -> str:
    """One request: a heading, who answered and how fast, what was tried first, the text."""
    lines = [f"## {_when(r.at)} · {r.source} · {r.route} · {_ending(r)}", _figures(r)]
    tried = r.called[:-1] if r.outcome == ANSWERED else r.called
    lines += [f"- {_attempt(a)}" for a in tried]
    if r.error:
        lines.append(f"error: {r.error}")
    if r.system:
        lines += ["", "system: " + r.system]
    if r.prompt is not None:
        lines += ["", *("> " + line for line in r.prompt.splitlines() or [""])]
    if r.answer is not None:
        lines += ["", r.answer.rstrip("\n")]
    return "\n".join(lines) + "\n"


def records_table(records: Sequence[LogRecord]) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, pad_edge=False)
    for column in ("when", "source", "task", "answered by", "outcome", "took", "tokens",
                   "prompt"):  # fmt: skip
        table.add_column(column, overflow="ellipsis", no_wrap=True,
                         max_width=36 if column == "prompt" else None)  # fmt: skip
    for r in records:
        tokens = f"{r.tokens_in}/{r.tokens_out}" if r.tokens_in is not None else "-"
        who = f"{r.key} · {r.model}" if r.key else "-"
        prompt = " ".join((r.prompt or "").split())[:60]
        table.add_row(_when(r.at)[5:], r.source, r.route, who, _ending(r), f"{r.latency_s:.2f}s",
                      tokens, prompt)  # fmt: skip
    return table


def _when(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _ending(r: LogRecord) -> str:
    return r.outcome if r.outcome == ANSWERED else f"{r.outcome} (exit {r.exit_code})"


def _figures(r: LogRecord) -> str:
    parts = [f"{r.key} · {r.model}" if r.key else "nobody answered", f"{r.latency_s:.2f}s"]
    if r.ttft_s is not None:
        parts.append(f"first token {r.ttft_s:.2f}s")
    if r.waited_s:
        parts.append(f"waited {r.waited_s:.1f}s")
    if r.tokens_in is not None:
        parts.append(f"{r.tokens_in} in / {r.tokens_out} out tokens")
    fallbacks = len(r.called) - 1 if r.outcome == ANSWERED else 0
    if fallbacks:
        parts.append(f"{fallbacks} fallback{'s' if fallbacks > 1 else ''}")
    return " · ".join(parts)


def _attempt(a: Mapping[str, Any]) -> str:
    status = f" {a['status']}" if a.get("status") else ""
    reason = f": {a['error']}" if a.get("error") else ""
    return f"{a['key']} · {a['model']}: {a['outcome']}{status}{reason}"
