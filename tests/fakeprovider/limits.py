"""Rate limits (requests or tokens per `per` seconds) in the two shapes providers use.

A sliding window (the default): a test that fills the window can compute exactly when a slot
frees (the oldest entry's time + per), and the fake reports that same instant as `reset`.
A refill bucket (OpenAI, Groq): capacity `limit`, refilled continuously at limit/per units a
second, with `reset` the time until it is full again.
Neither class is locked itself: its owner (a FakeKey) serialises check-and-add under its lock.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowState:
    """A snapshot for rate-limit headers."""

    limit: int
    remaining: int
    reset: float  # seconds until the oldest entry leaves (a bucket: until full); 0 when empty
    per: float
    refill: bool = False  # a refill bucket's: `reset` is the time until full


class Window(ABC):
    """`limit` units (requests or tokens) per `per` seconds; `now` defaults to the clock."""

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or per <= 0:
            raise ValueError(f"a window needs limit >= 1 and per > 0, got {limit}/{per}")
        self.limit = limit
        self.per = per
        self._clock = clock

    def _time(self, now: float | None) -> float:
        return self._clock() if now is None else now

    @abstractmethod
    def used(self, now: float | None = None) -> int: ...

    @abstractmethod
    def wait_for(self, cost: int, now: float | None = None) -> float:
        """Seconds until `cost` more units fit (0.0 if they fit now)."""

    @abstractmethod
    def add(self, cost: int, now: float | None = None) -> None:
        """Count `cost` units (the caller checked wait_for first)."""

    @abstractmethod
    def state(self, now: float | None = None) -> WindowState: ...


class SlidingWindow(Window):
    """At most `limit` units (requests or tokens) within any `per`-second span."""

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limit, per, clock)
        self._entries: deque[tuple[float, int]] = deque()  # (time, units), oldest first

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] + self.per <= now:
            self._entries.popleft()

    def used(self, now: float | None = None) -> int:
        now = self._time(now)
        self._expire(now)
        return sum(units for _, units in self._entries)

    def wait_for(self, cost: int, now: float | None = None) -> float:
        """Seconds until `cost` more units fit (0.0 if they fit now).

        Frees the oldest entries one by one until enough room is left; a cost above the whole
        limit never fits, so it reports the time until the window is empty (or a full period).
        """
        now = self._time(now)
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
        now = self._time(now)
        self._expire(now)
        self._entries.append((now, cost))

    def state(self, now: float | None = None) -> WindowState:
        now = self._time(now)
        used = self.used(now)
        reset = self._entries[0][0] + self.per - now if self._entries else 0.0
        return WindowState(
            limit=self.limit, remaining=max(0, self.limit - used), reset=reset, per=self.per
        )


# Float slack: an instant computed as exactly when a unit refills finds it refilled.
_EPS = 1e-9


class RefillBucket(Window):
    """`limit` units, refilled continuously at limit/per units a second; starts full.

    Kept as the instant the bucket is full again (GCRA's theoretical arrival time), so the
    level is limit - (full_at - now) * limit / per and `reset` is full_at - now, both exact
    functions of the clock. Same interface as SlidingWindow.
    """

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limit, per, clock)
        self._full_at = -math.inf

    def _until_full(self, now: float) -> float:
        return max(0.0, self._full_at - now)

    def _remaining(self, now: float) -> int:
        level = self.limit - self._until_full(now) * self.limit / self.per
        return max(0, math.floor(level + _EPS))

    def used(self, now: float | None = None) -> int:
        now = self._time(now)
        return self.limit - self._remaining(now)

    def wait_for(self, cost: int, now: float | None = None) -> float:
        """Seconds until the level reaches `cost` (0.0 if it has); a cost above the whole
        capacity never fits, so it reports the time until full (or a full period)."""
        now = self._time(now)
        until_full = self._until_full(now)
        if cost > self.limit:
            return until_full or self.per
        wait = until_full - (self.limit - cost) * self.per / self.limit
        return wait if wait > _EPS else 0.0

    def add(self, cost: int, now: float | None = None) -> None:
        now = self._time(now)
        self._full_at = max(self._full_at, now) + cost * self.per / self.limit

    def state(self, now: float | None = None) -> WindowState:
        now = self._time(now)
        return WindowState(
            limit=self.limit, remaining=self._remaining(now), reset=self._until_full(now),
            per=self.per, refill=True,
        )  # fmt: skip
