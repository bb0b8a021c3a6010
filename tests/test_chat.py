"""`llmroute chat`: the pure session and command parser, then the REPL end to end in a
pseudo-terminal (pexpect), then the same command fed by a pipe."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from typer.testing import CliRunner

from llmroute.attempt import Attempt, Candidate, Result, Usage
from llmroute.chat.commands import (
    USAGE,
    Clear,
    Composer,
    Exit,
    Help,
    Hint,
    Retry,
    Save,
    Send,
    SetModel,
    SetSystem,
    SetTask,
    Undo,
    help_text,
    parse_line,
)
from llmroute.chat.note import note_line
from llmroute.chat.session import Session
from llmroute.cli.app import app
from llmroute.keys import ApiKey
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, assert_no_secret, make_world

# -- the command parser (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello there", Send("hello there")),
        ("  padded  ", Send("padded")),
        ("//etc/hosts is a file", Send("/etc/hosts is a file")),
        ("/task fast", SetTask("fast")),
        ("/model groq:small", SetModel("groq:small")),
        ("/model", SetModel(None)),
        ("/system Be brief.  Really.", SetSystem("Be brief.  Really.")),
        ("/system", SetSystem(None)),
        ("/save my chat.json", Save("my chat.json")),
        ("/retry", Retry()),
        ("/undo", Undo()),
        ("/clear", Clear()),
        ("/help", Help()),
        ("/?", Help()),
        ("/exit", Exit()),
        ("/QUIT", Exit()),
    ],
)
def test_lines_parse_into_commands(line: str, command: object) -> None:
    assert parse_line(line) == command


@pytest.mark.parametrize("line", ["", "   ", "\t"])
def test_blank_lines_are_nothing(line: str) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("/frobnicate", "unknown command /frobnicate: /help lists the commands"),
        ("/etc/hosts what is this", "start a message with // to send"),
        ("/task", "usage: /task NAME"),
        ("/task two words", "usage: /task NAME"),
        ("/model small", "usage: /model [PROVIDER:MODEL]"),
        ("/model groq:", "usage: /model [PROVIDER:MODEL]"),
        ("/save", "usage: /save PATH"),
        ("/undo twice", "/undo takes no argument"),
    ],
)
def test_bad_commands_become_one_line_hints(line: str, hint: str) -> None:
    command = parse_line(line)
    assert isinstance(command, Hint)
    assert hint in command.message and "\n" not in command.message


def test_help_lists_every_command() -> None:
    text = help_text()
    for usage, _ in USAGE.values():
        assert usage in text
    assert '"""' in text


def test_a_block_is_one_message_sent_as_typed() -> None:
    composer = Composer()
    assert composer.feed('"""') is None and composer.in_block
    assert composer.feed("  indented line") is None
    assert composer.feed("/task not-a-command") is None
    assert composer.feed("") is None
    assert composer.feed('"""') == Send("  indented line\n/task not-a-command")
    assert not composer.in_block
    assert composer.feed("/clear") == Clear()


def test_text_after_the_opening_quotes_is_the_first_line() -> None:
    composer = Composer()
    assert composer.feed('"""first') is None
    assert composer.feed('   """') == Send("first")
    assert composer.feed('"""all on one line"""') == Send("all on one line")
    assert composer.feed('""""""') is None  # an empty block sends nothing


def test_discarding_a_block() -> None:
    composer = Composer()
    assert composer.discard() is False
    composer.feed('"""')
    composer.feed("half a thought")
    assert composer.discard() is True
    assert composer.feed("fresh") == Send("fresh")


# -- the session (pure) -------------------------------------------------------------------------


def test_each_turn_sends_the_whole_conversation_system_first() -> None:
    session = Session(system="be brief")
    assert session.ask("one") == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
    ]
    session.answered("reply one")
    assert session.ask("two")[1:] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "reply one"},
        {"role": "user", "content": "two"},
    ]


def test_an_unanswered_prompt_stays_out_of_the_conversation_and_is_retried() -> None:
    session = Session()
    session.ask("one")
    session.answered("r1")
    session.ask("two")  # failed, broke off or was cancelled: never answered()
    assert session.messages() == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "r1"},
    ]
    assert session.retry() == "two"
    assert session.turns == [("one", "r1")]


def test_retry_takes_back_the_last_turn() -> None:
    session = Session()
    assert session.retry() is None
    session.ask("one")
    session.answered("r1")
    assert session.retry() == "one"
    assert session.turns == []
    assert session.ask("one") == [{"role": "user", "content": "one"}]


def test_undo_and_clear() -> None:
    session = Session(system="sys")
    assert session.undo() is None
    for prompt in ("a", "b"):
        session.ask(prompt)
        session.answered(prompt.upper())
    assert session.undo() == ("b", "B")
    assert session.turns == [("a", "A")]
    session.ask("c")
    session.clear()
    assert (session.turns, session.unanswered, session.system) == ([], None, "sys")


def test_answered_needs_a_turn_in_flight() -> None:
    with pytest.raises(ValueError, match="without a turn"):
        Session().answered("x")


def test_the_route_and_what_save_writes() -> None:
    session = Session(task="fast", system="sys")
    assert session.target == "fast"
    session.model = "groq:small"
    assert session.target == "groq:small"
    session.ask("q")
    session.answered("a")
    assert session.to_dict() == {
        "task": "fast",
        "model": "groq:small",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
        ],
    }


def test_the_note_names_who_answered_and_what_was_tried_first() -> None:
    def candidate(provider: str, index: int, model: str) -> Candidate:
        return Candidate(provider, ApiKey(f"{provider}#{index}", "VAR", "secret-value"), model)

    attempts = (
        Attempt(candidate=candidate("groq", 1, "small"), outcome="rate_limited",
                reason="slow down", status=429, latency_s=0.01),
        Attempt(candidate=candidate("groq", 2, "small"), outcome="skipped",
                reason="cooling down"),
        Attempt(candidate=candidate("backup", 1, "big"), outcome="ok", latency_s=0.3),
    )  # fmt: skip
    result = Result(content="hi", candidate=attempts[-1].candidate, latency_s=0.42,
                    usage=Usage(12, 3), attempts=attempts, finish_reason="stop",
                    ttft_s=0.1)  # fmt: skip
    assert note_line(result) == (
        "backup#1 · big · 0.42s (first token 0.10s) · 12 in / 3 out tokens"
        " · after groq#1/small rate_limited 429"
    )
    plain = Result(content="hi", candidate=attempts[0].candidate, latency_s=1.0, usage=None,
                   attempts=attempts[-1:])  # fmt: skip
    assert note_line(plain) == "groq#1 · small · 1.00s"


# -- the REPL in a pseudo-terminal --------------------------------------------------------------


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    world = make_world(fake_server, state="memory")
    world.write_config(isolated_env / "routes.toml")
    return world


class Repl:
    """`llmroute chat` in a pseudo-terminal; `transcript` is everything it showed."""

    def __init__(self, world: World, *args: str) -> None:
        env = {**os.environ, **world.env, "TERM": "dumb", "NO_COLOR": "1"}
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable, ["-m", "llmroute", "chat", "--config", "routes.toml", *args],
            env=env, encoding="utf-8", timeout=10, dimensions=(40, 250),
        )  # fmt: skip
        self.child.logfile_read = self.log
        self.expect("> ")

    def expect(self, text: str) -> None:
        self.child.expect_exact(text)

    def say(self, line: str, *expected: str) -> None:
        """Send a line; wait for each `expected` in turn, then for the next prompt."""
        self.child.sendline(line)
        for text in expected:
            self.expect(text)
        self.expect("\n> ")

    def exit_status(self) -> int | None:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    @property
    def transcript(self) -> str:
        return self.log.getvalue()


@pytest.fixture
def repl(world: World) -> Iterator[Repl]:
    repl = Repl(world)
    yield repl
    if repl.child.isalive():
        repl.child.terminate(force=True)
    assert_no_secret(repl.transcript)
    assert "Traceback" not in repl.transcript


def last_messages(world: World) -> Any:
    body = world.server.log[-1].body
    assert body is not None
    return body["messages"]


def test_two_turns_the_second_falls_back_to_another_provider(world: World, repl: Repl) -> None:
    assert "chat via task fast · /help lists the commands" in repl.transcript
    repl.say("hello", "echo: hello", "groq#1 · small · ")
    for key in world.groq_keys:
        key.script(Reply.rate_limited(reset=30))
    repl.say("and then?", "echo: and then?", "backup#1 · big · ", "after groq#2/small rate_limited")
    assert "in / " in repl.transcript and " out tokens" in repl.transcript
    assert world.server.log[-1].provider == "backup"
    assert last_messages(world) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "echo: hello"},
        {"role": "user", "content": "and then?"},
    ]
    repl.child.sendeof()
    assert repl.exit_status() == 0


def test_model_pins_and_retry_asks_again_elsewhere(world: World, repl: Repl) -> None:
    repl.say("/model backup:big", "now routing by backup:big")
    repl.say("hi", "echo: hi", "backup#1 · big · ")
    repl.say("/model", "now routing by task fast")
    repl.say("/retry", "echo: hi", "groq#1 · small · ")
    assert [e.provider for e in world.server.log] == ["backup", "groq"]
    assert last_messages(world) == [{"role": "user", "content": "hi"}]  # retried, not repeated
    repl.say("/model nope:x", "no provider 'nope'")
    repl.say("/model small", "usage: /model [PROVIDER:MODEL]")
    repl.say("/task nowhere", "there is no task 'nowhere'")
    repl.say("/frobnicate", "unknown command /frobnicate")
    repl.say("again", "echo: again", "groq#2 · small · ")  # still on the task's route
    repl.child.sendintr()  # Ctrl-C at an empty prompt leaves
    assert repl.exit_status() == 0


def test_multi_line_input_system_prompt_and_save(world: World, repl: Repl) -> None:
    repl.say("/system be brief", "system prompt set")
    for line in ('"""', "line one", "  line two"):
        repl.child.sendline(line)
        repl.expect("... ")
    repl.say('"""', "echo: line one\r\n  line two")
    assert last_messages(world) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "line one\n  line two"},
    ]
    repl.say("/save saved/../chat.json", "No such file or directory")  # a hint, no traceback
    repl.say("/save chat.json", "saved 1 turn(s) to chat.json")
    saved = json.loads(Path("chat.json").read_text())
    assert saved["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "line one\n  line two"},
        {"role": "assistant", "content": "echo: line one\n  line two"},
    ]
    assert (saved["task"], saved["model"]) == (None, None)
    repl.say("/undo", "took back: line one line two")
    repl.say("/clear", "conversation cleared")
    repl.child.sendeof()
    assert repl.exit_status() == 0


def test_ctrl_c_cancels_a_streamed_reply_and_returns_to_the_prompt(
    world: World, repl: Repl
) -> None:
    world.groq_keys[0].script(Reply.stream(["first words", " never sent"], stall_after=1,
                                           stall_seconds=30))  # fmt: skip
    repl.child.sendline("tell me")
    repl.expect("first words")
    repl.child.sendintr()
    repl.expect("reply cancelled (/retry asks again)")
    repl.expect("\n> ")
    repl.say("/retry", "echo: tell me", "groq#2 · small · ")
    assert last_messages(world) == [{"role": "user", "content": "tell me"}]
    repl.say("next", "echo: next")
    assert last_messages(world)[:2] == [  # the cancelled reply is not in the conversation
        {"role": "user", "content": "tell me"},
        {"role": "assistant", "content": "echo: tell me"},
    ]
    repl.child.sendeof()
    assert repl.exit_status() == 0


def test_ctrl_c_drops_a_typed_line_or_an_open_block(world: World, repl: Repl) -> None:
    repl.child.send("half a line")
    repl.expect("half a line")  # read by readline: a Ctrl-C before that would flush it unread
    repl.child.sendintr()
    repl.expect("\n> ")
    repl.child.sendline('"""')
    repl.expect("... ")
    repl.child.sendintr()
    repl.expect("\n> ")
    repl.say("still here", "echo: still here")
    assert len(world.server.log) == 1
    repl.child.sendeof()
    assert repl.exit_status() == 0


def test_history_is_kept_in_the_state_directory(world: World, repl: Repl) -> None:
    repl.say("remember me", "echo: remember me")
    repl.child.sendeof()
    assert repl.exit_status() == 0
    history = Path(os.environ["XDG_STATE_HOME"]) / "llmroute" / "chat_history"
    assert "remember me" in history.read_text()


def test_failed_and_broken_replies_are_sentences_and_stay_out(world: World, repl: Repl) -> None:
    world.groq_keys[0].script(Reply.stream(["half an ans", "wer"], cut_after=1))
    world.groq_keys[1].script(Reply.bad_request("Invalid value for 'temperature'"))
    repl.say("first", "half an ans", "broke off", "the text above is incomplete")
    repl.say("second", "Invalid value for 'temperature'")
    repl.say("third", "echo: third", "groq#3 · small")
    assert last_messages(world) == [{"role": "user", "content": "third"}]
    repl.child.sendeof()
    assert repl.exit_status() == 0


def test_quiet_hides_the_note(world: World) -> None:
    repl = Repl(world, "-q")
    repl.say("hello", "echo: hello")
    repl.child.sendeof()
    assert repl.exit_status() == 0
    assert "small ·" not in repl.transcript and "/help lists" not in repl.transcript
    assert "Traceback" not in repl.transcript


def test_an_unknown_task_is_refused_before_the_first_prompt(world: World) -> None:
    result = chat(world, "hi\n", "-t", "nowhere")
    assert result.exit_code == 2
    assert "nowhere" in result.stderr and result.stdout == ""
    assert world.server.log == []


# -- stdin is not a terminal: one message per line ----------------------------------------------


def chat(world: World, stdin: str, *args: str) -> Any:
    result = CliRunner().invoke(app, ["chat", *args], input=stdin, env=world.env)
    assert_no_secret(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_piped_lines_are_turns_with_only_replies_on_stdout(world: World) -> None:
    result = chat(world, 'one\n/system terse\n"""\ntwo\nlines\n"""\n\nthree\n')
    assert result.exit_code == 0
    assert result.stdout == "echo: one\necho: two\nlines\necho: three\n"
    assert "groq#1 · small" in result.stderr and "groq#3 · small" in result.stderr
    assert last_messages(world) == [
        {"role": "system", "content": "terse"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two\nlines"},
        {"role": "assistant", "content": "echo: two\nlines"},
        {"role": "user", "content": "three"},
    ]


def test_piped_options_reach_the_provider(world: World) -> None:
    result = chat(world, "hi\n", "-m", "backup:big", "-s", "sys", "--temperature", "0.2",
                  "-o", "top_p", "0.9", "-q")  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (0, "echo: hi\n", "")
    body = world.server.log[-1].body
    assert body is not None
    assert (world.server.log[-1].provider, body["temperature"], body["top_p"]) == (
        "backup",
        0.2,
        0.9,
    )


@pytest.mark.parametrize(
    ("stdin", "code", "said"),
    [
        ("hi\nnever sent\n", 1, "every candidate"),
        ("/frobnicate\nnever sent\n", 2, "unknown command"),
        ('"""\nunfinished\n', 2, 'ended inside a """ block'),
    ],
)
def test_piped_sessions_stop_at_the_first_failure(
    world: World, stdin: str, code: int, said: str
) -> None:
    for key in (*world.groq_keys, *world.backup.keys):
        key.default = Reply.unauthorized()
    result = chat(world, stdin)
    assert result.exit_code == code
    assert said in result.stderr and result.stdout == ""
    assert all("never sent" not in json.dumps(e.body) for e in world.server.log)


def test_a_reader_that_goes_away_ends_the_session_quietly(world: World) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmroute", "chat", "--config", "routes.toml"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **world.env},
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("one\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "echo: one\n"
    proc.stdout.close()  # like `| head -1`
    _, err = proc.communicate("two\nthree\n", timeout=20)
    assert proc.returncode == 0
    assert "rror" not in err and "Traceback" not in err
    assert [e.body["messages"][-1]["content"] for e in world.server.log if e.body] == [
        "one",
        "two",
    ]
