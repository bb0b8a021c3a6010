"""`llmroute ask` through a running gateway: found by itself or by LLMROUTE_URL, with the same
stdout, report, --json and exit codes as in process, and without loading the router."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeprovider import FakeServer, Reply
from tests.gateway import Gateway, running_gateway
from tests.world import World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")
    world.write_config(isolated_env / "routes.toml")  # ./routes.toml: what `ask` loads
    return world


@pytest.fixture
def gateway(world: World, isolated_env: Path) -> Iterator[Gateway]:
    with running_gateway(isolated_env / "routes.toml", world.env) as gateway:
        yield gateway


def ask(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`llmroute ask` as a shell runs it. Unless `env` brings them, the process has no provider
    key at all: only a gateway can answer it."""
    proc = subprocess.run(
        [sys.executable, "-m", "llmroute", "ask", *args],
        text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert_no_secret(proc.stdout, proc.stderr)
    return proc


def test_a_local_gateway_on_the_same_config_answers_without_keys_here(
    world: World, gateway: Gateway
) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=30))
    proc = ask("-t", "other", "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: hello\n"
    assert "groq#2 · small" in proc.stderr and "tried first" in proc.stderr
    assert "rate_limited 429" in proc.stderr
    assert len(gateway.wait_for_log(1)) == 1  # it went through the gateway


def test_the_same_report_json_and_exit_codes_as_in_process(world: World, gateway: Gateway) -> None:
    for key in world.groq_keys[:2]:
        key.script(Reply.server_error(503), Reply.server_error(503))
    remote = ask("-t", "other", "--json", "hello")
    # in process on a state of its own: the gateway's has those two keys cooling down now
    alone = {**world.env, "LLMROUTE_STATE": "memory"}
    direct = ask("-t", "other", "--json", "--direct", "hello", env=alone)
    assert remote.returncode == direct.returncode == 0
    mine, theirs = json.loads(remote.stdout), json.loads(direct.stdout)
    assert mine.keys() == theirs.keys()
    assert [a["outcome"] for a in mine["attempts"]] == ["unavailable", "unavailable", "ok"]
    assert [a["outcome"] for a in theirs["attempts"]] == ["unavailable", "unavailable", "ok"]
    assert mine["content"] == theirs["content"] == "echo: hello"


@pytest.mark.parametrize(
    ("reply", "code", "fragment"),
    [(Reply.bad_request("temperature is out of range"), 3, "temperature is out of range"),
     (Reply.server_error(503), 1, "every candidate failed")],
    ids=["rejected", "failed"],
)  # fmt: skip
def test_failures_keep_their_exit_codes_and_attempts(
    world: World, gateway: Gateway, reply: Reply, code: int, fragment: str
) -> None:
    for key in world.groq_keys:
        key.default = reply
    proc = ask("-m", "groq:small", "--deadline", "2", "hello")
    assert proc.returncode == code, proc.stderr
    assert fragment in proc.stderr
    assert "groq#1" in proc.stderr  # the attempts table came back from the gateway
    assert proc.stdout == ""


def test_an_unknown_task_is_a_usage_error(gateway: Gateway) -> None:
    proc = ask("-t", "nope", "hello")
    assert proc.returncode == 2
    assert "there is no task 'nope'" in proc.stderr


def test_a_broken_stream_keeps_its_text_and_exits_1(world: World, gateway: Gateway) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=["Hel", "lo", " wor", "ld"], cut_after=2))
    proc = ask("-t", "other", "hello")
    assert proc.returncode == 1
    assert proc.stdout.startswith("Hello")
    assert "broke off" in proc.stderr


def test_a_gateway_on_another_config_is_not_used(
    world: World, gateway: Gateway, isolated_env: Path
) -> None:
    other = world.write_config(isolated_env / "other.toml")
    proc = ask("--config", str(other), "-t", "other", "hello", env=world.env)
    assert proc.returncode == 0
    assert gateway.log_lines() == []  # answered in process


def test_llmroute_url_is_used_and_a_dead_one_falls_back_in_process(
    world: World, gateway: Gateway, isolated_env: Path
) -> None:
    other = world.write_config(isolated_env / "other.toml")
    explicit = ask(
        "--config", str(other), "-t", "other", "hi", env={"LLMROUTE_URL": gateway.base_url}
    )
    assert explicit.returncode == 0 and len(gateway.wait_for_log(1)) == 1
    dead = ask("-v", "-t", "other", "hi", env={**world.env, "LLMROUTE_URL": "http://127.0.0.1:9"})
    assert dead.returncode == 0, dead.stderr
    assert "did not answer" in dead.stderr and "routing here" in dead.stderr


def test_the_gateway_path_loads_neither_the_sdk_nor_the_router_nor_typer(gateway: Gateway) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "llmroute", "ask", "-t", "other", "hi"],
        text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    heavy = {"openai", "httpx", "httpx2", "typer", "rich", "starlette"}  # and not the CLI
    assert not {m for m in modules if m.split(".")[0] in heavy}
    assert not {"llmroute.router", "llmroute.engine", "http.client"} & modules


def test_a_token_protected_gateway_takes_the_token_from_the_environment(
    world: World, isolated_env: Path
) -> None:
    config = isolated_env / "routes.toml"
    with running_gateway(config, world.env, "--token", "s3cret-token") as gateway:
        refused = ask("-t", "other", "hi")
        assert refused.returncode == 2 and "LLMROUTE_SERVER_TOKEN" in refused.stderr
        allowed = ask("-t", "other", "hi", env={"LLMROUTE_SERVER_TOKEN": "s3cret-token"})
        assert allowed.returncode == 0 and allowed.stdout == "echo: hi\n"
        assert len(gateway.wait_for_log(2)) == 2


def test_a_say_over_the_request_log_routes_in_process(world: World, gateway: Gateway) -> None:
    """The gateway keeps its own log policy (as `serve`); `--no-log` must still mean that this
    request is remembered nowhere, so such an ask is routed here, with the keys given here."""
    proc = ask("-t", "other", "--no-log", "-v", "hello", env=world.env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: hello\n"
    assert "--no-log / --log-content apply to its own log" in proc.stderr
    assert gateway.log_lines("/v1/chat/completions") == []  # the gateway saw nothing
