"""`ask`'s fast path (`cli.quick_ask`): it takes an argument list only when it reads it as
Typer does, finds the same directories as platformdirs, prints the report's line as Rich
would, and loads none of the CLI's heavy modules."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from rich.console import Console
from typer.testing import CliRunner

from llmroute.attempt import Attempt, Candidate, Result, Usage
from llmroute.cli import ask
from llmroute.cli.app import app
from llmroute.cli.quick_ask import parse
from llmroute.cli.report import Report
from llmroute.cli.summary import plain_line, summary_text
from llmroute.environment import config_dir, state_dir
from llmroute.keys import ApiKey

TAKEN = [
    ["hi"],
    [],
    ["-t", "fast", "hi"],
    ["--task=fast", "-m", "groq:small", "-s", "be brief", "--temperature", "0", "hi"],
    ["--max-tokens", "5", "--json", "-q", "-vv", "--no-stream", "--config", "x.toml", "hi"],
    ["--timeout", "1.5", "--deadline=3", "--ttft-timeout", "0.5", "hi", "-v", "--verbose"],
    ["-t", "a", "-t", "b", "--quiet", "héllo wörld"],
]
REFUSED = [
    ["--direct", "hi"],
    ["-o", "top_p", "0.9", "hi"],
    ["--help"],
    ["-h"],
    ["--temperature", "-1", "hi"],
    ["--temperature", "inf", "hi"],
    ["--max-tokens", "0", "hi"],
    ["--timeout", "nan", "hi"],
    ["--deadline", "0.05", "hi"],
    ["a", "b"],
    ["--", "-x"],
    ["-qv", "hi"],
    ["--json=1", "hi"],
    ["-t"],
    ["-t", "-v", "hi"],
    ["-tfast", "hi"],
    ["--unknown", "hi"],
    ["-"],
]


def typer_kwargs(args: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What Typer hands `ask` for `llmroute ask ARGS`."""
    seen: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(ask, "ask_options", record)
    outcome = CliRunner().invoke(app, ["ask", *args])
    assert seen, outcome.output
    return seen


@pytest.mark.parametrize("args", TAKEN, ids=" ".join)
def test_what_it_takes_it_reads_as_typer_does(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse(args) == typer_kwargs(args, monkeypatch)


@pytest.mark.parametrize("args", REFUSED, ids=" ".join)
def test_anything_else_goes_to_the_full_cli(args: list[str]) -> None:
    assert parse(args) is None


@pytest.mark.parametrize(
    "env",
    [{}, {"XDG_CONFIG_HOME": "", "XDG_STATE_HOME": ""}, {"XDG_STATE_HOME": "relative/dir"}],
    ids=["xdg-set", "xdg-empty", "xdg-relative"],
)
def test_its_directories_are_platformdirs_own(
    env: dict[str, str], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config_dir() == platformdirs.user_config_path("llmroute")
    assert state_dir() == platformdirs.user_state_path("llmroute")


@pytest.mark.parametrize(
    ("alias", "model", "usage", "ttft"),
    [("groq#1", "llama-3.3-70b-versatile", None, None),
     ("groq#2", "small", Usage(9, 3), 0.123),
     ("local[1]", "qwen [test]", Usage(1, 1), None)],
)  # fmt: skip
def test_its_report_line_is_what_rich_prints(
    alias: str, model: str, usage: Usage | None, ttft: float | None
) -> None:
    candidate = Candidate("p", ApiKey(alias, None, ""), model)
    answer = Attempt(candidate=candidate, outcome="ok", status=200, latency_s=0.5)
    result = Result(content="hi", candidate=candidate, latency_s=0.456, usage=usage,
                    attempts=(answer,), ttft_s=ttft)  # fmt: skip
    out = io.StringIO()
    Report(Console(file=out, width=140, highlight=False)).result(result)
    text = summary_text(
        alias=alias, model=model, latency_s=0.456, ttft_s=ttft, called=1,
        tokens=(usage.prompt_tokens, usage.completion_tokens) if usage else None,
    )  # fmt: skip
    assert plain_line(text, io.StringIO()) == out.getvalue()


def test_it_leaves_colour_and_emoji_codes_to_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plain_line("groq#1 · a:smile:b · 0.50s", io.StringIO()) is None
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert plain_line("groq#1 · small · 0.50s", io.StringIO()) is None


def test_it_loads_neither_typer_nor_rich_nor_http_client(isolated_env: Path) -> None:
    """No gateway here: it goes as far as looking for one, then hands over; what it loaded
    before handing over is what every `ask` through a gateway pays."""
    probe = (
        "import sys; from llmroute.cli.quick_ask import quick_ask; "
        "assert quick_ask(['-t', 'x', 'hi']) is None; print('\\n'.join(sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, env=os.environ.copy())  # fmt: skip
    loaded = {m.split(".")[0] for m in done.stdout.split()} | set(done.stdout.split())
    heavy = {"typer", "rich", "openai", "httpx", "httpx2", "http.client", "platformdirs",
             "dataclasses", "typing", "llmroute.attempt", "llmroute.router"}  # fmt: skip
    assert loaded & heavy == set()
