"""The request log end to end: real commands against the fake provider, then `logs` and
`usage` read back what they did (docs/design.md, the request log)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmroute.cli.app import app
from llmroute.requestlog.logfile import LOG_FILE
from tests.fakeprovider import FakeServer, Reply, prompt_tokens, text_tokens
from tests.fakeprovider.tokens import last_user_text
from tests.world import ALL_SECRETS, World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server)
    world.write_config(isolated_env / "routes.toml")
    return world


def log_file(isolated_env: Path) -> Path:
    """The default: beside the state file, in the user state directory."""
    return isolated_env.parent / "home" / "state" / "llmroute" / LOG_FILE


def cli(world: World, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
        ) -> Any:  # fmt: skip
    result = CliRunner().invoke(app, list(args), input=stdin, env={**world.env, **(env or {})})
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stdout, result.stderr)
    return result


def records(world: World, *args: str) -> list[dict[str, Any]]:
    result = cli(world, "logs", "-n", "0", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def run(world: World, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "llmroute", *args], input=stdin, text=True, capture_output=True,
        env={**os.environ, **world.env}, timeout=60,
    )  # fmt: skip
    assert_no_secret(proc.stdout, proc.stderr)
    return proc


# -- what each command leaves in the log --------------------------------------------------------


def test_an_answered_ask_is_logged_with_who_answered_timings_tokens_and_text(world: World) -> None:
    assert cli(world, "ask", "-s", "be brief", "What is the capital of France?").exit_code == 0
    (r,) = records(world)
    body = world.server.log[0].body
    assert (r["source"], r["route"], r["outcome"], r["exit_code"]) == ("ask", "fast", "answered", 0)
    assert (r["provider"], r["key"], r["model"]) == ("groq", "groq#1", "small")
    assert r["latency_s"] > 0 and r["ttft_s"] is not None and r["waited_s"] == 0
    assert r["tokens_in"] == prompt_tokens(body)
    assert r["tokens_out"] == text_tokens("echo: What is the capital of France?")
    assert (r["system"], r["prompt"]) == ("be brief", "What is the capital of France?")
    assert r["answer"] == "echo: What is the capital of France?"
    assert [a["outcome"] for a in r["attempts"]] == ["ok"]


def test_a_fallback_keeps_every_attempt_with_its_reason(world: World) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=20))
    assert cli(world, "ask", "--no-stream", "hi").exit_code == 0
    (r,) = records(world)
    assert r["key"] == "groq#2"
    first, answer = r["attempts"]
    assert (first["key"], first["outcome"], first["status"]) == ("groq#1", "rate_limited", 429)
    assert first["error"] and answer["outcome"] == "ok"


def test_failed_rejected_and_broken_requests_are_logged_with_their_exit_codes(
    world: World,
) -> None:
    world.groq_keys[0].script(Reply.bad_request("Invalid value for 'temperature'"))
    world.groq_keys[1].script(Reply.stream(chunks=["Hel", "lo", " wor", "ld"], cut_after=3))
    assert cli(world, "ask", "-t", "other", "rejected").exit_code == 3
    assert cli(world, "ask", "-t", "other", "broken").exit_code == 1
    for key in (*world.groq_keys, *world.backup.keys):
        key.script(Reply.unauthorized())
    assert cli(world, "ask", "failing").exit_code == 1
    rejected, broken, failed = records(world)
    assert (failed["outcome"], failed["exit_code"], failed["key"]) == ("failed", 1, None)
    assert "every candidate failed" in failed["error"]
    assert {a["outcome"] for a in failed["attempts"] if a["outcome"] != "skipped"} == {"auth"}
    assert (rejected["outcome"], rejected["exit_code"]) == ("rejected", 3)
    assert "Invalid value for 'temperature'" in rejected["error"]
    assert (broken["outcome"], broken["exit_code"], broken["answer"]) == ("broken", 1, "Hello wor")
    assert broken["attempts"][-1]["error"].startswith("broke off after 3 chunk(s)")


def test_ctrl_c_is_logged_as_interrupted(world: World) -> None:
    world.groq_keys[0].default = Reply.stall(30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmroute", "ask", "wait for it"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **world.env},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not world.server.log and time.monotonic() < deadline:
        time.sleep(0.01)  # the request reached the provider: now interrupt it
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    (r,) = records(world)
    assert (r["outcome"], r["exit_code"], r["prompt"], r["answer"]) == (
        "interrupted", 130, "wait for it", None,
    )  # fmt: skip


def test_batch_and_chat_requests_are_logged_with_their_source(
    world: World, isolated_env: Path
) -> None:
    (isolated_env / "jobs.txt").write_text("one\ntwo\nthree\n")
    assert cli(world, "batch", "--text", "jobs.txt", "-o", "out.jsonl", "-q").exit_code == 0
    assert cli(world, "chat", "-t", "other", stdin="first turn\nsecond turn\n").exit_code == 0
    logged = records(world)
    batch = sorted(r["prompt"] for r in logged if r["source"] == "batch")
    assert batch == ["one", "three", "two"]
    chat = [r for r in logged if r["source"] == "chat"]
    assert [(r["prompt"], r["route"], r["outcome"]) for r in chat] == [
        ("first turn", "other", "answered"), ("second turn", "other", "answered"),
    ]  # fmt: skip
    assert all(r["answer"] == f"echo: {r['prompt']}" for r in logged)


def test_bench_requests_are_logged_and_its_summary_points_at_usage(world: World) -> None:
    result = cli(world, "bench", "-m", "groq:small", "-n", "3", "-c", "1", "-y")
    assert result.exit_code == 0, result.stderr
    assert "see `llmroute usage`" in result.stderr
    logged = records(world)
    assert [(r["source"], r["route"], r["outcome"]) for r in logged] == [
        ("bench", "groq:small", "answered")
    ] * 3


def test_batch_summary_points_at_usage(world: World, isolated_env: Path) -> None:
    (isolated_env / "jobs.txt").write_text("one\n")
    result = cli(world, "batch", "--text", "jobs.txt", "-o", "out.jsonl")
    assert "see `llmroute usage`" in result.stderr


def test_no_log_leaves_no_record(world: World, isolated_env: Path) -> None:
    assert cli(world, "ask", "--no-log", "secret plans").exit_code == 0
    assert not log_file(isolated_env).exists()
    assert cli(world, "logs").stderr.startswith("no requests in the log")


def test_log_content_false_keeps_the_text_out_and_the_metadata_in(
    world: World, isolated_env: Path
) -> None:
    world.config["settings"]["log_content"] = False
    world.write_config(isolated_env / "routes.toml")
    assert cli(world, "ask", "confidential prompt").exit_code == 0
    assert cli(world, "ask", "--log-content", "this one may stay").exit_code == 0
    quiet, kept = records(world)
    assert (quiet["prompt"], quiet["answer"], quiet["system"]) == (None, None, None)
    assert (quiet["key"], quiet["outcome"]) == ("groq#1", "answered")
    assert quiet["tokens_in"] == prompt_tokens(world.server.log[0].body)
    assert kept["prompt"] == "this one may stay"
    assert b"confidential" not in log_file(isolated_env).read_bytes()
    assert cli(world, "logs", "-q", "confidential", "--json").stdout == "[]\n"


def test_an_unwritable_log_warns_once_and_every_request_is_answered(
    world: World, isolated_env: Path
) -> None:
    blocker = isolated_env / "not-a-directory"
    blocker.write_text("a file where the log's directory should be")
    env = {"LLMROUTE_LOG": str(blocker / LOG_FILE)}
    (isolated_env / "jobs.txt").write_text("one\ntwo\nthree\nfour\n")
    proc = subprocess.run(
        [sys.executable, "-m", "llmroute", "batch", "--text", "jobs.txt", "-o", "-", "-q"],
        text=True, capture_output=True, env={**os.environ, **world.env, **env}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 4
    assert proc.stderr.count("cannot be written") == 1, proc.stderr
    assert "requests go on without it" in proc.stderr and "Traceback" not in proc.stderr
    chat = cli(world, "chat", "-t", "other", stdin="a\nb\nc\n", env=env)
    assert chat.exit_code == 0 and chat.stdout == "echo: a\necho: b\necho: c\n"


def test_a_corrupt_log_is_a_warning_for_requests_and_a_sentence_for_logs(
    world: World, isolated_env: Path
) -> None:
    path = log_file(isolated_env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    asked = run(world, "ask", "still answered")
    assert asked.returncode == 0 and asked.stdout == "echo: still answered\n"
    assert asked.stderr.count("cannot be written") == 1
    shown = cli(world, "logs")
    assert shown.exit_code == 2
    assert f"cannot read the request log {path}" in shown.stderr and "move it aside" in shown.stderr


def test_eight_processes_writing_at_once_lose_no_record(world: World, isolated_env: Path) -> None:
    (isolated_env / "jobs.txt").write_text("".join(f"job {i}\n" for i in range(10)))
    env = {**os.environ, **world.env}
    command = [sys.executable, "-m", "llmroute", "batch", "--text", "jobs.txt", "-o", "-", "-q"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        for _ in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(world.server.log) == 8 * 10
    with sqlite3.connect(log_file(isolated_env)) as db:
        assert db.execute("SELECT count(*) FROM requests").fetchone() == (8 * 10,)


def test_full_text_search_finds_a_prompt(world: World) -> None:
    for prompt in ("the quick brown fox", "a lazy dog sleeps", 'quotes " and AND OR -x*'):
        assert cli(world, "ask", prompt).exit_code == 0
    found = records(world, "-q", "lazy")
    assert [r["prompt"] for r in found] == ["a lazy dog sleeps"]
    assert [r["prompt"] for r in records(world, "-q", "echo fox")] == ["the quick brown fox"]
    assert len(records(world, "-q", '" AND')) == 1  # what users type is never FTS5 syntax


def test_no_key_reaches_the_log_file(world: World, isolated_env: Path) -> None:
    world.groq_keys[0].script(Reply.unauthorized())
    world.groq_keys[1].script(Reply.rate_limited(reset=20))
    assert cli(world, "ask", "hello").exit_code == 0
    quoted = CliRunner().invoke(app, ["ask", f"my key is {world.groq_keys[2]}"], env=world.env)
    assert quoted.exit_code == 0  # the answer echoes it: that is the fake's doing
    (isolated_env / "jobs.txt").write_text("batch job\n")
    assert cli(world, "batch", "--text", "jobs.txt", "-o", "out.jsonl", "-q").exit_code == 0
    path = log_file(isolated_env)
    data = b"".join(p.read_bytes() for p in path.parent.glob(LOG_FILE + "*"))
    assert data and all(secret.encode() not in data for secret in ALL_SECRETS)
    assert "my key is gsk_…" in records(world)[1]["prompt"]  # masked, as everywhere else


# -- reading it back: logs ---------------------------------------------------------------------


def test_logs_filters_and_formats(world: World) -> None:
    world.groq_keys[0].script(Reply.server_error(503))
    assert cli(world, "ask", "first").exit_code == 0  # groq#1 failed, groq#2 answered
    assert cli(world, "ask", "-m", "backup:big", "second").exit_code == 0
    assert cli(world, "ask", "-t", "other", "third").exit_code == 0
    assert [r["prompt"] for r in records(world, "--key", "groq#1")] == ["first"]
    assert [r["prompt"] for r in records(world, "--provider", "backup")] == ["second"]
    assert [r["prompt"] for r in records(world, "-t", "backup:big")] == ["second"]
    assert [r["prompt"] for r in records(world, "-n", "2")] == ["second", "third"]
    assert records(world, "--failed") == []
    assert len(records(world, "--since", "1h")) == 3
    assert records(world, "--since", "2099-01-01") == []
    lines = cli(world, "logs", "--jsonl").stdout.splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["first", "second", "third"]
    text = cli(world, "logs", "-n", "1").stdout
    assert text.startswith("## ") and "· ask · other · answered" in text
    assert "> third\n\necho: third\n" in text
    assert "groq#2 · small" in cli(world, "logs", "--table").stdout
    assert cli(world, "logs", "--last").stdout == "echo: third\n"


@pytest.mark.parametrize(
    "args",
    [["logs", "--since", "last tuesday"], ["logs", "-n", "many"], ["logs", "-n", "-1"],
     ["usage", "--since", "soon"], ["usage", "--by", "colour"], ["logs", "--json", "--table"],
     ["logs", "prune", "--older-than", "a while"]],
)  # fmt: skip
def test_bad_input_is_a_sentence_and_exit_2(world: World, args: list[str]) -> None:
    result = cli(world, *args)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_logs_prune_forgets_what_is_older(world: World, isolated_env: Path) -> None:
    for prompt in ("old", "new"):
        assert cli(world, "ask", prompt).exit_code == 0
    with sqlite3.connect(log_file(isolated_env)) as db:
        db.execute("UPDATE requests SET at = at - 3 * 86400 WHERE prompt = 'old'")
    result = cli(world, "logs", "prune", "--older-than", "2d")
    assert "removed 1 request(s)" in result.stderr
    assert [r["prompt"] for r in records(world)] == ["new"]
    assert records(world, "-q", "old") == []  # gone from the full-text index too


# -- usage -------------------------------------------------------------------------------------


def usage(world: World, *args: str) -> dict[str, Any]:
    result = cli(world, "usage", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_usage_sums_match_the_fake_providers_own_counters(world: World, isolated_env: Path) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=30), Reply.rate_limited(reset=30))
    world.groq_keys[1].script(Reply.server_error(503))
    (isolated_env / "jobs.txt").write_text("".join(f"prompt number {i}\n" for i in range(9)))
    assert cli(world, "batch", "--text", "jobs.txt", "-o", "out.jsonl", "-q").exit_code == 0
    assert cli(world, "ask", "-m", "backup:big", "one more").exit_code == 0
    rows = {row["group"]: row for row in usage(world, "--by", "key")["rows"]}
    served = [e for e in world.server.log if e.outcome in ("ok", "stream")]
    aliases = {"groq#1": world.groq_keys[0], "groq#2": world.groq_keys[1],
               "groq#3": world.groq_keys[2], "backup#1": world.backup.keys[0]}  # fmt: skip
    assert set(rows) == set(aliases)
    for alias, fake in aliases.items():
        mine = [e for e in served if e.key == str(fake)]
        row = rows[alias]
        assert row["answered"] == len(mine)
        assert row["tokens_in"] == sum(prompt_tokens(e.body) for e in mine)
        assert row["tokens_out"] == sum(text_tokens(f"echo: {last_user_text(e.body)}")
                                        for e in mine)  # fmt: skip
        refused = world.server.calls(key=fake, outcome="rate_limited")
        assert row["429s"] == len(refused)
    total = usage(world)["total"]
    assert total["answered"] == len(served) == 10
    # Each refusal the fake counted is a 429 met and a fallback taken (the first contact with
    # a key sends one request, so how many of the scripted 429s are met depends on timing).
    refusals = [e for e in world.server.log if e.status in (429, 503)]
    assert total["429s"] == sum(e.status == 429 for e in refusals) >= 1
    assert total["fallbacks"] == len(refusals) and total["failed"] == 0
    by_model = {r["group"]: r["answered"] for r in usage(world, "--by", "model")["rows"]}
    assert by_model == {
        "groq:small": sum(e.provider == "groq" for e in served),
        "backup:big": sum(e.provider == "backup" for e in served),
    }
    assert usage(world, "--by", "task")["total"] == total
    csv = cli(world, "usage", "--csv", "--by", "day").stdout.splitlines()
    assert csv[0].startswith("day,answered,failed") and csv[-1].startswith(
        f"total,10,0,{total['fallbacks']},{total['429s']},"
    )


def test_usage_shows_daily_headroom_against_a_configured_limit(
    world: World, isolated_env: Path
) -> None:
    world.config["providers"]["groq"]["limits"] = {"requests": ["30/minute", "1000/day"]}
    world.config["providers"]["backup"]["models"]["big"]["tokens"] = "500000/day"
    world.write_config(isolated_env / "routes.toml")
    world.groq_keys[0].script(Reply.rate_limited(reset=30))  # refused: not counted
    for prompt in ("a", "b", "c", "d"):
        assert cli(world, "ask", "-t", "other", prompt).exit_code == 0
    assert cli(world, "ask", "-m", "backup:big", "e").exit_code == 0
    rooms = {(h["budget"], h["model"]): h for h in usage(world)["headroom"]}
    for index, fake in enumerate(world.groq_keys, start=1):
        served = [e for e in world.server.calls(key=fake) if e.status == 200]
        room = rooms[(f"groq#{index}", "small")]
        assert room["requests_used"] == len(served)
        assert room["requests_left"] == 1000 - len(served)
    assert sum(rooms[(f"groq#{i}", "small")]["requests_used"] for i in (1, 2, 3)) == 4
    first = rooms[("groq#1", "small")]
    assert first["requests_limit"] == 1000
    assert first["resets_at"].endswith("T00:00:00+00:00")
    big = rooms[("backup#1", "big")]
    assert (big["requests_limit"], big["tokens_limit"], big["requests_used"]) == (None, 500000, 1)
    assert big["tokens_used"] > 0
    text = cli(world, "usage").stdout
    assert "daily limits" in text and "1 / 1,000" in text and "UTC)" in text


def test_usage_with_an_empty_log_says_so(world: World) -> None:
    result = cli(world, "usage")
    assert result.exit_code == 0 and "no requests in the log" in result.stderr
