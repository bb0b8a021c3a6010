"""The streaming rules on the fake clock: fallback before the first content, the first-token
timeout, stalls and breaks after it, no splice, and every held budget settled exactly once.
No test here waits in real time: stalls sleep on the fake clock and timeouts cut them there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from llmroute.budget import Cost, Finished
from llmroute.config import Limits, parse_config
from llmroute.errors import RequestFailedError, StreamBrokenError
from llmroute.router import Router
from llmroute.state import MemoryStore
from llmroute.state.base import Reservation
from tests.fakes import FakeClock, ScriptedStream, ScriptedUpstream, Stall
from tests.sdk import status_error

CHUNKS = ("Hel", "lo", " wor", "ld")
CONFIG = {
    "settings": {"default_task": "main", "deadline": 60, "timeout": 10, "ttft_timeout": 2},
    "providers": {
        "groq": {"base_url": "http://groq.test/v1", "keys": ["G1", "G2"],
                 "limits": {"requests": "100/minute"}},
        "big": {"base_url": "http://big.test/v1", "keys": ["B1"]},
    },
    "tasks": {"main": {"route": ["groq:small", "big:large"]}},
}  # fmt: skip
ENV = {"G1": "gsk_one_0000000000000001", "G2": "gsk_two_0000000000000002", "B1": "big_0000001"}


class LedgerStore(MemoryStore):
    """A memory store that keeps account of every reservation it granted and settled."""

    def __init__(self) -> None:
        super().__init__()
        self.granted: list[str] = []
        self.settled: list[str] = []

    def reserve(self, scope: str, limits: Limits, cost: Cost, now: float) -> Reservation:
        reservation = super().reserve(scope, limits, cost, now)
        if reservation.entry_id:
            self.granted.append(reservation.entry_id)
        return reservation

    def finish(self, scope: str, done: Finished, now: float) -> None:
        self.settled.append(done.entry_id)
        super().finish(scope, done, now)

    def balanced(self) -> bool:
        return sorted(self.granted) == sorted(self.settled) and len(set(self.settled)) == len(
            self.settled
        )


@pytest.fixture
def store() -> LedgerStore:
    return LedgerStore()


@pytest.fixture
def router(upstream: ScriptedUpstream, clock: FakeClock, store: LedgerStore) -> Router:
    return Router(parse_config(CONFIG), env=ENV, upstream=upstream, clock=clock, store=store)


async def read(router: Router, **kw: Any) -> tuple[list[str], Any]:
    stream = router.stream(kw.pop("task", "main"), "hi", **kw)
    return [text async for text in stream], stream.result


@pytest.mark.parametrize(
    "first",
    [status_error(429, {"error": {"code": "rate_limit_exceeded"}}, {"retry-after": "30"}),
     status_error(503, {"error": {"message": "overloaded"}}),
     ScriptedStream(chunks=CHUNKS, first_byte_after=5),
     ScriptedStream(chunks=CHUNKS, stall_after=0, stall_seconds=5),
     ScriptedStream(chunks=CHUNKS, error_after=0),
     ScriptedStream(chunks=CHUNKS, cut_after=0)],
    ids=["429", "503", "no-headers", "no-first-token", "error-event", "cut-before-content"],
)  # fmt: skip
async def test_falls_back_invisibly_before_the_first_content(
    router: Router, upstream: ScriptedUpstream, store: LedgerStore, first: Any
) -> None:
    upstream.script("groq#1", first)
    upstream.script("groq#2", ScriptedStream(chunks=CHUNKS))
    texts, result = await read(router)
    assert texts == list(CHUNKS)  # nothing of the failed attempt reached the reader
    assert result.candidate.key.alias == "groq#2"
    assert [a.outcome for a in result.attempts][1:] == ["ok"]
    assert result.attempts[0].outcome in {"rate_limited", "unavailable", "timeout"}
    assert upstream.streams[0].closed if upstream.streams else True
    assert store.balanced()


async def test_the_first_token_timeout_is_its_own_and_exact(
    router: Router, upstream: ScriptedUpstream, clock: FakeClock
) -> None:
    upstream.script("groq#1", ScriptedStream(chunks=CHUNKS, stall_after=0, stall_seconds=9))
    start = clock.t
    _, result = await read(router, ttft_timeout=0.3, timeout=30)
    first = result.attempts[0]
    assert first.outcome == "timeout" and first.reason == "no first token within 0.3s"
    assert clock.t - start == pytest.approx(0.3)  # cut at its limit, not at the stall's end
    assert clock.slept == []  # no wait of the router's own


async def test_a_stall_after_the_first_token_breaks_the_stream(
    router: Router, upstream: ScriptedUpstream, clock: FakeClock, store: LedgerStore
) -> None:
    upstream.script("groq#1", ScriptedStream(chunks=CHUNKS, stall_after=1, stall_seconds=60))
    start = clock.t
    with pytest.raises(StreamBrokenError, match=r"stalled for 4\.0s") as caught:
        await read(router, timeout=4)
    assert caught.value.partial == "Hel"
    assert clock.t - start == pytest.approx(4.0)
    assert upstream.calls == [("groq#1", "small")]  # no other model finishes the answer
    assert store.balanced()


@pytest.mark.parametrize(
    ("script", "partial", "fragment"),
    [(ScriptedStream(chunks=CHUNKS, cut_after=3), "Hello wor", "connection failed"),
     (ScriptedStream(chunks=CHUNKS, error_after=2), "Hello", "error event"),
     (ScriptedStream(chunks=CHUNKS, no_done=True), "Hello world", "without [DONE]")],
    ids=["cut", "error-event", "no-done"],
)  # fmt: skip
async def test_a_break_after_content_keeps_the_text_and_is_never_spliced(
    router: Router,
    upstream: ScriptedUpstream,
    store: LedgerStore,
    script: ScriptedStream,
    partial: str,
    fragment: str,
) -> None:
    upstream.script("groq#1", script)
    seen: list[str] = []
    with pytest.raises(StreamBrokenError, match="groq#1/small broke off") as caught:
        async for text in router.stream("main", "hi"):
            seen.append(text)
    assert "".join(seen) == caught.value.partial == partial
    broken = caught.value.attempts[-1]
    assert fragment in broken.reason and broken.reason.startswith("broke off after")
    assert broken.ttft_s is not None
    assert len(upstream.calls) == 1
    assert upstream.streams[0].closed and store.balanced()
    cooled = router.store.snapshot(0).cooldowns
    assert [c.kind for c in cooled] == ["unavailable"]  # the candidate pays for its break


async def test_a_reader_that_stops_frees_the_budget_and_the_connection(
    router: Router, upstream: ScriptedUpstream, store: LedgerStore
) -> None:
    upstream.script("groq#1", ScriptedStream(chunks=CHUNKS))
    async with router.stream("main", "hi") as stream:
        async for _ in stream:
            break
    assert upstream.streams[0].closed and store.balanced()
    assert router.store.snapshot(0).cooldowns == []  # stopping is not the provider's fault


async def test_ctrl_c_while_waiting_for_the_first_token_releases_everything(
    router: Router, upstream: ScriptedUpstream, store: LedgerStore
) -> None:
    gate = asyncio.Event()

    class Blocking(ScriptedUpstream):
        async def open_stream(self, *args: Any) -> Any:
            stream = await super().open_stream(*args)
            gate.set()
            await asyncio.Event().wait()  # never answers: the reader gives up first
            return stream

    router.engine.upstream = Blocking(upstream.clock)
    reader = asyncio.create_task(read(router))
    await gate.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert store.balanced() and store.granted
    assert router.store.snapshot(0).cooldowns == []


@pytest.mark.parametrize(
    ("settings", "blamed"),
    [({"deadline": 1.5}, False), ({"deadline": 2.0}, True), ({"ttft_timeout": 0.5}, False),
     ({"ttft_timeout": 5, "deadline": 5}, True)],
    ids=["deadline-cuts", "deadline-equal", "callers-short-ttft", "callers-long-ttft"],
)  # fmt: skip
async def test_one_rule_for_who_is_to_blame_for_a_first_token_timeout(
    router: Router, upstream: ScriptedUpstream, settings: dict[str, float], blamed: bool
) -> None:
    """A timeout counts against the provider only if it had the first-token time the config
    grants (2 s here): not when the request's deadline cut it shorter, nor when the caller
    chose a shorter first-token timeout for itself."""
    upstream.script("groq#1", ScriptedStream(first_byte_after=30))
    try:
        attempts = (await read(router, task="groq:small", **settings))[1].attempts
    except RequestFailedError as failed:
        attempts = failed.attempts
    assert attempts[0].outcome == "timeout"
    assert bool(router.store.snapshot(0).cooldowns) is blamed


@pytest.mark.parametrize(
    ("settings", "reason", "blamed"),
    [({"deadline": 3, "timeout": 5}, "the request deadline was reached", False),
     ({"timeout": 5}, "no answer within 5.0s", False),  # shorter than the configured 10 s
     ({}, "no answer within 10.0s", True),
     ({"timeout": 20}, "no answer within 20.0s", True)],
    ids=["deadline", "callers-short-timeout", "configured", "callers-long-timeout"],
)  # fmt: skip
async def test_shared_state_records_only_what_providers_did(
    router: Router, upstream: ScriptedUpstream, settings: dict[str, float], reason: str,
    blamed: bool,
) -> None:  # fmt: skip
    """A timeout counts against a provider only when it had the time the config grants it."""
    upstream.script("groq#1", Stall(seconds=60))
    try:
        attempts = (await router.complete("groq:small", "hi", **settings)).attempts
    except RequestFailedError as failed:
        attempts = failed.attempts
    assert (attempts[0].candidate.key.alias, attempts[0].reason) == ("groq#1", reason)
    assert bool(router.store.snapshot(0).cooldowns) is blamed


async def test_raw_chunks_are_the_answering_candidates_alone(
    router: Router, upstream: ScriptedUpstream
) -> None:
    upstream.script("groq#1", ScriptedStream(chunks=CHUNKS, error_after=0))
    upstream.script("groq#2", ScriptedStream(chunks=CHUNKS))
    stream = router.stream("main", "hi")
    chunks = [chunk.data async for chunk in stream.chunks()]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    texts = [c["choices"][0]["delta"].get("content") for c in chunks[1:5]]
    assert texts == list(CHUNKS)
    assert chunks[-1] == {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4,
                                                   "total_tokens": 7}}  # fmt: skip
    assert stream.result.content == "Hello world"
    assert stream.result.usage.total_tokens == 7  # type: ignore[union-attr]


async def test_a_streamed_tool_call_is_assembled_into_the_response(
    router: Router, upstream: ScriptedUpstream
) -> None:
    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    upstream.script("groq#1", ScriptedStream(tool_call=("get_weather", arguments)))
    texts, result = await read(router, tools=[{"type": "function"}])
    assert texts == []
    assert result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert call["id"] == "call_1" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert result.response["choices"][0]["message"]["content"] is None
    assert upstream.params[0]["tools"] == [{"type": "function"}]


async def test_a_stream_is_read_once(router: Router) -> None:
    stream = router.stream("main", "hi")
    _ = [t async for t in stream]
    with pytest.raises(Exception, match="read once"):
        aiter(stream)
