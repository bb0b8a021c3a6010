"""One logged request: what was asked, who answered, how it ended, and every attempt.

Built when a request ends (`ended`), from the engine's own values; keys appear only by alias,
as in `Attempt.to_dict`. Pure: no I/O.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmroute.attempt import SKIPPED, Attempt, Result
from llmroute.errors import RequestRejectedError, StreamBrokenError
from llmroute.pacing import content_text

ANSWERED, FAILED, REJECTED, BROKEN, INTERRUPTED = (
    "answered", "failed", "rejected", "broken", "interrupted",
)  # fmt: skip
EXIT_CODES = {ANSWERED: 0, FAILED: 1, REJECTED: 3, BROKEN: 1, INTERRUPTED: 130}
REFUSED = frozenset({"rate_limited", "quota_exhausted"})  # not counted by the provider
# Ctrl-C, a gateway client gone, a stream's reader that stopped: the caller's doing.
INTERRUPTIONS = (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit)


@dataclass(frozen=True, kw_only=True)
class LogRecord:
    at: float  # epoch seconds, when the request started
    source: str  # ask, chat, batch, bench, serve, library
    route: str  # the task, or the pinned provider:model
    outcome: str
    latency_s: float
    attempts: tuple[Mapping[str, Any], ...]  # Attempt.to_dict() of each
    provider: str | None = None  # who answered (None: nobody)
    key: str | None = None  # by alias
    model: str | None = None
    ttft_s: float | None = None
    waited_s: float = 0.0
    tokens_in: int | None = None
    tokens_out: int | None = None
    error: str | None = None
    system: str | None = None  # text: None when content is not logged
    prompt: str | None = None
    answer: str | None = None
    id: int | None = field(default=None, compare=False)  # the log's row id, once written

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def called(self) -> list[Mapping[str, Any]]:
        """The attempts that reached a provider."""
        return [a for a in self.attempts if a["outcome"] != SKIPPED]

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in COLUMNS}
        data["attempts"] = list(self.attempts)
        when = datetime.fromtimestamp(self.at).astimezone().isoformat(timespec="seconds")
        return {"id": self.id, "time": when, **data, "exit_code": self.exit_code}


COLUMNS = (
    "at", "source", "route", "outcome", "latency_s", "attempts", "provider", "key", "model",
    "ttft_s", "waited_s", "tokens_in", "tokens_out", "error", "system", "prompt", "answer",
)  # fmt: skip


def to_row(record: LogRecord) -> tuple[Any, ...]:
    """The record as the log's columns (COLUMNS, then exit_code)."""
    values = [getattr(record, name) for name in COLUMNS]
    values[COLUMNS.index("attempts")] = json.dumps(list(record.attempts), ensure_ascii=False)
    return (*values, record.exit_code)


def from_row(row: Mapping[str, Any]) -> LogRecord:
    """A record read back: the columns present (a query may leave out the text) and `id`."""
    # `in row` would look at a sqlite3.Row's values, not its column names
    values = {name: row[name] for name in COLUMNS if name in row.keys()}  # noqa: SIM118
    values["attempts"] = tuple(json.loads(values.get("attempts") or "[]"))
    return LogRecord(id=row["id"], **values)


def ended(
    *,
    at: float,
    source: str,
    route: str,
    messages: Sequence[Mapping[str, Any]],
    attempts: Sequence[Attempt],
    latency_s: float,
    waited_s: float,
    result: Result | None,
    error: BaseException | None,
    content: bool,
) -> LogRecord:
    """The record of a request that ended with `result` or raised `error`."""
    outcome, answer = _outcome(result, error)
    usage = result.usage if result else None
    c = result.candidate if result else None
    system, prompt = prompt_text(messages) if content else (None, None)
    return LogRecord(
        at=at, source=source, route=route, outcome=outcome, latency_s=latency_s,
        attempts=tuple(a.to_dict() for a in attempts),
        provider=c.provider if c else None, key=c.key.alias if c else None,
        model=c.model if c else None, ttft_s=result.ttft_s if result else None,
        waited_s=waited_s, tokens_in=usage.prompt_tokens if usage else None,
        tokens_out=usage.completion_tokens if usage else None,
        error=_error_text(error), system=system, prompt=prompt,
        answer=answer if content else None,
    )  # fmt: skip


def _outcome(result: Result | None, error: BaseException | None) -> tuple[str, str | None]:
    if error is None:
        return (ANSWERED, result.content) if result else (INTERRUPTED, None)
    if isinstance(error, StreamBrokenError):
        return BROKEN, error.partial
    if isinstance(error, RequestRejectedError):
        return REJECTED, None
    if isinstance(error, INTERRUPTIONS):
        return INTERRUPTED, None
    return FAILED, None


def _error_text(error: BaseException | None) -> str | None:
    if error is None or isinstance(error, INTERRUPTIONS):
        return None
    return str(error) or type(error).__name__


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """The system prompt and the last user message, as text (text parts of a multi-part one)."""
    system = next((m for m in messages if m.get("role") == "system"), None)
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    return _text(system), _text(user)


def _text(message: Mapping[str, Any] | None) -> str | None:
    return None if message is None else content_text(message.get("content"))
