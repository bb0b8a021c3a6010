"""`llmroute state` and `llmroute state reset`, over the state the router left behind."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from llmroute.cli.app import app
from llmroute.cli.state_view import state_table
from llmroute.status import KeyStatus
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")
    world.config["providers"]["groq"]["limits"] = {"requests": ["30/minute", "1000/day"]}
    world.write_config(isolated_env / "routes.toml")
    return world


def cli(world: World, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env=world.env)
    assert_no_secret(result.stdout, result.stderr)
    return result


def rows(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads(cli(world, "state", "--json").stdout)
    return {(r["key"], r["model"]): r for r in data["keys"]}


def test_state_shows_cooldowns_budgets_and_learned_limits(world: World) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=40))
    world.groq_keys[1].limit(requests=10, per=60.0)
    assert cli(world, "ask", "-t", "other", "hi").exit_code == 0
    state = rows(world)
    first, second = state[("groq#1", "small")], state[("groq#2", "small")]
    assert first["state"] == "cooling" and first["reason"] == "rate_limited 429"
    assert second["state"] == "ready"
    assert second["budgets"] == ["29/30 requests per min", "999/1000 requests per day"]
    assert any(line.startswith("requests 9/10") for line in second["learned"])
    # …and the rate behind that window, which outlives its reset
    measured = (
        "learned from x-ratelimit-limit-requests (window measured from its resets: at least 60 s)"
    )
    assert f"10/min requests, {measured}" in second["learned"]
    assert first["masked"].startswith("gsk_") and "…" in first["masked"]


def test_disabled_keys_are_shown(world: World) -> None:
    world.groq_keys[0].script(Reply.unauthorized())
    cli(world, "ask", "-t", "other", "hi")
    assert rows(world)[("groq#1", "small")]["state"] == "disabled"


def test_reset_one_provider_then_all(world: World) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=40))
    world.backup.keys[0].script(Reply.unauthorized())
    world.groq_keys[1].script(Reply.server_error(503))
    world.groq_keys[2].script(Reply.server_error(503))
    cli(world, "ask", "-t", "other", "--deadline", "1", "hi")
    reset = cli(world, "state", "reset", "groq")
    assert reset.exit_code == 0 and "groq" in reset.stderr
    state = rows(world)
    assert state[("groq#1", "small")]["state"] == "ready"
    assert state[("backup#1", "big")]["state"] == "disabled"
    assert cli(world, "state", "reset").exit_code == 0
    assert rows(world)[("backup#1", "big")]["state"] == "ready"


def test_reset_of_an_unknown_provider_is_a_usage_error(world: World) -> None:
    result = cli(world, "state", "reset", "nope")
    assert result.exit_code == 2 and "no provider 'nope'" in result.stderr


def test_state_table_render() -> None:
    row = KeyStatus(
        "groq", "groq#1", "gsk_…aaa1", "llama-3.3-70b-versatile", "cooling",
        until=1030.0, reason="rate_limited 429", failures=2,
        budgets=["28/30 requests per min"], learned=["tokens 5000/6000, resets in 9s"],
    )  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(state_table([row], now=1000.0))
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    assert lines[0].split() == ["key", "model", "state", "budget", "left", "provider", "says",
                                "failures"]  # fmt: skip
    assert lines[2].split()[:4] == ["groq#1", "llama-3.3-70b-versatile", "cooling", "30s"]
    assert "28/30 requests per min" in lines[2] and "tokens 5000/6000" in lines[2]
    assert "rate_limited 429" in lines[3]
