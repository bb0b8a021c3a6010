"""What a provider's rate-limit headers teach: windows as they stand, and the rates behind them.

A header gives a snapshot (`remaining` until `reset`) and, with `x-ratelimit-limit-*`, the
limit itself. A snapshot says nothing once its reset has passed; the limit and its window do:
they are a rate, and a learned rate paces requests exactly like a configured one, so that a
reset that passes never reads as "unlimited".

The window's length comes from the header's name where it says so (`-minute`, `-day`). Else it
is measured: whatever a provider means by "reset" (the bucket full again, the oldest request
leaving, the fixed window ending), the time to it never exceeds the window, counted from when
the request arrived; so the window is at least the longest reset heard plus the time the answer
took, rounded up to the next length providers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmroute.rate import Rate, window_name

# Window lengths providers use. A measurement is rounded up to the next of them, or down to one
# it overshoots by less than SNAP_SLACK: the answer's time that it includes is an upper bound,
# and a busy event loop can stretch it. No two lengths here are closer than 1.33x.
STANDARD_WINDOWS_S = (
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0, 7200.0, 21600.0, 43200.0, 86400.0,
)  # fmt: skip
SNAP_SLACK = 1.25
RATE_TTL_WINDOWS = 2  # a learned rate not heard of again for two of its windows is forgotten


@dataclass(frozen=True, kw_only=True)
class LearnedWindow:
    """What one response's headers said about one of its provider's windows."""

    dimension: str  # "requests" or "tokens"
    remaining: float
    reset_at: float  # epoch seconds when the provider says the window resets
    limit: float | None = None
    span_s: float | None = None  # the window's length, when the header's name says it
    lasted_s: float = 0.0  # the window is at least this long: its reset + the answer's time
    header: str = ""  # the limit header it came from, for `llmroute state`
    moment: bool = False  # the reset was a point in time (a fixed window's end), not a duration
    refused: bool = False  # it came with a 429

    @property
    def fresh(self) -> bool:
        """The request that brought it is the only one the window holds."""
        return self.limit is not None and self.limit - self.remaining == 1

    def active(self, now: float) -> bool:
        return now < self.reset_at


@dataclass(frozen=True, kw_only=True)
class LearnedRate:
    """A provider's limit learned from its headers: `count` units per `window_s` seconds."""

    dimension: str
    count: int
    window_s: float
    measured: bool  # the window was measured from resets (else the header named it)
    header: str
    heard_at: float  # when a response last confirmed it
    fresh_s: float | None = None  # the shortest reset heard from a window holding one request
    refuted: bool = False  # a 429 came while it was paced as a refilling bucket

    @property
    def refills(self) -> bool:
        """The provider's bucket refills continuously (OpenAI, Groq), which allows more than a
        sliding window. A window that holds only the request that brought it tells: a sliding
        window's reset is then the whole window (that request leaves last), a refilling
        bucket's is one unit's refill, window / limit. Only a duration says so (a fixed
        window's end is anywhere), and a 429 met while pacing a bucket refutes it for good."""
        fresh = self.fresh_s
        return fresh is not None and fresh * 2 <= self.window_s and not self.refuted

    def alive(self, now: float) -> bool:
        return now < self.heard_at + RATE_TTL_WINDOWS * self.window_s

    @property
    def rate(self) -> Rate:
        return Rate(self.count, self.window_s)

    def describe(self) -> str:
        rate = f"{self.count}/{window_name(self.window_s)} {self.dimension}"
        rate += ", refilled continuously" if self.refills else ""
        if not self.measured:
            return f"{rate}, learned from {self.header}"
        # A measured window is a floor: a bucket barely used understates it (Groq's day).
        floor = f"window measured from its resets: at least {self.window_s:g} s"
        return f"{rate}, learned from {self.header} ({floor})"


def standard_window(seconds: float) -> float:
    """The shortest standard window length that `seconds` fits in (within SNAP_SLACK)."""
    for length in STANDARD_WINDOWS_S:
        if seconds <= length * SNAP_SLACK:
            return length
    return seconds


def rate_key(name: str, limit: float) -> str:
    """One rate per header and limit: OpenRouter reports its per-minute and per-day limits
    under the same headers, told apart by the limit."""
    return f"{name}@{limit:g}"


def learn_rates(
    rates: Mapping[str, LearnedRate], windows: Mapping[str, LearnedWindow], now: float
) -> dict[str, LearnedRate]:
    """The rates after one response's windows: each one with a limit teaches (or confirms) a
    rate; a measured window only ever grows, to the longest reset heard."""
    learned = dict(rates)
    for name, window in windows.items():
        if window.limit is None or window.limit < 1:
            continue
        key = rate_key(name, window.limit)
        previous = learned.get(key)
        if window.span_s is not None:
            length, measured = window.span_s, False
        else:
            longest = max(window.lasted_s, previous.window_s if previous else 0.0)
            length, measured = standard_window(longest), True
        fresh = window.lasted_s if window.fresh and not window.moment else None
        if previous is not None and previous.fresh_s is not None:
            fresh = previous.fresh_s if fresh is None else min(fresh, previous.fresh_s)
        refuted = previous is not None and (
            previous.refuted or (previous.refills and window.refused)
        )
        learned[key] = LearnedRate(
            dimension=window.dimension, count=int(window.limit), window_s=length,
            measured=measured, header=window.header, heard_at=now, fresh_s=fresh,
            refuted=refuted,
        )  # fmt: skip
    return learned
