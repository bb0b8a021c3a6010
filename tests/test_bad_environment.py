"""A bad config, a bad key, a bad state file (issue 13, findings 3, 4 and 6), through the CLI
against the fake provider: a sentence naming what to fix, exit 2, and the pool keeps serving
whatever is healthy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmroute.cli.app import app
from llmroute.config import parse_config
from llmroute.router import Router
from llmroute.state import MemoryStore
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, assert_no_secret, make_world, to_toml


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    return make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")


def run(world: World, *args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, list(args), env={**world.env, **(env or {})})
    assert_no_secret(result.stdout, result.stderr)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize(
    ("table", "key", "value", "fragment"),
    [("settings", "timeout", "nan", "[settings] timeout must be a number of seconds"),
     ("settings", "deadline", "inf", "[settings] deadline must be"),
     ("settings", "ttft_timeout", "1e-9", "[settings] ttft_timeout must be"),
     ("settings", "timeout", "9" * 400, "[settings] timeout must be"),
     ("providers.groq", "timeout", "nan", "[providers.groq] timeout must be"),
     ("providers.groq", "base_url", '"http://127.0.0.1:99999/v1"', "base_url"),
     ("providers.groq", "base_url", '"http://256.256.256.256/v1"', "not an IPv4 address"),
     ("providers.groq.limits", "requests", '"0/1s"', "allows nothing")],
    ids=["nan", "inf", "tiny-ttft", "huge-int", "provider-nan", "port", "ipv4", "zero-limit"],
)  # fmt: skip
def test_config_mistakes_name_the_file_table_and_key(
    world: World, isolated_env: Path, table: str, key: str, value: str, fragment: str
) -> None:
    text = to_toml(world.config)
    text = text.replace(f"[{table}]\n", f"[{table}]\n{key} = {value}\n", 1)
    if f"[{table}]" not in text:
        text += f"\n[{table}]\n{key} = {value}\n"
    config = isolated_env / "routes.toml"
    config.write_text(_without_duplicate(text, table, key))
    result = run(world, "ask", "--direct", "hi")
    assert result.exit_code == 2, result.stderr
    assert "routes.toml" in result.stderr and fragment in result.stderr


def _without_duplicate(text: str, table: str, key: str) -> str:
    """Keep the first `key =` of `[table]` (the injected one) when the world already sets it."""
    lines, seen, current = [], False, ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        if current == table and line.startswith(f"{key} ="):
            if seen:
                continue
            seen = True
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_a_config_that_is_not_utf8_is_named(world: World, isolated_env: Path) -> None:
    (isolated_env / "routes.toml").write_bytes(b'[settings]\ndefault_task = "f\xe9st"\n')
    result = run(world, "ask", "--direct", "hi")
    assert result.exit_code == 2
    assert "routes.toml is not UTF-8 text (byte" in result.stderr


def test_a_key_that_cannot_be_a_header_is_that_keys_problem(
    world: World, isolated_env: Path
) -> None:
    world.write_config(isolated_env / "routes.toml")
    pasted = {"GROQ_API_KEY": world.env["GROQ_API_KEY"] + "\u2019"}  # a curly quote pasted along
    result = run(world, "ask", "--direct", "-m", "groq:small", "hi", env=pasted)
    assert result.exit_code == 0 and result.stdout == "echo: hi\n"
    assert "groq#1" not in result.stderr  # not tried: the pool goes on without it
    checks = run(world, "providers", "--json", env=pasted)
    assert '"status": "unusable"' in checks.stdout
    assert "non-ASCII character at position" in checks.stdout


async def test_a_candidate_that_cannot_be_sent_to_fails_alone(world: World) -> None:
    """URLs the config would reject now, built past validation: the candidate fails, is
    reported, and the route goes on (before, the whole request raised)."""
    config = parse_config(world.config)
    for bad in ("http://127.0.0.1:99999/v1", "http://256.256.256.256/v1", "http://[::1/v1"):
        broken = dataclasses.replace(config.providers["groq"], base_url=bad)
        providers = {**config.providers, "groq": broken}
        async with Router(
            dataclasses.replace(config, providers=providers), env=world.env, store=MemoryStore()
        ) as router:
            result = await router.complete("fast", "hi")
        assert result.candidate.provider == "backup"
        assert result.attempts[0].outcome == "unavailable"
        assert "base_url" in result.attempts[0].reason


def test_a_corrupt_state_file_is_moved_aside_and_the_request_answered(
    world: World, isolated_env: Path
) -> None:
    world.write_config(isolated_env / "routes.toml")
    state = isolated_env / "state.sqlite3"
    state.write_bytes(b"this is not a database" * 100)
    result = run(world, "ask", "--direct", "-q", "hi")
    assert result.exit_code == 0 and result.stdout == "echo: hi\n"
    aside = list(isolated_env.glob("state.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


def test_a_state_location_that_cannot_be_used_says_what_to_do(
    world: World, isolated_env: Path
) -> None:
    world.write_config(isolated_env / "routes.toml")
    (isolated_env / "state.sqlite3").mkdir()  # a directory in the way
    for command in (["ask", "--direct", "hi"], ["state"], ["state", "reset"]):
        result = run(world, *command)
        assert result.exit_code == 2, command
        assert f"cannot use the state file {isolated_env / 'state.sqlite3'}" in result.stderr
        assert "LLMROUTE_STATE" in result.stderr


def test_state_reset_hard_starts_afresh(world: World, isolated_env: Path) -> None:
    world.write_config(isolated_env / "routes.toml")
    assert run(world, "ask", "--direct", "-q", "hi").exit_code == 0
    result = run(world, "state", "reset", "--hard")
    assert result.exit_code == 0 and "starting afresh" in result.stderr
    assert not (isolated_env / "state.sqlite3").exists()
    assert list(isolated_env.glob("state.sqlite3.corrupt-*"))
    assert run(world, "ask", "--direct", "-q", "hi").exit_code == 0


def test_a_process_with_its_own_tight_timeouts_does_not_poison_shared_state(
    world: World, isolated_env: Path
) -> None:
    """Finding 5: one process's tiny first-token timeout must not cool providers down for
    the next process on the same state."""
    world.write_config(isolated_env / "routes.toml")
    for key in world.groq_keys:
        key.script(Reply.stall(3))
    impatient = run(world, "ask", "--direct", "-q", "-m", "groq:small", "--ttft-timeout", "0.2",
                    "--deadline", "1", "hi")  # fmt: skip
    assert impatient.exit_code == 1
    state = json.loads(run(world, "state", "--json").stdout)
    assert all(row["state"] == "ready" for row in state["keys"]), state
    patient = run(world, "ask", "--direct", "-q", "-m", "groq:small", "hi")
    assert patient.exit_code == 0 and patient.stdout == "echo: hi\n"
