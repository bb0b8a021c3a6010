"""What users pipe in (issue 13, finding 7), through real subprocesses: UTF-8 only with the
byte named, bounded, and a closed stdin is no input when the prompt is an argument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmroute.cli.stdin import MAX_STDIN_BYTES
from tests.fakeprovider import FakeServer
from tests.world import World, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state="memory")
    world.write_config(isolated_env / "routes.toml")
    return world


def llmroute(
    world: World, *args: str, stdin: bytes | None = None, closed: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """`args` as a shell runs them: `stdin` piped in, or none at all (`<&-`) when `closed`."""
    command = [sys.executable, "-m", "llmroute", *args]
    if args[0] == "ask":
        command.append("--direct")  # no gateway discovery in these tests
    feed: dict[str, object] = {"input": stdin} if stdin is not None else {}
    if closed:
        feed["preexec_fn"] = lambda: os.close(0)
    elif stdin is None:
        feed["stdin"] = subprocess.DEVNULL
    proc = subprocess.run(
        command, capture_output=True, timeout=60, env={**os.environ, **world.env}, **feed
    )  # type: ignore[call-overload]
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr
    return proc  # type: ignore[no-any-return]


def test_non_utf8_stdin_names_the_byte_and_exits_2(world: World) -> None:
    proc = llmroute(world, "ask", "-q", stdin=b"caf\xe9 au lait")
    assert proc.returncode == 2
    assert b"stdin is not UTF-8 text: byte 3 is 0xe9" in proc.stderr


def test_a_byte_order_mark_is_dropped(world: World) -> None:
    proc = llmroute(world, "ask", "-q", stdin=b"\xef\xbb\xbfhello")
    assert proc.returncode == 0 and proc.stdout == b"echo: hello\n"


def test_a_closed_stdin_with_a_prompt_argument_is_no_input(world: World) -> None:
    proc = llmroute(world, "ask", "-q", "hello", closed=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"echo: hello\n"


def test_a_closed_stdin_without_a_prompt_says_what_to_do(world: World) -> None:
    proc = llmroute(world, "ask", "-q", closed=True)
    assert proc.returncode == 2
    assert b"give a prompt" in proc.stderr or b"give the prompt as an argument" in proc.stderr


def test_stdin_is_read_up_to_a_bound(world: World) -> None:
    proc = llmroute(world, "ask", "-q", stdin=b"x" * (MAX_STDIN_BYTES + 1))
    assert proc.returncode == 2
    assert b"more than 16 MiB" in proc.stderr


def test_chat_names_the_line_that_is_not_utf8(world: World) -> None:
    proc = llmroute(world, "chat", "-q", "-t", "other", stdin=b"hello\n\xff\n")
    assert proc.returncode == 2
    assert proc.stdout == b"echo: hello\n"  # the line before it was answered
    assert b"stdin line 2 is not UTF-8 text" in proc.stderr
