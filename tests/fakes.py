"""In-process doubles for the router's seams: a clock that never sleeps, a scripted upstream.

Time is the fake clock's alone: a scripted stall sleeps on it, and a timeout scope on it cuts
that sleep short at its limit, so timeout rules are tested exactly and at once.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmroute.attempt import Candidate, Usage
from llmroute.keys import ApiKey
from llmroute.sse import StreamEvent, parse_events
from llmroute.upstream import ModelListing, Reply, SendStamp
from tests.sdk import connection_error


class _Expired(Exception):
    """A fake-clock timeout scope ran out; its scope turns it into TimeoutError."""

    def __init__(self, scope: object) -> None:
        self.scope = scope


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []  # the router's own waits (not stalls cut by a timeout)
        self._scopes: list[tuple[float, object]] = []  # (due, scope) of open timeouts

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        due, scope = min(self._scopes, key=lambda s: s[0], default=(math.inf, None))
        if self.t + seconds > due:
            self.t = due
            raise _Expired(scope)
        self.slept.append(seconds)
        self.t += seconds

    @asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[None]:
        scope = (self.t + seconds, object())
        self._scopes.append(scope)
        try:
            yield
        except _Expired as expired:
            if expired.scope is not scope[1]:
                raise
            raise TimeoutError from None
        finally:
            self._scopes.remove(scope)


@dataclass(frozen=True, kw_only=True)
class Stall:
    """Answer (or fail) only after `seconds` on the fake clock."""

    seconds: float
    then: Any = None


@dataclass(frozen=True, kw_only=True)
class ScriptedStream:
    """A streamed answer, rendered as real SSE lines and read by the real parser."""

    chunks: Sequence[str] = ("Hel", "lo")
    first_byte_after: float = 0.0  # a stall before the headers arrive
    stall_after: int | None = None  # chunks sent before a stall of `stall_seconds`
    stall_seconds: float = 0.0
    error_after: int | None = None  # chunks sent before an error event
    cut_after: int | None = None  # chunks sent before the connection drops
    no_done: bool = False  # ends cleanly without [DONE]
    tool_call: tuple[str, str] | None = None  # (name, arguments) instead of text
    headers: Mapping[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=lambda: Usage(prompt_tokens=3, completion_tokens=4))


class ScriptedEventStream:
    def __init__(self, script: ScriptedStream, clock: FakeClock) -> None:
        self.script, self.clock = script, clock
        self.headers = script.headers
        self.closed = False

    def events(self) -> AsyncGenerator[StreamEvent, None]:
        return parse_events(self._lines())

    async def _lines(self) -> AsyncIterator[str]:
        s = self.script
        yield _data({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for sent, delta in enumerate(_deltas(s)):
            if sent == s.stall_after:
                await self.clock.sleep(s.stall_seconds)
            if sent == s.error_after:
                yield _data({"error": {"message": "upstream overloaded", "code": 503}})
            if sent == s.cut_after:
                raise connection_error(ConnectionResetError("reset by peer"))
            yield _data({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        finish = "tool_calls" if s.tool_call else "stop"
        yield _data({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        yield _data({"choices": [], "usage": s.usage.to_dict()})
        if not s.no_done:
            yield "data: [DONE]"

    async def aclose(self) -> None:
        self.closed = True


def _deltas(s: ScriptedStream) -> list[dict[str, Any]]:
    if s.tool_call is None:
        return [{"content": text} for text in s.chunks]
    name, arguments = s.tool_call
    half = len(arguments) // 2
    head = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": name, "arguments": arguments[:half]}}  # fmt: skip
    return [
        {"tool_calls": [head]},
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]},
    ]


def _data(chunk: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(chunk)}"


class ScriptedUpstream:
    """Answers per key alias from a script of replies, streams, stalls and exceptions;
    by default an echo (`answer from groq#1/small`, streamed as two chunks)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.scripts: dict[str, deque[Any]] = defaultdict(deque)
        self.calls: list[tuple[str, str]] = []
        self.params: list[Mapping[str, Any]] = []
        self.streams: list[ScriptedEventStream] = []

    def script(self, alias: str, *outcomes: Any) -> None:
        self.scripts[alias].extend(outcomes)

    def prepare(self, candidate: Candidate, base_url: str) -> None:
        pass

    async def _next(self, candidate: Candidate, params: Mapping[str, Any], stamp: SendStamp) -> Any:
        stamp.mark()
        self.calls.append((candidate.key.alias, candidate.model))
        self.params.append(params)
        script = self.scripts[candidate.key.alias]
        outcome = script.popleft() if script else None
        if isinstance(outcome, Stall):
            await self.clock.sleep(outcome.seconds)
            outcome = outcome.then
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply:
        outcome = await self._next(candidate, params, stamp)
        return outcome or Reply(
            content=f"answer from {candidate.label}",
            usage=Usage(prompt_tokens=3, completion_tokens=4),
            finish_reason="stop",
            response={"choices": [{"message": {"content": f"answer from {candidate.label}"}}]},
        )

    async def open_stream(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> ScriptedEventStream:
        outcome = await self._next(candidate, params, stamp)
        script = outcome or ScriptedStream(chunks=("answer from ", candidate.label))
        if script.first_byte_after:
            await self.clock.sleep(script.first_byte_after)
        stream = ScriptedEventStream(script, self.clock)
        self.streams.append(stream)
        return stream

    async def list_models(
        self, provider: str, key: ApiKey, base_url: str, timeout: float
    ) -> ModelListing:
        return ModelListing(models=(), headers={})

    async def get_json(
        self, provider: str, key: ApiKey, base_url: str, path: str, timeout: float
    ) -> object:
        return {}

    async def aclose(self) -> None:
        pass


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def upstream(clock: FakeClock) -> ScriptedUpstream:
    """A scripted upstream whose stalls run on the test's fake clock."""
    return ScriptedUpstream(clock)
