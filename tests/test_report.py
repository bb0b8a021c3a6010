"""The stderr report, rendered into a fixed-width console and compared as text."""

from __future__ import annotations

import io

from rich.console import Console

from llmroute.attempt import Attempt, Candidate, Result, Usage
from llmroute.cli.report import Report
from llmroute.keys import ApiKey

KEY1 = ApiKey("groq#1", "GROQ_API_KEY", "gsk_secret_secret_1111")
KEY2 = ApiKey("groq#2", "GROQ_API_KEY_2", "gsk_secret_secret_2222")
MODEL = "llama-3.3-70b-versatile"


def render(result: Result) -> str:
    out = io.StringIO()
    Report(Console(file=out, width=100, color_system=None)).result(result)
    return out.getvalue()


def test_answer_with_one_fallback() -> None:
    attempts = (
        Attempt(candidate=Candidate("groq", KEY1, MODEL), outcome="rate_limited",
                reason="Rate limit reached", status=429, latency_s=0.12),
        Attempt(candidate=Candidate("groq", KEY2, MODEL), outcome="ok", status=200,
                latency_s=0.84),
    )  # fmt: skip
    result = Result(content="hi", candidate=attempts[1].candidate, latency_s=0.96,
                    usage=Usage(52, 61), attempts=attempts, finish_reason="stop")  # fmt: skip
    lines = [line.rstrip() for line in render(result).splitlines()]
    assert lines[0] == f"✓ groq#2 · {MODEL} · 0.96s · 52 in / 61 out tokens · 1 fallback"
    assert lines[1] == "tried first"
    assert lines[3].split() == ["key", "model", "outcome", "time", "reason"]
    assert lines[5].split() == ["groq#1", MODEL, "rate_limited", "429", "0.12s", "Rate", "limit",
                                "reached"]  # fmt: skip
    assert "secret" not in render(result)


def test_answer_at_first_try_is_one_line() -> None:
    candidate = Candidate("groq", KEY1, MODEL)
    answer = Attempt(candidate=candidate, outcome="ok", status=200, latency_s=0.5)
    result = Result(
        content="hi", candidate=candidate, latency_s=0.5, usage=None, attempts=(answer,)
    )
    assert render(result).strip() == f"✓ groq#1 · {MODEL} · 0.50s"


def test_quiet_report_prints_nothing() -> None:
    out = io.StringIO()
    candidate = Candidate("groq", KEY1, MODEL)
    result = Result(content="hi", candidate=candidate, latency_s=0.5, usage=None, attempts=())
    Report(Console(file=out), quiet=True).result(result)
    assert out.getvalue() == ""
