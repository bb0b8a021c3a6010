"""State in Redis, shared by llmroute processes on many machines.

Counters use Redis' atomic increments; every read-modify-write (cooldowns that may only grow,
budget reservations) is an optimistic transaction: WATCH the keys, decide in Python with the
same functions as every backend, write in MULTI/EXEC, and start again if another client
changed a watched key in between.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from llmroute.budget import Cost, Finished, Learned, ListLog, settled
from llmroute.config import Limits
from llmroute.cooldowns import Cooldown, provider_of
from llmroute.state.base import (
    LearnedChange,
    Reservation,
    Snapshot,
    decide_reservation,
    decode_entry,
    decode_learned,
    encode_entry,
    encode_learned,
    keep_after,
    learned_change,
)

FOREVER_STORED = 1e18  # JSON has no infinity


class RedisStore:
    def __init__(self, url: str, namespace: str = "llmroute") -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, decode_responses=True)
        self._redis.ping()
        self.ns = namespace
        self._cursors = f"{namespace}:cursors"
        self._cooldowns = f"{namespace}:cooldowns"
        self._failures = f"{namespace}:failures"
        self._learned = f"{namespace}:learned"

    def _usage(self, scope: str) -> str:
        return f"{self.ns}:usage:{scope}"

    def _pending(self, scope: str) -> str:
        """The scope's holds in flight, apart from its learned record that rarely changes."""
        return f"{self.ns}:pending:{scope}"

    def advance_cursor(self, pool: str) -> int:
        return int(self._redis.hincrby(self._cursors, pool, 1)) - 1

    def cooldowns(self, scopes: Iterable[str], now: float) -> dict[str, Cooldown]:
        wanted = list(scopes)
        values = self._redis.hmget(self._cooldowns, wanted) if wanted else []
        found = {s: _decode_cooldown(v) for s, v in zip(wanted, values, strict=True) if v}
        return {s: c for s, c in found.items() if c.until > now}

    def extend_cooldown(self, cooldown: Cooldown) -> Cooldown:
        def update(pipe: Any) -> Cooldown:
            raw = pipe.hget(self._cooldowns, cooldown.scope)
            current = _decode_cooldown(raw) if raw else None
            if current is not None and current.until >= cooldown.until:
                return current
            pipe.multi()
            pipe.hset(self._cooldowns, cooldown.scope, _encode_cooldown(cooldown))
            return cooldown

        result: Cooldown = self._redis.transaction(
            update, self._cooldowns, value_from_callable=True
        )
        return result

    def note_failure(self, scope: str) -> int:
        return int(self._redis.hincrby(self._failures, scope, 1))

    def note_success(self, scope: str) -> None:
        self._redis.hdel(self._failures, scope)

    def reserve(self, scope: str, limits: Limits, cost: Cost, now: float) -> Reservation:
        usage_key, pending_key = self._usage(scope), self._pending(scope)

        def update(pipe: Any) -> Reservation:
            entries = [decode_entry(v) for v in pipe.hvals(usage_key)]
            learned = self._load_learned(pipe, scope)
            cut = keep_after(limits, learned, now)
            log = ListLog(e for e in entries if e.at > cut)
            decision = decide_reservation(log, learned, limits, cost, now)
            stale = [e.id for e in entries if e.at <= cut]
            pipe.multi()
            if stale:
                pipe.hdel(usage_key, *stale)
            if decision.entry is not None:
                pipe.hset(usage_key, decision.entry.id, encode_entry(decision.entry))
            self._store_learned(pipe, scope, learned_change(learned, decision.learned))
            return decision.reservation

        result: Reservation = self._redis.transaction(
            update, usage_key, pending_key, self._learned, value_from_callable=True
        )
        return result

    def finish(self, scope: str, done: Finished, now: float) -> None:
        usage_key, pending_key = self._usage(scope), self._pending(scope)

        def update(pipe: Any) -> None:
            learned = self._load_learned(pipe, scope)
            raw = pipe.hget(usage_key, done.entry_id)
            heard = learned.heard(done.windows, done.entry_id, now, answered=done.heard)
            pipe.multi()
            self._store_learned(pipe, scope, learned_change(learned, heard))
            if raw is not None:
                entry = settled(decode_entry(raw), done)
                pipe.hset(usage_key, done.entry_id, encode_entry(entry))

        self._redis.transaction(update, self._learned, usage_key, pending_key)

    def _load_learned(self, pipe: Any, scope: str) -> Learned:
        """The scope's learned record with its holds in flight (an older version kept them
        inside the record: those count too, until the record is written again)."""
        learned = decode_learned(pipe.hget(self._learned, scope))
        held = {e.id: e for e in map(decode_entry, pipe.hvals(self._pending(scope)))}
        if not held:
            return learned
        return replace(learned, pending={**learned.pending, **held})

    def _store_learned(self, pipe: Any, scope: str, change: LearnedChange) -> None:
        if change.record is not None:
            pipe.hset(self._learned, scope, encode_learned(change.record))
        if change.released:
            pipe.hdel(self._pending(scope), *change.released)
        if change.held:
            pipe.hset(self._pending(scope), mapping={e.id: encode_entry(e) for e in change.held})

    def snapshot(self, now: float) -> Snapshot:
        prefix = f"{self.ns}:usage:"
        usage = {
            key[len(prefix) :]: sorted(
                (decode_entry(v) for v in self._redis.hvals(key)), key=lambda e: e.at
            )
            for key in self._redis.scan_iter(match=f"{_glob_escape(prefix)}*")
        }
        cooldowns = [_decode_cooldown(v) for v in self._redis.hvals(self._cooldowns)]
        return Snapshot(
            cooldowns=[c for c in cooldowns if c.until > now],
            failures={s: int(n) for s, n in self._redis.hgetall(self._failures).items()},
            learned={
                s: self._load_learned(self._redis, s) for s in self._redis.hkeys(self._learned)
            },
            usage={s: e for s, e in usage.items() if e},
            cursors={p: int(v) for p, v in self._redis.hgetall(self._cursors).items()},
        )

    def clear(self, provider: str | None = None) -> int:
        def doomed(scope: str) -> bool:
            return provider is None or provider_of(scope) == provider

        cleared = 0
        for table in (self._cooldowns, self._failures, self._learned, self._cursors):
            fields = [f for f in self._redis.hkeys(table) if doomed(f)]
            if fields:
                removed = int(self._redis.hdel(table, *fields))
                cleared += removed if table == self._cooldowns else 0
        for prefix in (f"{self.ns}:usage:", f"{self.ns}:pending:"):
            for key in self._redis.scan_iter(match=f"{_glob_escape(prefix)}*"):
                if doomed(key[len(prefix) :]):
                    self._redis.delete(key)
        return cleared

    def upkeep_in_background(self) -> None:
        pass  # nothing to keep up

    def close(self) -> None:
        self._redis.close()


def _encode_cooldown(c: Cooldown) -> str:
    until = FOREVER_STORED if math.isinf(c.until) else c.until
    return json.dumps({"scope": c.scope, "until": until, "kind": c.kind, "reason": c.reason})


def _decode_cooldown(raw: str) -> Cooldown:
    fields = json.loads(raw)
    if fields["until"] >= FOREVER_STORED:
        fields["until"] = math.inf
    return Cooldown(**fields)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)
