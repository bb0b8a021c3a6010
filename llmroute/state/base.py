"""The state store's interface, and the decisions every backend shares.

A store holds what many processes (and machines) must agree on: pool cursors, cooldowns and
circuit counts, usage logs and limits learned from headers. Backends differ only in how they
make each update atomic; what an update decides is computed here, once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from llmroute.budget import (
    Cost,
    Finished,
    Learned,
    UsageEntry,
    UsageLog,
    free_at,
    horizon,
)
from llmroute.config import Limits
from llmroute.cooldowns import Cooldown
from llmroute.learned import LearnedRate, LearnedWindow


@dataclass(frozen=True)
class Reservation:
    """Budget held for one attempt (`entry_id`), or the time budget frees up (`free_at`)."""

    entry_id: str | None
    free_at: float | None = None

    @property
    def granted(self) -> bool:
        return self.entry_id is not None


@dataclass(frozen=True)
class Snapshot:
    """Everything a store holds, for `llmroute state`."""

    cooldowns: list[Cooldown] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    learned: dict[str, Learned] = field(default_factory=dict)
    usage: dict[str, list[UsageEntry]] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)


class StateStore(Protocol):
    def advance_cursor(self, pool: str) -> int:
        """Return the pool's cursor and step it by one, atomically."""

    def cooldowns(self, scopes: Iterable[str], now: float) -> dict[str, Cooldown]:
        """The active cooldowns among `scopes`."""

    def extend_cooldown(self, cooldown: Cooldown) -> Cooldown:
        """Store a cooldown; an existing later `until` wins (a cooldown never shortens)."""

    def note_failure(self, scope: str) -> int:
        """Count one more failure in a row for the scope's circuit; return the count."""

    def note_success(self, scope: str) -> None:
        """Close the scope's circuit."""

    def reserve(self, scope: str, limits: Limits, cost: Cost, now: float) -> Reservation:
        """Hold `cost` against the scope's limits (configured and learned), atomically."""

    def finish(self, scope: str, done: Finished, now: float) -> None:
        """An attempt is over: its reservation is no longer in flight, its usage entry takes
        the time it was sent and the tokens counted, and its headers update the learned
        windows. Call it after every reserved attempt, answered or not."""

    def snapshot(self, now: float) -> Snapshot: ...

    def clear(self, provider: str | None = None) -> int:
        """Forget everything about one provider, or all; return how many cooldowns went."""

    def upkeep_in_background(self) -> None:
        """This process serves many requests (the gateway): do what upkeep the backend can
        away from them. A short-lived process leaves it to its writes."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class ReserveDecision:
    reservation: Reservation
    entry: UsageEntry | None
    learned: Learned


def keep_after(limits: Limits, learned: Learned, now: float) -> float:
    """Usage at or before this time no longer matters: a store prunes it before deciding, so
    that the widest window holds the whole log and its sum is the log's running total."""
    return now - horizon(limits, learned, now)


def decide_reservation(
    log: UsageLog,
    learned: Learned,
    limits: Limits,
    cost: Cost,
    now: float,
) -> ReserveDecision:
    wait = free_at(log, learned, limits, cost, now)
    if wait is not None:
        return ReserveDecision(Reservation(None, wait), None, learned)
    entry = UsageEntry(uuid.uuid4().hex[:16], now, cost.requests, cost.tokens)
    return ReserveDecision(Reservation(entry.id), entry, learned.holding(entry, now))


@dataclass(frozen=True, kw_only=True)
class LearnedChange:
    """What a store writes after a decision. The holds in flight (`pending`) change with every
    reservation and answer, the rest of the learned record (windows, rates) rarely: stores
    keep the holds apart, so that most updates leave the record as it is."""

    record: Learned | None  # the record to store (its holds left out), or None: unchanged
    held: tuple[UsageEntry, ...]  # holds to add
    released: tuple[str, ...]  # holds to drop


def learned_change(before: Learned, after: Learned) -> LearnedChange:
    kept = (before.windows, before.rates, before.unlimited)
    same = kept == (after.windows, after.rates, after.unlimited)
    return LearnedChange(
        record=None if same else replace(after, pending={}),
        held=tuple(e for key, e in after.pending.items() if key not in before.pending),
        released=tuple(key for key in before.pending if key not in after.pending),
    )


def encode_learned(learned: Learned) -> str:
    """The record without its holds (stores keep them apart); `pending` stays, empty, for
    older versions that read the same state."""
    return json.dumps({
        "windows": {name: vars(w) for name, w in learned.windows.items()},
        "pending": {},
        "rates": {key: vars(r) for key, r in learned.rates.items()},
        "unlimited": learned.unlimited,
    })  # fmt: skip


@lru_cache(maxsize=1024)
def decode_learned(text: str | None) -> Learned:
    """A stored record; cached, as most reservations read back the one they wrote (a Learned
    is frozen, and nobody changes its mappings). `pending` is read where an older version
    kept its holds."""
    if not text:
        return Learned()
    data = json.loads(text)
    return Learned(
        windows={name: LearnedWindow(**fields) for name, fields in data["windows"].items()},
        pending={key: UsageEntry(**fields) for key, fields in data.get("pending", {}).items()},
        rates={key: LearnedRate(**fields) for key, fields in data.get("rates", {}).items()},
        unlimited=bool(data.get("unlimited", False)),
    )


def encode_entry(entry: UsageEntry) -> str:
    return json.dumps(vars(entry))


def decode_entry(text: str) -> UsageEntry:
    return UsageEntry(**json.loads(text))
