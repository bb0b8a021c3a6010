"""`llmroute ask` end to end: in-process with click's runner, and as real subprocesses."""

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

from llmroute.cli.app import app
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server)
    world.write_config(isolated_env / "routes.toml")
    return world


def ask(world: World, *args: str, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(app, ["ask", *args], input=stdin, env=world.env)
    assert_no_secret(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_argument_prompt_answer_on_stdout_report_on_stderr(world: World) -> None:
    result = ask(world, "hello")
    assert result.exit_code == 0
    assert result.stdout == "echo: hello\n"
    assert "groq#1 · small" in result.stderr


def test_stdin_alone(world: World) -> None:
    result = ask(world, stdin="text from a file\n")
    assert result.stdout == "echo: text from a file\n"


def test_stdin_then_argument_separated_by_a_blank_line(world: World) -> None:
    result = ask(world, "summarise", stdin="some text\n")
    assert result.stdout == "echo: some text\n\nsummarise\n"


def test_system_options_and_params_reach_the_provider(world: World) -> None:
    result = ask(world, "hi", "-s", "be brief", "--temperature", "0.2", "--max-tokens", "50",
                 "-o", "top_p", "0.9", "-o", "user", "me")  # fmt: skip
    assert result.exit_code == 0
    body = world.server.log[-1].body
    assert body is not None
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["user"]) == (
        0.2,
        50,
        0.9,
        "me",
    )


def test_json_output_carries_the_tool_calls(world: World) -> None:
    tool = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    result = ask(world, "what time is it?", "--json", "-o", "tools", json.dumps([tool]))
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["finish_reason"] == "tool_calls"
    (call,) = payload["tool_calls"]
    assert call["function"] == {"name": "get_time", "arguments": "{}"}
    assert world.server.log[-1].body["tools"] == [tool]  # type: ignore[index]


def test_json_output_fields(world: World) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=20))
    result = ask(world, "hello", "--json")
    data = json.loads(result.stdout)
    assert {"content", "provider", "key", "model", "latency_s", "usage", "attempts"} <= set(data)
    assert (data["content"], data["provider"], data["key"], data["model"]) == (
        "echo: hello",
        "groq",
        "groq#2",
        "small",
    )
    assert data["usage"]["prompt_tokens"] > 0
    first = data["attempts"][0]
    assert set(first) >= {"provider", "key", "model", "outcome", "status", "error", "latency_s"}
    assert (first["key"], first["outcome"], first["status"]) == ("groq#1", "rate_limited", 429)


def test_fallbacks_are_reported_with_their_reasons(world: World) -> None:
    world.groq_keys[0].script(Reply.server_error(503))
    result = ask(world, "hello")
    assert "tried first" in result.stderr
    assert "unavailable 503" in result.stderr
    assert "1 fallback" in result.stderr


def test_quiet_silences_the_report(world: World) -> None:
    world.groq_keys[0].script(Reply.server_error(503))
    result = ask(world, "hello", "-q")
    assert (result.exit_code, result.stderr) == (0, "")


def test_exit_1_when_every_candidate_fails(world: World) -> None:
    for key in (*world.groq_keys, *world.backup.keys):
        key.default = Reply.unauthorized()
    result = ask(world, "hello")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("auth 401") == 4
    assert "every candidate failed" in result.stderr


def test_exit_1_json_carries_the_error_and_attempts(world: World) -> None:
    for key in (*world.groq_keys, *world.backup.keys):
        key.default = Reply.unauthorized()
    data = json.loads(ask(world, "hello", "--json").stdout)
    assert data["error"]["exit_code"] == 1
    assert len(data["attempts"]) == 4


def test_exit_2_for_bad_config(world: World, isolated_env: Path) -> None:
    (isolated_env / "routes.toml").write_text("[providers.groq\n")
    result = ask(world, "hello")
    assert result.exit_code == 2
    assert "routes.toml" in result.stderr and "TOML syntax error" in result.stderr


def test_exit_2_for_unknown_task_and_missing_keys(world: World) -> None:
    assert "no task 'nope'" in ask(world, "hi", "-t", "nope").stderr
    result = CliRunner().invoke(app, ["ask", "hi"], env={k: "" for k in world.env})
    assert result.exit_code == 2
    assert "GROQ_API_KEY or GROQ_API_KEY_2 or GROQ_API_KEY_3 (groq)" in result.stderr


def test_exit_2_for_no_prompt(world: World) -> None:
    result = ask(world, stdin="")
    assert result.exit_code == 2 and "nothing to ask" in result.stderr


def test_exit_3_for_context_too_long_everywhere(world: World) -> None:
    world.groq_keys[0].script(Reply.context_length_exceeded())
    result = ask(world, "-m", "groq:small", "long prompt")
    assert result.exit_code == 3
    assert len(world.server.log) == 1


def test_exit_3_for_a_bad_request_with_the_providers_message(world: World) -> None:
    world.groq_keys[0].script(Reply.bad_request("Invalid value for 'temperature'"))
    result = ask(world, "hello")
    assert result.exit_code == 3
    assert "Invalid value for 'temperature'" in result.stderr
    assert len(world.server.log) == 1


def test_unauthorized_message_never_shows_the_key(world: World) -> None:
    world.groq_keys[0].script(Reply.unauthorized())
    result = ask(world, "hello", "--json", "-v")
    assert result.exit_code == 0  # ask() asserted that no key appears anywhere


# -- real processes: pipes, exit codes, signals ------------------------------------------------


def run(
    world: World, *args: str, stdin: str = "", **kw: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **world.env}
    proc = subprocess.run(
        [sys.executable, "-m", "llmroute", *args], input=stdin, text=True, capture_output=True,
        env=env, timeout=60, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    assert_no_secret(proc.stdout, proc.stderr)
    return proc


def test_pipeline_in_a_subprocess_is_plain(world: World) -> None:
    world.groq_keys[0].script(Reply.server_error(502))
    proc = run(world, "ask", "summarise", stdin="piped text")
    assert proc.returncode == 0
    assert proc.stdout == "echo: piped text\n\nsummarise\n"
    assert "\x1b[" not in proc.stderr  # no colour when stderr is not a terminal
    assert "groq#2 · small" in proc.stderr


@pytest.mark.parametrize(("reply", "code"), [(Reply.unauthorized(), 1), (Reply.bad_request(), 3)])
def test_subprocess_exit_codes(world: World, reply: Reply, code: int) -> None:
    for key in (*world.groq_keys, *world.backup.keys):
        key.default = reply
    assert run(world, "ask", "hi").returncode == code


def test_ctrl_c_exits_130_without_a_traceback(world: World) -> None:
    world.groq_keys[0].default = Reply.stall(30)
    env = {**os.environ, **world.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmroute", "ask", "hi"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not world.server.log and time.monotonic() < deadline:
        time.sleep(0.01)  # wait for the request to reach the provider
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "Traceback" not in err and out == ""


def test_waiting_for_the_earliest_reset_is_said_on_stderr(world: World) -> None:
    # Resets long enough that a slow pass over four candidates cannot outlast them.
    for key in world.groq_keys:
        key.script(Reply.rate_limited(reset=1.5))
    world.backup.keys[0].script(Reply.rate_limited(reset=1.5))
    result = ask(world, "-t", "other", "hello")
    assert result.exit_code == 0
    assert "waiting 1." in result.stderr and "every candidate is cooling down" in result.stderr


# -- streaming ---------------------------------------------------------------------------------


def test_streams_by_default_and_reports_the_first_token_time(world: World) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=["Hel", "lo"]))
    result = ask(world, "hi")
    assert (result.exit_code, result.stdout) == (0, "Hello\n")
    assert "first token" in result.stderr
    assert world.server.log[0].body["stream"] is True  # type: ignore[index]


def test_no_stream_sends_a_plain_request(world: World) -> None:
    result = ask(world, "--no-stream", "hi")
    assert result.stdout == "echo: hi\n"
    assert "stream" not in world.server.log[0].body  # type: ignore[operator]


def test_a_cut_stream_keeps_exactly_the_chunks_shown_and_exits_1(world: World) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=["Hel", "lo", " wor", "ld"], cut_after=3))
    result = ask(world, "hi")
    assert result.exit_code == 1
    assert result.stdout == "Hello wor"
    assert "groq#1/small broke off" in result.stderr
    assert len(world.server.log) == 1


def test_an_error_event_after_content_is_reported_not_spliced(world: World) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=["Hel", "lo", " wor"], error_after=2))
    result = ask(world, "hi")
    assert (result.exit_code, result.stdout) == (1, "Hello")
    assert "error event" in result.stderr


def test_ctrl_c_while_streaming_keeps_the_text_and_exits_130(world: World) -> None:
    world.groq_keys[0].default = Reply.stream(chunks=["first ", "second"], stall_after=1,
                                              stall_seconds=30)  # fmt: skip
    env = {**os.environ, **world.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmroute", "ask", "hi"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.read(6) == b"first "  # the first chunk reached stdout: now interrupt
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert out == b"" and b"Traceback" not in err and b"interrupted" in err
