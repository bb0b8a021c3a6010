"""Where cooldowns, circuit counts and pool cursors live. `MemoryStore` serves one process."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from llmroute.cooldowns import Cooldown


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

    def all_cooldowns(self, now: float) -> list[Cooldown]: ...

    def clear(self, prefix: str = "") -> int:
        """Forget cooldowns and counts whose scope contains `prefix`; return how many."""

    def close(self) -> None: ...


class MemoryStore:
    """State for one process (library use and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: dict[str, int] = {}
        self._cooldowns: dict[str, Cooldown] = {}
        self._failures: dict[str, int] = {}

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

    def all_cooldowns(self, now: float) -> list[Cooldown]:
        with self._lock:
            return [c for c in self._cooldowns.values() if c.until > now]

    def clear(self, prefix: str = "") -> int:
        with self._lock:
            doomed = [s for s in self._cooldowns if prefix in s]
            for scope in doomed:
                del self._cooldowns[scope]
            for scope in [s for s in self._failures if prefix in s]:
                del self._failures[scope]
            return len(doomed)

    def close(self) -> None:
        pass
