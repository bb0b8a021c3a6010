"""Stores sum their logs as they change (running totals, a log kept sorted, holds apart from the
learned record): under any sequence of reservations, answers and pruning they decide exactly
as the plain replay of the whole log does."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmroute.budget import Cost, Finished, Learned, ListLog, UsageEntry, free_at, settled
from llmroute.config import Limits
from llmroute.rate import Rate
from llmroute.state import StateStore, open_store
from llmroute.state.base import keep_after
from llmroute.state.sqlite import SQLiteStore
from llmroute.state.usage import SortedUsage
from tests.stores import redis_url, store_url

__all__ = ["redis_url"]  # a fixture, used through request.getfixturevalue
NOW = 1_800_000_000.0
# A narrow and a wide window on requests, one on tokens: the wide one holds the whole log.
LIMITS = Limits(requests=(Rate(4, 2.0), Rate(12, 30.0)), tokens=(Rate(2500, 10.0),))


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    opened = open_store(store_url(request.param, tmp_path, request))
    yield opened
    opened.close()


@dataclass
class Replay:
    """What every store must decide: the whole log replayed, as before any store summed it."""

    entries: list[UsageEntry] = field(default_factory=list)
    learned: Learned = field(default_factory=Learned)

    def free_at(self, cost: Cost, now: float) -> float | None:
        cut = keep_after(LIMITS, self.learned, now)
        self.entries = [e for e in self.entries if e.at > cut]
        return free_at(ListLog(self.entries), self.learned, LIMITS, cost, now)

    def held(self, entry: UsageEntry, now: float) -> None:
        self.entries.append(entry)
        self.learned = self.learned.holding(entry, now)

    def finished(self, done: Finished, now: float) -> None:
        self.learned = self.learned.heard({}, done.entry_id, now)
        self.entries = [settled(e, done) if e.id == done.entry_id else e for e in self.entries]


steps = st.lists(
    st.tuples(
        st.floats(0.0, 4.0),  # seconds since the step before
        st.integers(1, 900),  # tokens the attempt reserves
        st.one_of(st.none(), st.integers(0, 3)),  # how many steps later it is answered
        st.one_of(st.none(), st.integers(1, 900)),  # the tokens its answer counted
        st.floats(0.0, 1.5),  # how long after its reservation it was sent
    ),
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_a_store_decides_as_the_whole_log_replayed(
    store: StateStore, steps: list[tuple[float, int, int | None, int | None, float]]
) -> None:
    scope, replay, now = f"budget:{uuid.uuid4().hex}", Replay(), NOW
    due: dict[int, list[Finished]] = {}
    for step, (gap, tokens, answered_in, counted, delay) in enumerate(steps):
        now += gap
        for done in due.pop(step, []):
            store.finish(scope, done, now)
            replay.finished(done, now)
        cost = Cost(requests=1, tokens=tokens)
        expected = replay.free_at(cost, now)
        got = store.reserve(scope, LIMITS, cost, now)
        assert got.free_at == expected
        if got.entry_id is None:
            continue
        replay.held(UsageEntry(got.entry_id, now, 1, tokens), now)
        if answered_in is not None:
            done = Finished(entry_id=got.entry_id, sent_at=now + delay, tokens=counted)
            due.setdefault(step + 1 + answered_in, []).append(done)
    held = store.snapshot(now).usage.get(scope, [])
    assert sorted(held, key=lambda e: e.id) == sorted(replay.entries, key=lambda e: e.id)


@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "settle", "prune"]), st.floats(0, 100), st.integers(0, 9))
    )
)
def test_sorted_usage_keeps_its_totals_and_its_order(
    ops: list[tuple[str, float, int]],
) -> None:
    log, ids = SortedUsage(), []
    for n, (op, at, pick) in enumerate(ops):
        if op == "add":
            ids.append(str(n))
            log.add(UsageEntry(str(n), at, 1 + pick % 2, pick * 10))
        elif op == "settle" and ids:
            log.settle(Finished(entry_id=ids[pick % len(ids)], sent_at=at, tokens=pick))
        elif op == "prune":
            log.prune(at)
        assert [e.at for e in log.entries] == sorted(e.at for e in log.entries)
        assert log.requests == sum(e.requests for e in log.entries)
        assert log.tokens == sum(e.tokens for e in log.entries)
        for since in (-1.0, at):
            plain = ListLog(log.entries)
            assert log.used("tokens", since) == plain.used("tokens", since)
            assert log.oldest_first(since) == plain.oldest_first(since)


def test_sqlite_totals_follow_every_change(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.sqlite3")
    limits = Limits(requests=(Rate(100, 60.0),))
    held = [store.reserve("budget:a", limits, Cost(tokens=10 * i), NOW + i) for i in range(5)]
    for reservation in held[:3]:
        assert reservation.entry_id is not None
        store.finish("budget:a", Finished(entry_id=reservation.entry_id, sent_at=NOW), NOW + 5)
    store.reserve("budget:a", limits, Cost(), NOW + 63)  # prunes what left the window
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        summed = db.execute("SELECT sum(requests), sum(tokens) FROM usage_log").fetchone()
        totals = db.execute("SELECT requests, tokens FROM usage_totals").fetchone()
    assert totals == summed == (3, 70)
    store.close()


OLD_SCHEMA = (
    "CREATE TABLE usage (id TEXT PRIMARY KEY, scope TEXT NOT NULL, at REAL NOT NULL, "
    "requests INTEGER NOT NULL, tokens INTEGER NOT NULL)",
    "CREATE INDEX usage_window ON usage (scope, at, requests, tokens)",
    "CREATE TABLE learned (scope TEXT PRIMARY KEY, windows TEXT NOT NULL)",
)


def test_a_state_file_of_the_previous_schema_opens_with_its_usage_and_holds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    held = {"id": "h1", "at": NOW, "requests": 1, "tokens": 50}
    with sqlite3.connect(path) as db:
        for statement in OLD_SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO usage VALUES ('u0', 'budget:a', ?, 1, 20)", (NOW - 1,))
        db.execute("INSERT INTO usage VALUES ('h1', 'budget:a', ?, 1, 50)", (NOW,))
        record = {"windows": {}, "pending": {"h1": held}, "rates": {}, "unlimited": False}
        db.execute("INSERT INTO learned VALUES ('budget:a', ?)", (json.dumps(record),))
    db.close()
    store = SQLiteStore(path)
    snapshot = store.snapshot(NOW)
    assert [e.id for e in snapshot.usage["budget:a"]] == ["u0", "h1"]
    assert list(snapshot.learned["budget:a"].pending) == ["h1"]
    two_per_minute = Limits(requests=(Rate(2, 60.0),))
    assert not store.reserve("budget:a", two_per_minute, Cost(), NOW + 1).granted
    store.finish("budget:a", Finished(entry_id="h1", sent_at=NOW + 2, tokens=5), NOW + 3)
    after = store.snapshot(NOW + 3)
    assert after.learned["budget:a"].pending == {}
    assert [(e.id, e.at, e.tokens) for e in after.usage["budget:a"]] == [
        ("u0", NOW - 1, 20), ("h1", NOW + 2, 5)
    ]  # fmt: skip
    store.close()
    assert SQLiteStore(path).snapshot(NOW + 3).usage == after.usage  # migrated once


def test_a_process_of_the_previous_version_counts_the_same_log(tmp_path: Path) -> None:
    """Upgraded while an older llmroute runs on the same file: what the older one writes under
    its names (`usage`) is the new log, so neither grants past the limit."""
    path = tmp_path / "state.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)  # the older process, running
    for statement in OLD_SCHEMA:
        old.execute(statement)
    old.execute("INSERT INTO usage VALUES ('o1', 'budget:a', ?, 1, 20)", (NOW,))
    store = SQLiteStore(path)  # the new version opens it: migrated
    old.execute("UPDATE usage SET at = max(at, ?), tokens = coalesce(?, tokens) WHERE id = ?",
                (NOW + 0.5, 7, "o1"))  # fmt: skip
    old.execute("INSERT INTO usage VALUES ('o2', 'budget:a', ?, 1, 20)", (NOW + 0.6,))
    two_per_minute = Limits(requests=(Rate(3, 60.0),))
    assert store.reserve("budget:a", two_per_minute, Cost(), NOW + 1).granted
    assert not store.reserve("budget:a", two_per_minute, Cost(), NOW + 2).granted  # o1, o2
    rows = old.execute("SELECT id, at, tokens FROM usage ORDER BY at").fetchall()
    assert rows[:2] == [("o1", NOW + 0.5, 7), ("o2", NOW + 0.6, 20)] and len(rows) == 3
    old.execute("DELETE FROM usage WHERE scope = 'budget:a' AND at <= ?", (NOW + 0.55,))
    assert store.reserve("budget:a", two_per_minute, Cost(), NOW + 3).granted  # o1 pruned
    with pytest.raises(sqlite3.OperationalError, match="views may not be indexed"):
        old.execute(OLD_SCHEMA[1].replace("INDEX", "INDEX IF NOT EXISTS"))  # one started now
    old.close()
    store.close()
