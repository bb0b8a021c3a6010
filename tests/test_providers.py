"""`llmroute providers`: one row per provider and key, checked at once with a short timeout."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from llmroute.checkup import KeyCheck
from llmroute.cli.app import app
from llmroute.cli.providers_view import providers_table
from tests.fakeprovider import FakeServer
from tests.world import ALL_SECRETS, BACKUP_KEY, GROQ_KEYS, assert_no_secret, to_toml

REJECTED_KEY = "gsk_not_known_to_the_provider_ZZZZ9"


@pytest.fixture
def stuck_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def setup(fake_server: FakeServer, stuck_url: str, isolated_env: Path) -> dict[str, str]:
    groq = fake_server.provider("groq", dialect="groq", models=["small", "large"])
    groq.key(GROQ_KEYS[0])
    openrouter = fake_server.provider("openrouter", dialect="openrouter", models=["free"])
    openrouter.key(BACKUP_KEY)
    config = {
        "settings": {"default_task": "fast", "state": f"sqlite://{isolated_env / 's.db'}"},
        "providers": {
            "groq": {"base_url": groq.base_url, "keys": ["G1", "G2"]},
            "dead": {"base_url": fake_server.refused_base_url(), "keys": ["D1"]},
            "stuck": {"base_url": stuck_url, "keys": ["S1"]},
            "unset": {"base_url": "http://127.0.0.1:9/v1", "keys": ["UNSET_KEY"]},
            "openrouter": {
                "base_url": openrouter.base_url,
                "keys": ["OR1"],
                "limits": {"requests": "50/day"},
            },
        },
        "tasks": {
            "fast": {"route": ["groq:small", "dead:m"]},
            "broken": {"route": ["dead:m", "stuck:m", "unset:m"]},
            "missing_model": {"route": ["groq:nope"]},
            "free": {"route": ["openrouter:free"]},
        },
    }
    (isolated_env / "routes.toml").write_text(to_toml(config))
    return {"G1": GROQ_KEYS[0], "G2": REJECTED_KEY, "D1": "dead-key-one-EEEEEEEEEEEEEE5",
            "S1": "stuck-key-GGGGGGGGGGGGGGGG7", "OR1": BACKUP_KEY}  # fmt: skip


def providers(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(app, ["providers", "--timeout", "0.5", *args], env=env)
    assert_no_secret(result.stdout, result.stderr)
    assert REJECTED_KEY not in result.stdout + result.stderr
    return result


def by_key(result: Any) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in json.loads(result.stdout)["keys"]}


def test_each_kind_of_key_is_shown_for_what_it_is(setup: dict[str, str]) -> None:
    started = time.monotonic()
    result = providers(setup, "--json")
    elapsed = time.monotonic() - started
    rows = by_key(result)
    assert rows["groq#1"]["status"] == "ok" and rows["groq#1"]["models"] == ["small", "large"]
    assert rows["groq#1"]["masked"].startswith("gsk_") and "…" in rows["groq#1"]["masked"]
    assert rows["groq#2"]["status"] == "rejected"
    assert rows["dead#1"]["status"] == "unreachable"
    assert rows["stuck#1"]["status"] == "timeout"
    assert rows["unset#1"]["status"] == "not set"
    assert "set UNSET_KEY" in rows["unset#1"]["detail"]
    # Checks run at once: a stalled provider costs one timeout, not a queue of them.
    assert elapsed < 0.5 + 5.0


def test_exit_code_says_whether_every_task_can_be_served(setup: dict[str, str]) -> None:
    assert providers(setup, "-t", "fast").exit_code == 0
    broken = providers(setup, "-t", "broken", "--json")
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["tasks"] == {"broken": False}
    assert providers(setup).exit_code == 1  # all tasks: "broken" cannot be served


def test_a_model_the_provider_does_not_list_is_not_healthy(setup: dict[str, str]) -> None:
    result = providers(setup, "-t", "missing_model", "--json")
    assert result.exit_code == 1
    assert by_key(result)["groq#1"]["missing_models"] == ["nope"]


def test_task_limits_the_check_to_its_providers(setup: dict[str, str]) -> None:
    assert set(by_key(providers(setup, "-t", "fast", "--json"))) == {"groq#1", "groq#2", "dead#1"}


def test_probe_spends_one_request_per_model(setup: dict[str, str], fake_server: FakeServer) -> None:
    result = providers(setup, "-t", "fast", "--probe", "--json")
    assert by_key(result)["groq#1"]["probes"] == {"small": "ok"}
    bodies = [e.body for e in fake_server.log if e.path.endswith("/chat/completions")]
    assert len(bodies) == 1 and bodies[0] is not None and bodies[0]["max_tokens"] == 1


def test_openrouter_tells_about_the_key_and_budgets_are_shown(
    setup: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The quirk is keyed by host (openrouter.ai); the fake is on 127.0.0.1.
    monkeypatch.setattr("llmroute.quirks.KEY_INFO_PATHS", {"127.0.0.1": "/key"})
    result = providers(setup, "-t", "free")
    assert result.exit_code == 0
    assert "free tier, credit used 0.25" in result.stdout
    assert "50/50 requests per day left" in result.stdout


def test_human_table() -> None:
    checks = [
        KeyCheck(provider="groq", key="groq#1", status="ok", detail="2 models listed",
                 latency_s=0.012, models=("a", "b"), masked="gsk_…aaa1",
                 headroom=("requests 29/30",)),
        KeyCheck(provider="groq", key="groq#2", status="not set",
                 detail="not configured: set GROQ_API_KEY_2"),
    ]  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(providers_table(checks))
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    assert lines[0].split()[:4] == ["provider", "key", "check", "time"]
    assert lines[2].split()[:6] == ["groq", "groq#1", "gsk_…aaa1", "ok", "12ms", "2"]
    assert "requests 29/30" in lines[2]
    assert lines[3].split()[:4] == ["groq", "groq#2", "not", "set"]
    assert not any(secret in out.getvalue() for secret in ALL_SECRETS)
