"""`llmroute batch` and `router.map` against the fake provider."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmroute.batch.jobs import BadLine, Job, read_jobs
from llmroute.cli.app import app
from llmroute.config import parse_config
from llmroute.router import Router
from llmroute.state import MemoryStore
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")
    world.write_config(isolated_env / "routes.toml")
    return world


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch(world: World, *args: str, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(app, ["batch", *args], env=world.env, input=stdin)
    assert_no_secret(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_200_prompts_over_a_limited_pool_are_all_answered(world: World, isolated_env: Path) -> None:
    world.config["providers"]["groq"]["limits"] = {"requests": "20/1s"}
    world.config["providers"]["backup"]["limits"] = {"requests": "10/1s"}
    world.write_config(isolated_env / "routes.toml")
    for key in world.groq_keys:
        key.limit(requests=20, per=1.0)
    world.backup.keys[0].limit(requests=10, per=1.0)
    source = jsonl(isolated_env / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(200)])
    out = isolated_env / "out.jsonl"
    result = batch(world, str(source), "-o", str(out), "-t", "other", "-c", "16")
    assert result.exit_code == 0, result.stderr
    rows = records(out)
    assert sorted(int(r["id"]) for r in rows) == list(range(200))
    assert all("content" in r and r["key"] for r in rows)
    assert [e.status for e in world.server.log].count(429) == 0
    assert {r["provider"] for r in rows} == {"groq", "backup"}  # the fallback took its share
    assert "200 answered, 0 failed" in result.stderr


def test_bad_lines_are_reported_with_their_numbers_and_the_batch_goes_on(
    world: World, isolated_env: Path
) -> None:
    source = jsonl(isolated_env / "in.jsonl", [
        {"id": "a", "prompt": "hi"}, "{not json", {"id": "b"}, {"prompt": "no id"},
        {"id": "a", "prompt": "again"}, {"id": "c", "messages": [{"role": "user", "content": "x"}]},
    ])  # fmt: skip
    out = isolated_env / "out.jsonl"
    result = batch(world, str(source), "-o", str(out))
    assert result.exit_code == 1
    bad = {r["line"]: r["error"]["message"] for r in records(out) if "line" in r}
    assert set(bad) == {2, 3, 4, 5}
    assert "not JSON" in bad[2] and 'no "prompt"' in bad[3] and 'no "id"' in bad[4]
    assert "repeats the id 'a' of line 1" in bad[5]
    assert {r["id"] for r in records(out) if "content" in r} == {"a", "c"}


def test_strict_stops_at_the_first_bad_line(world: World, isolated_env: Path) -> None:
    source = jsonl(isolated_env / "in.jsonl", [{"id": 1, "prompt": "hi"}, "{not json"])
    result = batch(world, str(source), "-o", str(isolated_env / "out.jsonl"), "--strict")
    assert result.exit_code == 2 and "line 2 is not JSON" in result.stderr
    assert world.server.log == []


def test_ordered_output_follows_the_input(world: World, isolated_env: Path) -> None:
    world.groq_keys[0].default = Reply.ok(latency=0.2)  # the first jobs answer last
    source = jsonl(isolated_env / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(9)])
    out = isolated_env / "out.jsonl"
    assert batch(world, str(source), "-o", str(out), "-t", "other", "--ordered").exit_code == 0
    assert [r["id"] for r in records(out)] == list(range(9))


def test_stdin_to_stdout_carries_only_json_lines(world: World) -> None:
    result = batch(world, "-", "-o", "-", "--text", stdin="first\n\nsecond\n")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((r["id"], r["content"]) for r in rows) == [(1, "echo: first"),
                                                             (3, "echo: second")]  # fmt: skip


def test_resume_retries_failed_ids_only_when_asked(world: World, isolated_env: Path) -> None:
    for key in world.groq_keys:
        key.script(Reply.unauthorized() if key is world.groq_keys[0] else Reply.ok())
    world.backup.keys[0].default = Reply.server_error(503)
    for key in world.groq_keys:
        key.default = Reply.bad_request()
    source = jsonl(isolated_env / "in.jsonl", [{"id": i, "prompt": "hi"} for i in range(3)])
    out = isolated_env / "out.jsonl"
    batch(world, str(source), "-o", str(out), "-t", "other")
    failed = {r["id"] for r in records(out) if "error" in r}
    assert failed
    for key in world.groq_keys:
        key.default = Reply.ok()
    calls = len(world.server.log)
    assert batch(world, str(source), "-o", str(out), "-t", "other").exit_code == 0
    assert len(world.server.log) == calls  # failed ids are not retried by default
    batch(world, str(source), "-o", str(out), "-t", "other", "--retry-failed")
    answered = {r["id"] for r in records(out) if "content" in r}
    assert answered == {0, 1, 2}


def test_a_killed_run_resumes_with_exactly_one_line_per_id(
    world: World, isolated_env: Path
) -> None:
    for key in world.groq_keys:
        key.default = Reply.ok(latency=0.05)
    source = jsonl(isolated_env / "in.jsonl", [{"id": i, "prompt": f"p{i}"} for i in range(60)])
    out = isolated_env / "out.jsonl"
    command = [sys.executable, "-m", "llmroute", "batch", str(source), "-o", str(out),
               "-t", "other", "-c", "2", "-q"]  # fmt: skip
    env = {**os.environ, **world.env}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while (
        not out.exists() or len(out.read_text().splitlines()) < 10
    ) and time.monotonic() < deadline:
        time.sleep(0.02)  # wait for answers to land, then kill without warning
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    first = {r["id"] for r in records(out)}
    assert 10 <= len(first) < 60
    calls_before = len(world.server.log)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    rows = records(out)
    assert sorted(r["id"] for r in rows) == list(range(60))  # one line per id, none lost
    # Only unfinished ids were sent again (one may have been in flight at the kill).
    assert len(world.server.log) - calls_before <= 60 - len(first) + 2


async def test_router_map_yields_in_completion_order_and_carries_errors(world: World) -> None:
    world.groq_keys[0].default = Reply.ok(latency=0.3)
    world.groq_keys[1].default = Reply.bad_request()
    jobs = [Job(str(i), i, ({"role": "user", "content": f"p{i}"},)) for i in range(3)]
    async with Router(parse_config(world.config), env=world.env, store=MemoryStore()) as router:
        outcomes = [o async for o in router.map(jobs, concurrency=3, task="groq:small")]
    assert [o.request.id for o in outcomes][-1] == "0"  # the slow one finished last
    errors = {o.request.id: o.error for o in outcomes if o.error}
    assert list(errors) == ["1"] and "Invalid value" in str(errors["1"])


def test_read_jobs_text_and_json() -> None:
    assert [j.id for j in read_jobs([b"a", b"", b"b"], text=True)] == [1, 3]
    (job,) = read_jobs(
        [b'{"id": 7, "prompt": "p", "system": "s", "max_tokens": 5, "model": "x:y"}']
    )
    assert isinstance(job, Job)
    assert job.messages[0] == {"role": "system", "content": "s"}
    assert (job.task, job.params) == ("x:y", {"max_tokens": 5})
    (bad,) = read_jobs([b'{"id": 1, "messages": "nope"}'])
    assert isinstance(bad, BadLine) and bad.line == 1


def test_progress_and_summary_render() -> None:
    import io
    from collections import Counter

    from rich.console import Console

    from llmroute.batch.runner import Tally
    from llmroute.cli.batch_view import BatchProgress, summary_line, summary_table
    from llmroute.cli.report import Report

    tally = Tally(Counter({"groq#1": 3, "backup#1": 1}), Counter({"groq#1": 30, "backup#1": 9}),
                  Counter({"failed": 1}), skipped=2)  # fmt: skip
    assert summary_line(tally) == "4 answered, 1 failed (1 failed), 2 already done"
    out = io.StringIO()
    Console(file=out, width=60, color_system=None).print(summary_table(tally))
    rows = [line.split() for line in out.getvalue().splitlines() if line.strip()]
    assert rows[0] == ["key", "answered", "tokens", "share"]
    assert rows[2] == ["groq#1", "3", "30", "75%"]
    terminal = io.StringIO()
    console = Console(file=terminal, width=120, force_terminal=True, color_system=None)
    with BatchProgress(Report(console), total=5) as progress:
        progress.update(tally, "groq#1")
    assert "serving: groq#1" in terminal.getvalue() and "5/5 1 failed" in terminal.getvalue()
    piped = io.StringIO()
    with BatchProgress(Report(Console(file=piped)), total=5) as progress:
        progress.update(tally, "groq#1")
    assert piped.getvalue() == ""  # no bar when stderr is not a terminal
