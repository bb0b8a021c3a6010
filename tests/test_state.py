"""One behaviour, three backends: memory, SQLite and Redis answer alike."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmroute.budget import Cost, Finished, LearnedWindow
from llmroute.config import Limits
from llmroute.cooldowns import FOREVER, Cooldown
from llmroute.errors import ConfigError
from llmroute.rate import Rate
from llmroute.state import StateStore, open_store, sqlite
from tests.gateway import wait_until
from tests.stores import redis_url, store_url

__all__ = ["redis_url"]  # a fixture, used through request.getfixturevalue
NOW = 1_800_000_000.0
LIMITS = Limits(requests=(Rate(2, 10.0),))


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    opened = open_store(store_url(request.param, tmp_path, request))
    yield opened
    opened.close()


def test_cursor_steps_once_per_call(store: StateStore) -> None:
    assert [store.advance_cursor("groq") for _ in range(4)] == [0, 1, 2, 3]
    assert store.advance_cursor("cerebras") == 0


def test_cooldowns_extend_never_shorten(store: StateStore) -> None:
    store.extend_cooldown(Cooldown("a", NOW + 30, "rate_limited", "rate_limited 429"))
    kept = store.extend_cooldown(Cooldown("a", NOW + 10, "rate_limited", "rate_limited 429"))
    assert kept.until == NOW + 30
    store.extend_cooldown(Cooldown("a", NOW + 60, "rate_limited", "longer"))
    assert store.cooldowns(["a", "b"], NOW)["a"].until == NOW + 60
    assert store.cooldowns(["a"], NOW + 61) == {}


def test_disabled_survives_the_round_trip(store: StateStore) -> None:
    store.extend_cooldown(Cooldown("key:groq:groq#1:abc", FOREVER, "auth", "auth 401"))
    found = store.cooldowns(["key:groq:groq#1:abc"], NOW + 10**9)
    assert math.isinf(found["key:groq:groq#1:abc"].until)


def test_circuit_counts(store: StateStore) -> None:
    assert [store.note_failure("s") for _ in range(3)] == [1, 2, 3]
    store.note_success("s")
    assert store.note_failure("s") == 1


def test_reservations_respect_the_window(store: StateStore) -> None:
    first = store.reserve("budget:x", LIMITS, Cost(), NOW)
    second = store.reserve("budget:x", LIMITS, Cost(), NOW + 1)
    third = store.reserve("budget:x", LIMITS, Cost(), NOW + 2)
    assert first.granted and second.granted and not third.granted
    assert third.free_at is not None and NOW + 10 < third.free_at < NOW + 10.5
    assert store.reserve("budget:x", LIMITS, Cost(), third.free_at + 0.01).granted
    assert store.reserve("budget:other", LIMITS, Cost(), NOW + 2).granted


def test_finish_settles_tokens_and_releases_the_hold(store: StateStore) -> None:
    limits = Limits(tokens=(Rate(1000, 60.0),))
    held = store.reserve("budget:t", limits, Cost(tokens=900), NOW)
    assert held.entry_id is not None
    assert not store.reserve("budget:t", limits, Cost(tokens=200), NOW + 1).granted
    store.finish("budget:t", Finished(entry_id=held.entry_id, sent_at=NOW, tokens=100), NOW + 1)
    assert store.reserve("budget:t", limits, Cost(tokens=200), NOW + 2).granted


def test_learned_windows_gate_reservations(store: StateStore) -> None:
    window = {
        "requests": LearnedWindow(dimension="requests", remaining=2, reset_at=NOW + 20, limit=30)
    }
    first = store.reserve("budget:l", Limits(), Cost(), NOW)
    assert first.entry_id is not None
    store.finish(
        "budget:l", Finished(entry_id=first.entry_id, sent_at=NOW, windows=window), NOW
    )  # the provider: 2 left
    in_flight = [store.reserve("budget:l", Limits(), Cost(), NOW + 1) for _ in range(2)]
    assert all(r.granted for r in in_flight)  # 1 left, then 0 left
    blocked = store.reserve("budget:l", Limits(), Cost(), NOW + 1)
    assert not blocked.granted and blocked.free_at == NOW + 20
    for held in in_flight:
        assert held.entry_id is not None
        store.finish("budget:l", Finished(entry_id=held.entry_id, sent_at=NOW + 1), NOW + 2)
    assert store.reserve("budget:l", Limits(), Cost(), NOW + 21).granted


def test_finish_stamps_the_entry_when_it_was_sent(store: StateStore) -> None:
    held = store.reserve("budget:s", LIMITS, Cost(), NOW)
    assert held.entry_id is not None
    store.finish("budget:s", Finished(entry_id=held.entry_id, sent_at=NOW + 3), NOW + 3.2)
    (entry,) = store.snapshot(NOW + 4).usage["budget:s"]
    assert entry.at == NOW + 3  # its window frees 10 s after it left, not after it was held


def test_snapshot_and_clear(store: StateStore) -> None:
    store.extend_cooldown(Cooldown("keymodel:groq:groq#1:f:m", NOW + 30, "rate_limited", "r"))
    store.extend_cooldown(Cooldown("keymodel:cerebras:cerebras#1:f:m", NOW + 30, "timeout", "t"))
    held = store.reserve("budget:groq:groq#1:f:m", LIMITS, Cost(), NOW)
    assert held.entry_id is not None
    window = {"tokens": LearnedWindow(dimension="tokens", remaining=5, reset_at=NOW + 9)}
    store.finish(
        "budget:groq:groq#1:f:m", Finished(entry_id=held.entry_id, sent_at=NOW, windows=window), NOW
    )
    snap = store.snapshot(NOW)
    assert len(snap.cooldowns) == 2 and "budget:groq:groq#1:f:m" in snap.usage
    assert snap.learned["budget:groq:groq#1:f:m"].windows["tokens"].remaining == 5
    assert store.clear("groq") == 1
    after = store.snapshot(NOW)
    assert [c.scope for c in after.cooldowns] == ["keymodel:cerebras:cerebras#1:f:m"]
    assert after.usage == {} and after.learned == {}


def test_unknown_store_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not one of"):
        open_store("postgres://x")


def test_every_store_takes_upkeep_in_background(store: StateStore) -> None:
    store.upkeep_in_background()
    store.upkeep_in_background()  # once is enough: a second call changes nothing
    assert store.reserve("b", LIMITS, Cost(), NOW).granted


def rows_in_the_file_itself(path: Path) -> int:
    """Usage rows in the database file, not counting what only its WAL holds yet."""
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM usage_log").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table: the file is all in the WAL yet
        return 0
    finally:
        db.close()


@pytest.mark.parametrize("upkeep", [False, True])
def test_a_long_running_process_checkpoints_in_a_thread_of_its_own(
    upkeep: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY_S", 0.02)
    path = tmp_path / "state.sqlite3"
    store = sqlite.SQLiteStore(path)
    if upkeep:
        store.upkeep_in_background()
    try:
        for i in range(20):  # a few pages: far from the 1000 at which a commit checkpoints
            assert store.reserve("b", Limits(requests=(Rate(100, 60.0),)), Cost(), NOW + i).granted
        if upkeep:  # the checkpointer copies them into the file itself, soon
            wait_until(lambda: rows_in_the_file_itself(path) == 20, 5, "a checkpoint")
        else:  # without it, they stay in the WAL until a commit crosses 1000 pages
            assert rows_in_the_file_itself(path) == 0
    finally:
        store.close()
