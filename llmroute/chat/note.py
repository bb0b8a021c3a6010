"""The one-line note after each reply: who answered, how fast, the tokens, what was tried first."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmroute.attempt import Attempt, Result


def note_line(result: Result) -> str:
    """Plain text (no markup): `groq#2 · small · 0.41s (first token 0.12s) · 20 in / 5 out
    tokens · after groq#1/small rate_limited 429`."""
    c = result.candidate
    took = f"{result.latency_s:.2f}s"
    if result.ttft_s is not None:
        took += f" (first token {result.ttft_s:.2f}s)"
    parts = [c.key.alias, c.model, took]
    if result.usage:
        parts.append(
            f"{result.usage.prompt_tokens} in / {result.usage.completion_tokens} out tokens"
        )
    tried = [a for a in result.fallbacks if a.called]
    if tried:
        parts.append("after " + ", ".join(_tried(a) for a in tried))
    return " · ".join(parts)


def _tried(attempt: Attempt) -> str:
    status = f" {attempt.status}" if attempt.status else ""
    return f"{attempt.candidate.label} {attempt.outcome}{status}"
