"""Streaming over real SSE and HTTP: the wire-level cases. The timing rules (first-token
timeout, stalls, deadline) are tested on the fake clock in test_streaming_logic.py."""

from __future__ import annotations

import pytest

from llmroute.config import parse_config
from llmroute.errors import StreamBrokenError
from llmroute.router import Router
from llmroute.state import MemoryStore
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, make_world

CHUNKS = ["Hel", "lo", " wor", "ld"]


@pytest.fixture
def world(fake_server: FakeServer) -> World:
    return make_world(fake_server)


@pytest.fixture
async def router(world: World):
    async with Router(parse_config(world.config), env=world.env, store=MemoryStore()) as r:
        yield r


async def collect(router: Router, task: str = "other", **kw: object) -> tuple[list[str], object]:
    stream = router.stream(task, "hi", **kw)  # type: ignore[arg-type]
    deltas = [d async for d in stream]
    return deltas, stream.result


def first_key_fails(world: World, reply: Reply) -> None:
    world.groq_keys[0].script(reply)
    world.groq_keys[1].script(Reply.stream(chunks=CHUNKS))


async def test_chunks_arrive_in_order_with_usage_and_ttft(world: World, router: Router) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=CHUNKS))
    deltas, result = await collect(router)
    assert deltas == CHUNKS
    assert result.content == "Hello world"  # type: ignore[attr-defined]
    assert result.usage is not None and result.usage.completion_tokens > 0  # type: ignore[attr-defined]
    assert 0 < result.ttft_s <= result.latency_s  # type: ignore[attr-defined]
    answer = result.answer  # type: ignore[attr-defined]
    assert 0 < answer.ttft_s <= answer.latency_s <= result.latency_s
    body = world.server.log[0].body
    assert body is not None and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    "reply",
    [Reply.rate_limited(reset=30), Reply.server_error(503), Reply.reset(),
     Reply.stream(chunks=CHUNKS, error_after=0)],
    ids=["429", "503", "connection-reset", "error-event-before-content"],
)  # fmt: skip
async def test_falls_back_invisibly_before_the_first_token(
    world: World, router: Router, reply: Reply
) -> None:
    first_key_fails(world, reply)
    deltas, result = await collect(router)
    assert deltas == CHUNKS  # nothing of the failed attempt reached the reader
    assert result.candidate.key.alias == "groq#2"  # type: ignore[attr-defined]
    assert result.attempts[0].outcome in {"rate_limited", "unavailable"}  # type: ignore[attr-defined]


async def test_a_cut_after_three_chunks_keeps_exactly_those(world: World, router: Router) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=CHUNKS, cut_after=3))
    stream = router.stream("other", "hi")
    seen = []
    with pytest.raises(StreamBrokenError) as caught:
        async for delta in stream:
            seen.append(delta)
    assert seen == CHUNKS[:3]
    assert caught.value.partial == "Hello wor"
    assert "groq#1/small" in str(caught.value)
    assert len(world.server.log) == 1  # no other model was asked to finish the answer


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [(Reply.stream(chunks=CHUNKS, error_after=2), "error event"),
     (Reply.stream(chunks=CHUNKS, no_done=True), "without [DONE]")],
    ids=["error-event-after-content", "no-done"],
)  # fmt: skip
async def test_breaks_after_content_are_reported_not_spliced(
    world: World, router: Router, reply: Reply, fragment: str
) -> None:
    world.groq_keys[0].script(reply)
    with pytest.raises(StreamBrokenError, match="broke off") as caught:
        await collect(router)
    assert fragment in caught.value.attempts[-1].reason
    assert len(world.server.log) == 1


async def test_a_broken_stream_cools_the_candidate_down(world: World, router: Router) -> None:
    world.groq_keys[0].default = Reply.stream(chunks=CHUNKS, cut_after=1)
    with pytest.raises(StreamBrokenError):
        await collect(router, task="groq:small")
    assert any(c.kind == "unavailable" for c in router.store.snapshot(0).cooldowns)


def test_usage_from_the_final_chunk_or_groqs_x_groq() -> None:
    from llmroute.attempt import Usage
    from llmroute.sse import usage_of

    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    assert usage_of({"choices": [], "usage": usage}) == Usage(5, 7)
    assert usage_of({"choices": [{}], "x_groq": {"id": "x", "usage": usage}}) == Usage(5, 7)
    assert usage_of({"choices": [{}]}) is None


async def test_streams_give_their_connection_back(world: World, router: Router) -> None:
    """A stream read to [DONE] is drained, so the next request reuses the connection."""
    httpd = world.server._httpd  # the fake's HTTP server: count the connections it accepts
    accepted: list[object] = []
    serve = httpd.process_request

    def counting(request: object, address: object) -> None:
        accepted.append(address)
        serve(request, address)

    httpd.process_request = counting  # type: ignore[method-assign]
    for key in world.groq_keys:
        key.default = Reply.stream(chunks=CHUNKS)
    for _ in range(6):  # two rounds of the three keys
        await collect(router)
    assert len(accepted) == 1  # one client under all keys, one pooled connection
