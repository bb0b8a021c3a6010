"""Pacing and shared state across processes, against the fake provider over real HTTP."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmroute.config import parse_config
from llmroute.cooldowns import next_utc_midnight
from llmroute.router import Router
from llmroute.state import MemoryStore, open_store
from tests.fakeprovider import FakeServer, Reply
from tests.world import GROQ_KEYS, ShiftedClock, World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")
    return world


def paced(world: World, requests: str, task: str = "other") -> World:
    world.config["providers"]["groq"]["limits"] = {"requests": requests}
    world.config["settings"]["default_task"] = task
    return world


def llmroute(world: World, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "llmroute", "ask", "--config", str(config), *args],
        text=True, capture_output=True, env={**os.environ, **world.env}, timeout=60,
    )  # fmt: skip
    assert_no_secret(proc.stdout, proc.stderr)
    return proc


def keys_used(world: World) -> dict[str, int]:
    return dict(collections.Counter(str(e.key) for e in world.server.log if e.status == 200))


def test_sequential_processes_pace_a_pool_evenly_without_429s(
    world: World, isolated_env: Path
) -> None:
    for key in world.groq_keys:
        key.limit(requests=1, per=1.0)
    config = paced(world, "1/1s").write_config(isolated_env / "routes.toml")
    # 21 processes, 7 rounds of the pool: each pays the SDK's import (~1 s on these machines),
    # which is what a shell loop is like and why this is not 60.
    for _ in range(21):
        assert llmroute(world, config, "-q", "hi").returncode == 0
    assert [e.status for e in world.server.log].count(429) == 0
    used = keys_used(world)
    assert set(used) == set(GROQ_KEYS)
    assert all(6 <= n <= 8 for n in used.values()), used


def test_eight_processes_share_one_state_file_without_losing_updates(
    world: World, isolated_env: Path
) -> None:
    world.config["providers"]["backup"]["limits"] = {"requests": "100000/day"}
    config = paced(world, "100000/day").write_config(isolated_env / "routes.toml")
    env = {**os.environ, **world.env}
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.worker", str(config), "50"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]  # fmt: skip
    made: collections.Counter[str] = collections.Counter()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "locked" not in err, err
        made.update(json.loads(out))
    store = open_store(world.config["settings"]["state"])
    snapshot = store.snapshot(0)
    store.close()
    assert made["answered"] == 400, collections.Counter(e.outcome for e in world.server.log)
    assert snapshot.cursors["groq"] == made["cursor:groq"] >= 400  # each step counted once
    assert sum(len(e) for e in snapshot.usage.values()) == made["granted"] >= 400


async def test_a_failing_key_costs_one_call_per_circuit_period(world: World) -> None:
    world.groq_keys[0].default = Reply.server_error(503)
    clock = ShiftedClock()
    async with Router(parse_config(world.config), env=world.env, clock=clock,
                      store=MemoryStore()) as router:  # fmt: skip
        for _ in range(100):
            clock.offset += 1.0  # 100 requests over 100 s of router time
            await router.complete("other", "hi")
    calls = len(world.server.calls(provider="groq", key=world.groq_keys[0]))
    # Open periods of 5, 10, 20, 40 s after each failure: calls at 1, 6, 16, 36 and 76 s.
    assert calls == 5


@pytest.mark.parametrize("reply", [Reply.quota_exhausted(), Reply.error(429, {"error": {
    "message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}})],
    ids=["daily-cap", "insufficient-quota"])  # fmt: skip
def test_a_spent_daily_quota_is_not_called_again_today_even_by_new_processes(
    world: World, isolated_env: Path, reply: Reply
) -> None:
    world.groq_keys[0].script(reply)
    config = paced(world, "1000/day").write_config(isolated_env / "routes.toml")
    for _ in range(7):
        assert llmroute(world, config, "-q", "hi").returncode == 0
    assert len(world.server.calls(provider="groq", key=world.groq_keys[0])) == 1
    store = open_store(world.config["settings"]["state"])
    (cooldown,) = store.snapshot(0).cooldowns
    store.close()
    assert cooldown.kind == "quota_exhausted"
    # No reset given by the groq dialect's insufficient_quota: the next UTC midnight.
    assert cooldown.until <= next_utc_midnight(cooldown.until - 1) + 1


async def test_learned_limits_stop_before_the_provider_says_no(world: World) -> None:
    world.groq_keys[0].limit(requests=3, per=30.0)  # headers report it; nothing configured
    async with Router(parse_config(world.config), env=world.env, store=MemoryStore()) as router:
        for _ in range(8):
            await router.complete("groq:small", "hi", deadline=5)
    statuses = [e.status for e in world.server.log]
    assert statuses.count(429) == 0
    assert len(world.server.calls(provider="groq", key=world.groq_keys[0])) == 3


async def test_no_budget_is_skipped_and_waited_for(world: World) -> None:
    world.config["providers"]["groq"]["limits"] = {"requests": "1/0.5s"}
    async with Router(parse_config(world.config), env=world.env, store=MemoryStore()) as router:
        results = [await router.complete("groq:small", "hi") for _ in range(4)]
    last = results[-1]
    assert [a.outcome for a in last.attempts][:3] == ["skipped"] * 3
    assert last.attempts[0].reason.startswith("no budget for")
    assert last.attempts[-1].outcome == "ok"
    assert [e.status for e in world.server.log].count(429) == 0


async def test_account_scope_makes_keys_share_one_budget(world: World) -> None:
    world.config["providers"]["groq"] |= {"limit_scope": "account", "limits": {"requests": "2/30s"}}
    async with Router(parse_config(world.config), env=world.env, store=MemoryStore()) as router:
        await router.complete("other", "hi")
        await router.complete("other", "hi")
        third = await router.complete("fast", "hi")
    assert third.candidate.provider == "backup"
    assert [a.reason[:9] for a in third.attempts[:3]] == ["no budget"] * 3
