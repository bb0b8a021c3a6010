"""Hostile batch input (issue 13, findings 1 and 2): every line is parsed on its own, a bad
one is that line's `bad_input` record, and the batch answers every good line exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmroute.cli.app import app
from tests.fakeprovider import FakeServer
from tests.world import World, assert_no_secret, make_world

HOSTILE = [
    b'{"id": "nan", "prompt": "p", "temperature": NaN}',
    b'{"id": "inf", "prompt": "p", "temperature": Infinity}',
    b'{"id": "big", "prompt": "p", "temperature": 1e400}',
    b'{"id": ' + b"7" * 5000 + b', "prompt": "p"}',
    b'{"id": "deep", "prompt": "p", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"id": "latin1", "prompt": "caf\xe9"}',
]


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state="memory")
    world.write_config(isolated_env / "routes.toml")
    return world


def run_batch(world: World, source: Path, out: Path) -> Any:
    result = CliRunner().invoke(app, ["batch", str(source), "-o", str(out), "-t", "other"],
                                env=world.env)  # fmt: skip
    assert_no_secret(result.stdout, result.stderr)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    return result


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def test_hostile_lines_are_their_own_errors_and_the_batch_goes_on(
    world: World, isolated_env: Path
) -> None:
    good = [b'{"id": "first", "prompt": "one"}', b'{"id": "last", "prompt": "two"}']
    source = isolated_env / "in.jsonl"
    source.write_bytes(b"\n".join([good[0], *HOSTILE, good[1]]) + b"\n")
    out = isolated_env / "out.jsonl"
    assert run_batch(world, source, out).exit_code == 1  # some lines failed
    rows = records(out)
    rerun = run_batch(world, source, out)  # neither stops nor repeats anything
    assert rerun.exit_code == 0 and "8 already done" in rerun.stderr
    assert records(out) == rows
    answered = sorted(r["id"] for r in rows if "content" in r)
    assert answered == ["first", "last"]
    bad = {r["line"]: r["error"]["message"] for r in rows if "line" in r}
    assert sorted(bad) == list(range(2, 2 + len(HOSTILE)))
    assert "NaN is not a JSON number" in bad[2] and "too large" in bad[4]
    assert "nested too deeply" in bad[6] and "not UTF-8 text" in bad[7]


def test_lines_end_at_newlines_only_and_a_bom_is_dropped(world: World, isolated_env: Path) -> None:
    rows = [{"id": "sep", "prompt": "a\u2028b\u0085c"}, {"id": "after", "prompt": "x"}]
    text = "\ufeff" + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    source = isolated_env / "in.jsonl"
    source.write_text(text, encoding="utf-8")
    out = isolated_env / "out.jsonl"
    result = run_batch(world, source, out)
    assert result.exit_code == 0, result.stderr
    answers = {r["id"]: r["content"] for r in records(out)}
    assert answers == {"sep": "echo: a\u2028b\u0085c", "after": "echo: x"}


def test_temperature_nan_on_the_command_line_is_a_usage_error(world: World) -> None:
    for args in (["--temperature", "nan"], ["-o", "temperature", "NaN"]):
        result = CliRunner().invoke(app, ["ask", "--direct", *args, "hi"], env=world.env)
        assert result.exit_code == 2 and "finite number" in result.output
