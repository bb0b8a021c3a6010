"""The request log's parts on their own: `--since` and durations (fuzzed), the content
policy, how records are built and summed, daily headroom, the background writer; and the
library and the gateway as callers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from llmroute.attempt import Attempt, Candidate, Result, Usage
from llmroute.budget import Learned
from llmroute.config import parse_config
from llmroute.errors import RequestFailedError, RequestRejectedError, StreamBrokenError
from llmroute.keys import ApiKey, Redactor
from llmroute.pools import build_pools
from llmroute.requestlog import LogPolicy
from llmroute.requestlog.headroom import DailyLimit, daily_limits, headroom
from llmroute.requestlog.logfile import connect
from llmroute.requestlog.query import Filters, find, match_words
from llmroute.requestlog.record import LogRecord, ended
from llmroute.requestlog.usage import GROUPINGS, summarize
from llmroute.requestlog.writer import LogWriter
from llmroute.router import Router
from llmroute.signals import learned_windows
from llmroute.state import MemoryStore, Snapshot
from llmroute.timespan import parse_duration, parse_since, utc_midnight_after
from tests.fakeprovider import FakeServer
from tests.world import make_world

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "llmroute-hypothesis")
NOW = 1_796_126_400.0  # 2026-12-01 12:00 UTC
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=300)

# -- when: --since and log_retention -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("2w", 1209600), (" 1.5 h", 5400),
     ("24H", 86400), ("10min", 600)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_since(text, NOW) == NOW - seconds


def test_today_yesterday_and_dates_are_local_midnights() -> None:
    midnight = datetime.fromtimestamp(NOW).replace(hour=0, minute=0, second=0, microsecond=0)
    assert parse_since("today", NOW) == midnight.timestamp()
    assert parse_since("Yesterday", NOW) == (midnight - timedelta(days=1)).timestamp()
    assert parse_since("2026-12-01", NOW) == datetime(2026, 12, 1).timestamp()
    assert parse_since("2026-12-01T10:00+00:00", NOW) == 1_796_119_200.0


@pytest.mark.parametrize("text", ["", "soon", "0h", "-2h", "2 fortnights", "2026-13-01", "inf d"])
def test_what_is_no_time_is_a_value_error_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|date"):
        parse_since(text, NOW)


@FUZZ
@given(st.text(max_size=30))
def test_since_never_fails_but_with_a_value_error(text: str) -> None:
    try:
        assert isinstance(parse_since(text, NOW), float)
    except ValueError as exc:
        assert repr(text) in str(exc) or "duration" in str(exc)


@FUZZ
@given(
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604800)]),
)
def test_a_whole_duration_is_that_long_ago(count: int, unit: tuple[str, int]) -> None:
    assert parse_since(f"{count}{unit[0]}", NOW) == NOW - count * unit[1]


def test_daily_quotas_start_afresh_at_utc_midnight() -> None:
    assert utc_midnight_after(NOW) == datetime(2026, 12, 2, tzinfo=UTC).timestamp()


# -- who logs what -----------------------------------------------------------------------------


def test_the_callers_choice_wins_then_the_setting_then_the_callers_default() -> None:
    assert LogPolicy("ask", content=False).keeps_content(True) is False
    assert LogPolicy("serve", content_default=False).keeps_content(True) is True
    assert LogPolicy("serve", content_default=False).keeps_content(None) is False
    assert LogPolicy("ask").keeps_content(None) is True


KEY = ApiKey("groq#1", "GROQ_API_KEY", "gsk_secret_secret_1234")
CANDIDATE = Candidate("groq", KEY, "small")


def attempt(outcome: str = "ok", status: int | None = 200, key: ApiKey = KEY) -> Attempt:
    return Attempt(candidate=Candidate("groq", key, "small"), outcome=outcome, status=status)


def record_of(result: Result | None, error: BaseException | None, **kw: Any) -> LogRecord:
    return ended(
        at=NOW, source="library", route="fast", messages=[{"role": "user", "content": "hi"}],
        attempts=kw.pop("attempts", [attempt()]), latency_s=0.5, waited_s=0.0, result=result,
        error=error, content=kw.pop("content", True),
    )  # fmt: skip


RESULT = Result(content="hello", candidate=CANDIDATE, latency_s=0.5, usage=Usage(3, 4))


@pytest.mark.parametrize(
    ("result", "error", "outcome", "code"),
    [(RESULT, None, "answered", 0), (None, RequestFailedError("all failed", []), "failed", 1),
     (None, RequestRejectedError("bad", []), "rejected", 3),
     (None, StreamBrokenError("cut", [], "hel"), "broken", 1),
     (None, asyncio.CancelledError(), "interrupted", 130),
     (None, KeyboardInterrupt(), "interrupted", 130), (None, None, "interrupted", 130)],
)  # fmt: skip
def test_how_a_request_ended(
    result: Result | None, error: BaseException | None, outcome: str, code: int
) -> None:
    record = record_of(result, error)
    assert (record.outcome, record.exit_code) == (outcome, code)
    assert record.answer == {"answered": "hello", "broken": "hel"}.get(outcome)
    assert record.key == ("groq#1" if result else None)


def test_without_content_no_text_is_kept() -> None:
    record = record_of(RESULT, None, content=False)
    assert (record.prompt, record.answer, record.system) == (None, None, None)
    assert (record.tokens_in, record.tokens_out, record.key) == (3, 4, "groq#1")


# -- usage and headroom ------------------------------------------------------------------------


def logged(*attempts: Attempt, outcome: str = "answered", at: float = NOW) -> LogRecord:
    return LogRecord(
        at=at, source="ask", route="fast", outcome=outcome, latency_s=1.0,
        attempts=tuple(a.to_dict() for a in attempts), tokens_in=10, tokens_out=5,
        key="x" if outcome == "answered" else None,
    )  # fmt: skip


KEY2 = ApiKey("groq#2", "GROQ_API_KEY_2", "gsk_secret_secret_5678")
SOME = [
    logged(attempt("rate_limited", 429), attempt(key=KEY2)),
    logged(attempt("unavailable", 503), attempt("auth", 401, KEY2), outcome="failed"),
    logged(attempt("skipped", None), outcome="failed"),
    logged(attempt(key=KEY2)),
]


@pytest.mark.parametrize("by", GROUPINGS)
def test_every_column_adds_up_to_the_same_total_whatever_the_grouping(by: str) -> None:
    rows, total = summarize(SOME, by)
    figures = total.to_dict()
    assert (figures["answered"], figures["failed"], figures["fallbacks"], figures["429s"]) == (
        2, 2, 2, 1,
    )  # fmt: skip
    assert (figures["tokens_in"], figures["tokens_out"]) == (20, 10)
    for column in ("answered", "failed", "fallbacks", "429s", "tokens_in"):
        assert sum(r.to_dict()[column] for r in rows) == figures[column]


def test_by_key_a_429_counts_against_the_key_that_sent_it() -> None:
    rows = {r.group: r.to_dict() for r in summarize(SOME, "key")[0]}
    assert rows["groq#1"] == rows["groq#1"] | {"answered": 0, "429s": 1, "fallbacks": 2}
    assert rows["groq#2"] == rows["groq#2"] | {"answered": 2, "failed": 1, "tokens_in": 20}
    assert rows["-"]["failed"] == 1  # nothing was called


def test_headroom_counts_what_providers_accepted_today_per_budget(
    fake_server: FakeServer,
) -> None:
    world = make_world(fake_server)
    world.config["providers"]["groq"]["limits"] = {"requests": "1000/day"}
    world.config["providers"]["groq"]["limit_scope"] = "account"
    world.config["providers"]["backup"]["models"]["big"]["requests"] = ["5/minute", "50/day"]
    config = parse_config(world.config)
    limits = daily_limits(config, build_pools(config, world.env), None, NOW)
    assert {(lim.budget, lim.model, lim.requests) for lim in limits} == {
        ("groq (account)", "small", 1000), ("backup#1", "big", 50),
    }  # fmt: skip
    learned = DailyLimit(provider="groq", model="small", budget="groq#2", keys=frozenset(
        {"groq#2"}), tokens=100, resets_at=NOW + 60, source="learned")  # fmt: skip
    rooms = headroom([*limits, learned], SOME, NOW)
    account = next(r for r in rooms if r.limit.budget == "groq (account)")
    assert (account.requests, account.requests_left) == (4, 996)  # 3 ok or failed, the 429 not
    assert account.resets_at == utc_midnight_after(NOW)
    mine = next(r for r in rooms if r.limit.source == "learned")
    assert (mine.requests, mine.tokens, mine.tokens_left, mine.resets_at) == (3, 30, 70, NOW + 60)


def test_a_daily_limit_learned_from_headers_covers_what_limits_per_shares(
    fake_server: FakeServer,
) -> None:
    world = make_world(fake_server)
    world.config["providers"]["groq"]["limits_per"] = "account"  # keys and models share it
    config = parse_config(world.config)
    pools = build_pools(config, world.env)
    day = {"x-ratelimit-limit": "50", "x-ratelimit-remaining": "0",
           "x-ratelimit-reset": str(int((NOW + 9 * 3600) * 1000))}  # fmt: skip
    learned = Learned().heard(learned_windows(day, NOW), None, NOW)
    snapshot = Snapshot(learned={"budget:groq:*:*": learned})
    limits = daily_limits(config, pools, snapshot, NOW)
    assert [(lim.budget, lim.model, lim.requests, lim.source) for lim in limits] == [
        ("groq (account)", "*", 50, "learned"),
    ]
    assert limits[0].resets_at == pytest.approx(NOW + 9 * 3600, abs=1e-3)
    assert limits[0].keys == {"groq#1", "groq#2", "groq#3"}
    # every model of the account counts: SOME's groq requests went to "small"
    room = headroom(limits, SOME, NOW)[0]
    assert room.requests == 4
    # Ten hours on, the day's window has reset and a per-minute one (same header, limit 20) is
    # live: the daily row must not take the minute's reset.
    later = NOW + 10 * 3600
    minute = {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "19",
              "x-ratelimit-reset": str(int((later + 40) * 1000))}  # fmt: skip
    learned = learned.heard(learned_windows(minute, later), None, later)
    snapshot = Snapshot(learned={"budget:groq:*:*": learned})
    (daily,) = daily_limits(config, pools, snapshot, later)
    assert daily.requests == 50 and daily.resets_at is None  # the next UTC midnight


# -- the writer --------------------------------------------------------------------------------


def writer(path: Path, retention_s: float | None = None) -> LogWriter:
    return LogWriter(path, retention_s=retention_s, redact=Redactor([KEY.secret]))


def test_records_are_written_in_the_background_and_read_back(tmp_path: Path) -> None:
    log = writer(tmp_path / "log.sqlite3")
    for _ in range(50):
        log.put(record_of(RESULT, None, attempts=[attempt()]))
    log.put(ended(at=NOW, source="ask", route="fast",
                  messages=[{"role": "user", "content": f"quoting {KEY.secret}"}],
                  attempts=[], latency_s=0.1, waited_s=0, result=None, error=None,
                  content=True))  # fmt: skip
    log.flush()
    with closing(connect(tmp_path / "log.sqlite3", create=False)) as db:
        assert len(find(db, Filters(limit=0))) == 51
        (quoted,) = find(db, Filters(text="quoting"))
    log.close()
    assert quoted.prompt == "quoting gsk_…1234"
    files = b"".join(p.read_bytes() for p in tmp_path.glob("log.sqlite3*"))
    assert files and KEY.secret.encode() not in files


def test_an_unwritable_log_is_reported_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("in the way")
    log = writer(tmp_path / "file" / "log.sqlite3")
    with caplog.at_level(logging.WARNING, logger="llmroute"):
        for _ in range(5):
            log.put(record_of(RESULT, None))
            log.flush()
        log.close()
    assert [r.getMessage().count("cannot be written") for r in caplog.records] == [1]


def test_a_log_failing_in_use_is_reported_once_and_the_rest_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmroute.requestlog.writer as writer_module

    log = writer(tmp_path / "log.sqlite3")
    log.put(record_of(RESULT, None))
    log.flush()

    def disk_full(db: sqlite3.Connection) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(writer_module, "transaction", disk_full)
    with caplog.at_level(logging.WARNING, logger="llmroute"):
        for _ in range(3):
            log.put(record_of(RESULT, None))
            log.flush()
        log.close()
    assert ["disk is full" in r.getMessage() for r in caplog.records] == [True]
    with closing(connect(tmp_path / "log.sqlite3", create=False)) as db:
        assert len(find(db, Filters(limit=0))) == 1


def test_a_last_write_that_fails_does_not_hold_up_the_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ask` closes its log within the writer's gathering: the record and the stop travel in
    one batch. If that batch cannot be written, close must return at once, not wait for a
    stop already taken off the queue (which cost a 35 s join)."""
    import llmroute.requestlog.writer as writer_module

    def disk_full(db: sqlite3.Connection) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(writer_module, "transaction", disk_full)
    log = writer(tmp_path / "log.sqlite3")
    log.put(record_of(RESULT, None))
    closed = threading.Event()
    threading.Thread(target=lambda: (log.close(), closed.set()), daemon=True).start()
    assert closed.wait(10), "close() hung on a failed last write"


def test_old_records_are_pruned_when_a_writer_starts(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"

    def days_ago(days: float) -> LogRecord:
        return replace(record_of(RESULT, None), at=time.time() - days * 86400)

    first = writer(path)
    first.put(days_ago(40))
    first.put(days_ago(20))
    first.close()
    second = writer(path, retention_s=30 * 86400)
    second.put(days_ago(0))
    second.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM requests").fetchone() == (2,)


def test_user_text_is_never_fts_syntax() -> None:
    assert match_words('say "hi" AND -x*') == '"say" """hi""" "AND" "-x*"'
    assert match_words("   ") == '""'


# -- callers: the library, the gateway -----------------------------------------------------------


async def test_the_library_logs_without_text_unless_told(
    fake_server: FakeServer, tmp_path: Path
) -> None:
    world = make_world(fake_server)
    config = parse_config(world.config)
    env = {**world.env, "LLMROUTE_LOG": str(tmp_path / "log.sqlite3")}
    async with Router(config, env=env, store=MemoryStore(), log=None) as router:
        await router.complete("fast", "not logged")
    assert not (tmp_path / "log.sqlite3").exists()
    async with Router(config, env=env, store=MemoryStore()) as router:
        await router.complete("fast", "logged, not its text")
    async with Router(config, env=env, store=MemoryStore(), log=LogPolicy(content=True)) as router:
        await router.complete("fast", "logged")
        stream = router.stream("fast", "stopped early")
        async for _ in stream:
            break
        await stream.aclose()
    with closing(connect(tmp_path / "log.sqlite3", create=False)) as db:
        found = find(db, Filters(limit=0))
    assert [(r.source, r.prompt, r.outcome) for r in found] == [
        ("library", None, "answered"), ("library", "logged", "answered"),
        ("library", "stopped early", "interrupted"),
    ]  # fmt: skip


def test_the_gateway_serves_usage_and_logs_without_text(
    fake_server: FakeServer, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from llmroute.gateway.app import build_app
    from llmroute.requestlog.report import usage_report

    world = make_world(fake_server)
    config = parse_config(world.config)
    env = {**world.env, "LLMROUTE_LOG": str(tmp_path / "log.sqlite3")}
    serve = LogPolicy("serve", content_default=False)
    router = Router(config, env=env, store=MemoryStore(), log=serve)
    with TestClient(build_app(router)) as client:
        hello = {"model": "fast", "messages": [{"role": "user", "content": "team secret"}]}
        assert client.post("/v1/chat/completions", json=hello).status_code == 200
        usage = client.get("/v1/llmroute/usage", params={"by": "key", "since": "1h"})
        assert client.get("/v1/llmroute/usage", params={"since": "soon"}).status_code == 400
        assert client.get("/v1/llmroute/usage", params={"by": "colour"}).status_code == 400
    body = usage.json()
    now = time.time()
    pools = build_pools(config, env)
    report = usage_report(tmp_path / "log.sqlite3", config, pools, since=now - 3600, by="key",
                          now=now)  # fmt: skip
    expected = report.to_dict()
    assert body["rows"] == expected["rows"] and body["rows"][0]["answered"] == 1
    with closing(connect(tmp_path / "log.sqlite3", create=False)) as db:
        (record,) = find(db, Filters())
    assert (record.source, record.prompt, record.answer, record.key) == (
        "serve", None, None, "groq#1",
    )  # fmt: skip
