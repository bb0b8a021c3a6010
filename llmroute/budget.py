"""Budgets: may a request go out now, and if not, when? Pure functions over a usage log.

Three sources of limits meet here. The configured rates (`30/minute`, `6000/minute` tokens) and
the rates learned from `x-ratelimit-limit-*` headers (see `learned.py`) are both checked against
a sliding-window log of what this router (every process sharing the state) sent. The snapshots
those headers carry (`remaining` until the window resets) also count every request the provider
has seen from anyone, so they stay an upper bound while they live; what is in flight is kept
aside (`pending`) and subtracted, as the provider cannot know of it yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from llmroute.config import Limits
from llmroute.learned import LearnedRate, LearnedWindow, learn_rates, rate_key
from llmroute.rate import Rate

# Our log stamps a request when it is reserved, the provider when it arrives: wait a little
# longer than the window so that our view never frees a slot before the provider's does.
MARGIN_S = 0.05
MARGIN_SHARE = 0.01
PENDING_TTL_S = 600.0  # a reservation never settled (a crashed process) stops counting
# Learned windows longer than this are left to the provider's `remaining`, which every answer
# refreshes: pacing them by our log would keep a day of entries for what one header tells.
LOG_PACED_MAX_S = 3600.0
# A budget nobody described (no configured limits; no live learned rate or window, and no
# answer without limit headers) gets one request in flight, whose answer's headers tell the
# rest: a burst at first contact, or after learned rates were forgotten, would meet 429s.
# The others look again after a quarter of the probe's age (at least PROBE_POLL_S): a quick
# answer is seen soon, a slow one costs few looks. A probe older than PROBE_TTL_S (its process
# gone) no longer holds them back.
PROBE_POLL_S = 0.05
PROBE_POLL_SHARE = 0.25
PROBE_TTL_S = 30.0


@dataclass(frozen=True)
class Cost:
    requests: int = 1
    tokens: int = 0


@dataclass(frozen=True)
class UsageEntry:
    id: str
    at: float
    requests: int
    tokens: int


@dataclass(frozen=True, kw_only=True)
class Finished:
    """An attempt that held a reservation is over."""

    entry_id: str
    sent_at: float  # when the request left: the provider's windows count from about then
    windows: Mapping[str, LearnedWindow] = field(default_factory=dict)  # from its headers
    tokens: int | None = None  # what the provider counted, replacing the estimate
    heard: bool = True  # an HTTP response came back (not a timeout, a refused or cut connection)


@dataclass(frozen=True)
class Learned:
    """A scope's learned windows and rates, and the reservations in flight that the windows
    cannot know of."""

    windows: Mapping[str, LearnedWindow] = field(default_factory=dict)
    pending: Mapping[str, UsageEntry] = field(default_factory=dict)
    rates: Mapping[str, LearnedRate] = field(default_factory=dict)
    unlimited: bool = False  # the last response heard carried no limit headers (a local server)

    def holding(self, entry: UsageEntry, now: float) -> Learned:
        """With one more request in flight."""
        pending = {**self._live_pending(now), entry.id: entry}
        return Learned(
            windows=self._live_windows(now), pending=pending, rates=self._live_rates(now),
            unlimited=self.unlimited,
        )  # fmt: skip

    def heard(
        self,
        windows: Mapping[str, LearnedWindow],
        entry_id: str | None,
        now: float,
        *,
        answered: bool = True,
    ) -> Learned:
        """After a response: it is no longer in flight (the provider's count includes it), and
        its headers update the windows and the rates behind them. Answers of concurrent
        requests arrive out of order, so within a live window the lowest `remaining` stands
        until that window resets."""
        pending = {k: e for k, e in self._live_pending(now).items() if k != entry_id}
        merged = self._live_windows(now)
        for name, window in windows.items():
            current = merged.get(name)
            if current is None or window.remaining <= current.remaining:
                merged[name] = window
        rates = learn_rates(self._live_rates(now), windows, now)
        unlimited = not windows if answered else self.unlimited  # no answer: nothing learned
        return Learned(windows=merged, pending=pending, rates=rates, unlimited=unlimited)

    def paced_rates(self, dimension: str, now: float) -> list[LearnedRate]:
        """The live learned rates that pace by the usage log, like configured ones."""
        return [
            r for r in self.rates.values()
            if r.dimension == dimension and r.window_s <= LOG_PACED_MAX_S and r.alive(now)
        ]  # fmt: skip

    def described(self, now: float) -> bool:
        """Something heard still says what this budget allows: a live rate or window, or an
        answer with no limit headers at all."""
        return self.unlimited or bool(self._live_rates(now)) or bool(self._live_windows(now))

    def refill_window(self, name: str, window: LearnedWindow) -> float | None:
        """The length of a window whose bucket refills continuously; None for any other."""
        rate = self.rates.get(rate_key(name, window.limit)) if window.limit else None
        return rate.window_s if rate is not None and rate.refills else None

    def _live_windows(self, now: float) -> dict[str, LearnedWindow]:
        return {name: w for name, w in self.windows.items() if w.active(now)}

    def _live_pending(self, now: float) -> dict[str, UsageEntry]:
        return {k: e for k, e in self.pending.items() if e.at > now - PENDING_TTL_S}

    def _live_rates(self, now: float) -> dict[str, LearnedRate]:
        return {k: r for k, r in self.rates.items() if r.alive(now)}


def padded(window_s: float) -> float:
    return window_s + MARGIN_S + window_s * MARGIN_SHARE


def horizon(limits: Limits, learned: Learned, now: float) -> float:
    """How far back the usage log matters for these limits and the learned rates (a refilling
    bucket remembers up to two of its windows)."""
    spans = [padded(r.window_s) for r in (*limits.requests, *limits.tokens)]
    for r in (*learned.paced_rates("requests", now), *learned.paced_rates("tokens", now)):
        spans.append(padded(r.window_s) * (2 if r.refills else 1))
    return max(spans, default=0.0)


class UsageLog(Protocol):
    """What a store knows of a scope's recent requests. Sums are asked for on every
    reservation and must be cheap: the whole log's (`since` before its oldest entry) at once,
    from running totals; a window's from an index. The entries themselves only when a limit
    is reached, to tell when it frees."""

    def used(self, dimension: str, since: float) -> int: ...

    def oldest_first(self, since: float) -> list[UsageEntry]: ...


class ListLog:
    """A UsageLog over entries held in memory."""

    def __init__(self, entries: Iterable[UsageEntry]) -> None:
        self.entries = sorted(entries, key=lambda e: e.at)

    def used(self, dimension: str, since: float) -> int:
        return sum(_units(dimension, e) for e in self.entries if e.at > since)

    def oldest_first(self, since: float) -> list[UsageEntry]:
        return [e for e in self.entries if e.at > since]


def free_at(
    log: UsageLog,
    learned: Learned,
    limits: Limits,
    cost: Cost,
    now: float,
) -> float | None:
    """None when `cost` fits every limit now; else the earliest time it could fit."""
    in_flight = list(learned.pending.values())
    waits = [
        *(_rate_free_at(log, rate, cost.requests, now, "requests") for rate in limits.requests),
        *(_rate_free_at(log, rate, cost.tokens, now, "tokens") for rate in limits.tokens),
        *(_learned_rate_free_at(log, r, cost, now) for r in learned.paced_rates("requests", now)),
        *(_learned_rate_free_at(log, r, cost, now) for r in learned.paced_rates("tokens", now)),
        *(
            _learned_free_at(w, in_flight, cost, now, learned.refill_window(name, w))
            for name, w in learned.windows.items()
        ),
        _first_contact_free_at(learned, limits, now),
    ]
    blocked = [w for w in waits if w is not None]
    return max(blocked) if blocked else None


def _first_contact_free_at(learned: Learned, limits: Limits, now: float) -> float | None:
    if limits.requests or limits.tokens or learned.described(now):
        return None
    probes = [e.at for e in learned.pending.values() if e.at > now - PROBE_TTL_S]
    if not probes:
        return None
    return now + max(PROBE_POLL_S, (now - min(probes)) * PROBE_POLL_SHARE)


def remaining(entries: Iterable[UsageEntry], rate: Rate, dimension: str, now: float) -> int:
    """Units of a configured rate left now (for `llmroute state`)."""
    used = ListLog(entries).used(dimension, now - padded(rate.window_s))
    return max(0, rate.count - used)


def _rate_free_at(
    log: UsageLog, rate: Rate, units: int, now: float, dimension: str
) -> float | None:
    if units <= 0 or units > rate.count:
        return None  # nothing to count, or it can never fit: the provider will say 413
    if fits_whole_log(log, dimension, units, rate.count):
        return None
    window = padded(rate.window_s)
    excess = log.used(dimension, now - window) + units - rate.count
    if excess <= 0:
        return None
    for entry in log.oldest_first(now - window):  # the window frees as they leave it
        excess -= _units(dimension, entry)
        if excess <= 0:
            return entry.at + window
    return now + window  # unreachable with a consistent log; be safe


def fits_whole_log(log: UsageLog, dimension: str, units: int, count: int) -> bool:
    """Whatever the window, `units` fit when they fit beside the whole log: a store keeps the
    whole log's sums at hand (its widest window), while a narrower window's sum reads its
    range of entries, one per request of that window."""
    return log.used(dimension, -math.inf) + units <= count


def _learned_rate_free_at(log: UsageLog, rate: LearnedRate, cost: Cost, now: float) -> float | None:
    units = _units(rate.dimension, cost)
    if rate.refills:
        return _bucket_free_at(log, rate.rate, units, now, rate.dimension)
    return _rate_free_at(log, rate.rate, units, now, rate.dimension)


def _bucket_free_at(
    log: UsageLog, rate: Rate, units: int, now: float, dimension: str
) -> float | None:
    """A bucket of `rate.count` refilled continuously over the window, replayed over the log:
    its level now is the least, over each entry since, of capacity + refill since it − what
    went since (it starts full). Refilled over the padded window: never ahead of the provider."""
    if units <= 0 or units > rate.count or fits_whole_log(log, dimension, units, rate.count):
        return None
    since = now - 2 * padded(rate.window_s)
    if log.used(dimension, since) + units <= rate.count:
        return None  # what went since could not empty it: the cheap sum spares the replay
    per_s = rate.count / padded(rate.window_s)
    level, spent = float(rate.count), 0
    for entry in reversed(log.oldest_first(since)):
        spent += _units(dimension, entry)
        level = min(level, rate.count + per_s * (now - entry.at) - spent)
    return None if level >= units else now + (units - level) / per_s


def _learned_free_at(
    window: LearnedWindow,
    in_flight: list[UsageEntry],
    cost: Cost,
    now: float,
    refill_s: float | None = None,
) -> float | None:
    """What a provider's snapshot allows: `remaining` until its reset; for a bucket that
    refills over `refill_s`, its level climbing from `remaining` to full at its reset."""
    units = _units(window.dimension, cost)
    held = sum(_units(window.dimension, e) for e in in_flight)
    left = window.remaining - held
    if not window.active(now) or units <= 0 or left >= units:
        return None
    if window.limit is not None and units > window.limit:
        return None  # larger than the whole window: the provider will say 413
    if refill_s is None or window.limit is None:
        return window.reset_at
    # full (limit) at reset_at, so limit − (reset_at − t) × limit / refill_s at t
    refilled_at = window.reset_at - (window.limit - held - units) * refill_s / window.limit
    return refilled_at if refilled_at > now else None


def _units(dimension: str, item: Cost | UsageEntry) -> int:
    return item.requests if dimension == "requests" else item.tokens


def settled(entry: UsageEntry, done: Finished) -> UsageEntry:
    """A usage entry as the provider saw it: stamped when sent, with the tokens it counted."""
    tokens = entry.tokens if done.tokens is None else done.tokens
    return replace(entry, at=max(entry.at, done.sent_at), tokens=tokens)
