"""Sliding-window rate limits (requests or tokens per `per` seconds).

A sliding window, not fixed buckets: a test that fills the window can compute exactly when a
slot frees (the oldest entry's time + per), and the fake reports that same instant as `reset`.
The class is not locked itself: its owner (a FakeKey) serialises check-and-add under its lock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowState:
    """A snapshot for rate-limit headers."""

    limit: int
    remaining: int
    reset: float  # seconds until the oldest counted entry leaves the window; 0 when empty
    per: float


class SlidingWindow:
    """At most `limit` units (requests or tokens) within any `per`-second span."""

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or per <= 0:
            raise ValueError(f"a window needs limit >= 1 and per > 0, got {limit}/{per}")
        self.limit = limit
        self.per = per
        self._clock = clock
        self._entries: deque[tuple[float, int]] = deque()  # (time, units), oldest first

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] + self.per <= now:
            self._entries.popleft()

    def used(self, now: float | None = None) -> int:
        now = self._clock() if now is None else now
        self._expire(now)
        return sum(units for _, units in self._entries)

    def wait_for(self, cost: int, now: float | None = None) -> float:
        """Seconds until `cost` more units fit (0.0 if they fit now).

        Frees the oldest entries one by one until enough room is left; a cost above the whole
        limit never fits, so it reports the time until the window is empty (or a full period).
        """
        now = self._clock() if now is None else now
        used = self.used(now)
        excess = used + cost - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for at, units in self._entries:
            freed += units
            if freed >= excess:
                return max(0.0, at + self.per - now)
        if self._entries:
            return max(0.0, self._entries[-1][0] + self.per - now)
        return self.per

    def add(self, cost: int, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._expire(now)
        self._entries.append((now, cost))

    def state(self, now: float | None = None) -> WindowState:
        now = self._clock() if now is None else now
        used = self.used(now)
        reset = self._entries[0][0] + self.per - now if self._entries else 0.0
        return WindowState(
            limit=self.limit, remaining=max(0, self.limit - used), reset=reset, per=self.per
        )
