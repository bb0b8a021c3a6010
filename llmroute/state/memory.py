"""State for one process: library use and tests."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from llmroute.budget import Cost, Finished, Learned
from llmroute.config import Limits
from llmroute.cooldowns import Cooldown, provider_of
from llmroute.state.base import Reservation, Snapshot, decide_reservation, keep_after
from llmroute.state.usage import SortedUsage


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: dict[str, int] = {}
        self._cooldowns: dict[str, Cooldown] = {}
        self._failures: dict[str, int] = {}
        self._usage: dict[str, SortedUsage] = {}
        self._learned: dict[str, Learned] = {}

    def advance_cursor(self, pool: str) -> int:
        with self._lock:
            value = self._cursors.get(pool, 0)
            self._cursors[pool] = value + 1
            return value

    def cooldowns(self, scopes: Iterable[str], now: float) -> dict[str, Cooldown]:
        with self._lock:
            found = {s: self._cooldowns.get(s) for s in scopes}
        return {s: c for s, c in found.items() if c is not None and c.until > now}

    def extend_cooldown(self, cooldown: Cooldown) -> Cooldown:
        with self._lock:
            current = self._cooldowns.get(cooldown.scope)
            if current is None or cooldown.until > current.until:
                self._cooldowns[cooldown.scope] = cooldown
                return cooldown
            return current

    def note_failure(self, scope: str) -> int:
        with self._lock:
            self._failures[scope] = self._failures.get(scope, 0) + 1
            return self._failures[scope]

    def note_success(self, scope: str) -> None:
        with self._lock:
            self._failures.pop(scope, None)

    def reserve(self, scope: str, limits: Limits, cost: Cost, now: float) -> Reservation:
        with self._lock:
            log = self._usage.setdefault(scope, SortedUsage())
            learned = self._learned.get(scope, Learned())
            log.prune(keep_after(limits, learned, now))
            decision = decide_reservation(log, learned, limits, cost, now)
            if decision.entry is not None:
                log.add(decision.entry)
            self._learned[scope] = decision.learned
            return decision.reservation

    def finish(self, scope: str, done: Finished, now: float) -> None:
        with self._lock:
            learned = self._learned.get(scope, Learned())
            self._learned[scope] = learned.heard(
                done.windows, done.entry_id, now, answered=done.heard
            )
            if scope in self._usage:
                self._usage[scope].settle(done)

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            return Snapshot(
                cooldowns=[c for c in self._cooldowns.values() if c.until > now],
                failures=dict(self._failures),
                learned={s: v for s, v in self._learned.items() if v.windows or v.rates},
                usage={s: list(log.entries) for s, log in self._usage.items() if log},
                cursors=dict(self._cursors),
            )

    def clear(self, provider: str | None = None) -> int:
        def doomed(scope: str) -> bool:
            return provider is None or provider_of(scope) == provider

        with self._lock:
            cleared = sum(1 for s in self._cooldowns if doomed(s))
            tables: list[dict[str, Any]] = [
                self._cooldowns, self._failures, self._usage, self._learned, self._cursors
            ]  # fmt: skip
            for table in tables:
                for scope in [s for s in table if doomed(s)]:
                    del table[scope]
            return cleared

    def upkeep_in_background(self) -> None:
        pass  # nothing to keep up

    def close(self) -> None:
        pass
