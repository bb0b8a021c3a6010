"""The request log: one entry per request, in arrival order, appended by handler threads."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it.

    outcome is the reply kind: "ok", "stream" (Reply.stream), "stall", "reset", "cut",
    "malformed", "error_in_200", "error" (Reply.error), the dialect kinds ("rate_limited",
    "quota_exhausted", "too_large", "unauthorized", "forbidden", "not_found", "gone",
    "context_length_exceeded", "bad_request", "unprocessable", "gemini_invalid_key",
    "server_error", "timeout_408"), or "models" (GET /models) and "no_route" (unknown URL).
    Automatic answers use the same names: an unknown key is "unauthorized", an unknown model
    "not_found", a full window "rate_limited".
    """

    provider: str
    key: str | None  # the bearer token exactly as sent (None: no Authorization header)
    model: str | None
    path: str
    status: int  # 0 when no HTTP response was sent (reset)
    stream: bool
    at: float  # time.monotonic() when the request arrived
    body: dict[str, Any] | None
    outcome: str


class RequestLog:
    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def append(self, entry: LoggedRequest) -> None:
        # Entries are written once the reply is decided, a moment after arrival; inserting by
        # `at` keeps concurrent requests in true arrival order.
        with self._lock:
            bisect.insort(self._entries, entry, key=lambda e: e.at)

    def entries(self) -> list[LoggedRequest]:
        """A copy: handler threads keep appending while a test iterates."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def filter(
        self,
        provider: str | None = None,
        key: object | None = None,
        outcome: str | None = None,
    ) -> list[LoggedRequest]:
        # key may be a FakeKey: str() gives its secret, so both forms filter the same.
        secret = None if key is None else str(key)
        return [
            e
            for e in self.entries()
            if (provider is None or e.provider == provider)
            and (secret is None or e.key == secret)
            and (outcome is None or e.outcome == outcome)
        ]
