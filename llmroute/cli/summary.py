"""The report's first line, as text: who answered, how long it took, tokens, fallbacks.

Standard library only: `ask`'s fast path prints it itself when Rich would print exactly this
text (stderr is no terminal and nothing forces colour), and loads Rich only otherwise.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from typing import TextIO

MARK = "✓"
# Rich reads these to treat a pipe as a terminal (colour, styles): then Rich prints.
TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE")


def summary_text(
    *,
    alias: str,
    model: str,
    latency_s: float,
    ttft_s: float | None,
    tokens: tuple[int, int] | None,
    called: int,
) -> str:
    """`groq#2 · small · 0.41s · first token 0.12s · 9 in / 3 out tokens · 1 fallback`."""
    parts = [f"{alias} · {model}", f"{latency_s:.2f}s"]
    if ttft_s is not None:
        parts.append(f"first token {ttft_s:.2f}s")
    if tokens:
        parts.append(f"{tokens[0]} in / {tokens[1]} out tokens")
    if called > 1:
        parts.append(f"{called - 1} fallback{'s' if called > 2 else ''}")
    return " · ".join(parts)


def plain_line(text: str, stream: TextIO) -> str | None:
    """The line as Rich would write it to `stream`, or None when Rich would style or change
    it: a terminal, forced colour, `:name:` emoji codes, characters it does not print."""
    if stream.isatty() or any(name in os.environ for name in TERMINAL_ENV):
        return None
    if text.count(":") > 1 or not text.isprintable():
        return None
    return f"{MARK} {text}\n"
