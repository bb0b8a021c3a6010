"""The router against the fake provider over real HTTP, through the real openai SDK."""

from __future__ import annotations

import json
import time

import pytest

from llmroute.config import parse_config
from llmroute.cooldowns import key_model_scope
from llmroute.errors import RequestFailedError, RequestRejectedError
from llmroute.router import Router
from tests.fakeprovider import FakeServer, Reply
from tests.world import ShiftedClock, World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer) -> World:
    return make_world(fake_server)


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def router(world: World, clock: ShiftedClock):
    async with Router(parse_config(world.config), env=world.env, clock=clock) as r:
        yield r


def upstream_calls(world: World, key_index: int) -> int:
    return len(world.server.calls(provider="groq", key=world.groq_keys[key_index]))


async def test_429_on_key_1_then_key_2_answers_and_key_1_rests(world, router, clock) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=2.0))
    result = await router.complete("fast", "hello")
    assert result.candidate.key.alias == "groq#2"
    assert result.content == "echo: hello"
    for _ in range(5):
        await router.complete("fast", "hello")
    assert upstream_calls(world, 0) == 1
    clock.offset += 3  # past the reset the provider gave
    for _ in range(3):
        await router.complete("fast", "hello")
    assert upstream_calls(world, 0) == 2


async def test_retry_after_30_is_honoured(world, router, clock) -> None:
    world.groq_keys[0].script(Reply.error(429, {"error": {"code": "rate_limit_exceeded"}},
                                          {"retry-after": "30"}))  # fmt: skip
    await router.complete("fast", "hello")
    (cooldown,) = router.store.snapshot(clock.now()).cooldowns
    assert cooldown.until - clock.now() == pytest.approx(30, abs=1)
    clock.offset += 29
    for _ in range(3):
        await router.complete("fast", "hello")
    assert upstream_calls(world, 0) == 1
    clock.offset += 2
    for _ in range(3):
        await router.complete("fast", "hello")
    assert upstream_calls(world, 0) == 2


async def test_401_disables_the_key_and_never_leaks_it(world, router, clock, caplog) -> None:
    world.groq_keys[0].script(Reply.unauthorized())
    result = await router.complete("fast", "hello")
    assert result.attempts[0].outcome == "auth"
    assert_no_secret(result.attempts[0].reason, repr(result), caplog.text)
    clock.offset += 7 * 86400
    for _ in range(6):
        await router.complete("fast", "hello")
    assert upstream_calls(world, 0) == 1


async def test_503_moves_to_the_next_key_and_repeated_503s_open_the_circuit(
    world, router, clock
) -> None:
    world.groq_keys[0].default = Reply.server_error(503)
    result = await router.complete("other", "hello")
    assert [a.outcome for a in result.attempts] == ["unavailable", "ok"]
    for _ in range(3):
        clock.offset += 6  # past each open period: the circuit lets one call through
        await router.complete("other", "hello")
        await router.complete("other", "hello")
        await router.complete("other", "hello")
    # Calls at 0 s, 6 s (circuit 5 s), 18 s (10 s): at 12 s the 10 s circuit was still open.
    assert upstream_calls(world, 0) == 3
    assert router.store.note_failure(key_model_scope(result.attempts[0].candidate)) == 4


async def test_refused_connection_skips_the_whole_provider(world, router) -> None:
    result = await router.complete("deadfirst", "hello")
    outcomes = [(a.candidate.key.alias, a.outcome) for a in result.attempts]
    assert outcomes[:2] == [("dead#1", "unavailable"), ("dead#2", "skipped")]
    assert result.candidate.provider == "groq"


async def test_context_length_exceeded_goes_only_to_a_larger_window(world, router) -> None:
    world.groq_keys[0].script(Reply.context_length_exceeded())
    result = await router.complete("other", "a very long prompt")
    # groq#2 and groq#3 serve the same 8k model: skipped; backup declares 128k.
    assert [a.outcome for a in result.attempts] == ["context_too_long", "skipped", "skipped", "ok"]
    assert len(world.server.log) == 2


async def test_context_length_exceeded_with_no_larger_window_costs_one_call(world, router) -> None:
    world.groq_keys[0].script(Reply.context_length_exceeded())
    with pytest.raises(RequestRejectedError, match="context window"):
        await router.complete("groq:small", "a very long prompt")
    assert len(world.server.log) == 1


async def test_413_skips_only_that_candidate(world, router) -> None:
    world.groq_keys[0].script(Reply.too_large())
    result = await router.complete("fast", "hello")
    assert [a.outcome for a in result.attempts] == ["too_large", "ok"]
    assert result.candidate.key.alias == "groq#2"
    assert router.store.snapshot(time.time()).cooldowns == []


async def test_deadline_bounds_the_request_when_every_provider_stalls(world, router) -> None:
    for key in (*world.groq_keys, *world.backup.keys):
        key.default = Reply.stall(30)
    started = time.monotonic()
    with pytest.raises(RequestFailedError, match="deadline"):
        await router.complete("fast", "hello", deadline=1.0, timeout=0.4)
    assert time.monotonic() - started < 3.0  # the deadline, not 4 stalls of 30 s


async def test_pool_cursor_is_shared_across_tasks(world, router) -> None:
    aliases = [
        (await router.complete(t, "hi")).candidate.key.alias for t in ("fast", "other", "fast")
    ]
    assert aliases == ["groq#1", "groq#2", "groq#3"]


@pytest.mark.parametrize(
    "reply",
    [Reply.rate_limited(reset=5), Reply.server_error(503), Reply.server_error(500),
     Reply.reset(), Reply.cut(), Reply.malformed(), Reply.error_in_200(), Reply.timeout_408()],
    ids=["429", "503", "500", "reset", "cut", "malformed", "error-in-200", "408"],
)  # fmt: skip
async def test_one_upstream_call_per_attempt_and_the_next_candidate_answers(
    world, router, reply
) -> None:
    world.groq_keys[0].script(reply)
    result = await router.complete("fast", "hello")
    assert result.candidate.key.alias == "groq#2"
    assert result.attempts[0].outcome in {"rate_limited", "unavailable", "timeout"}
    called = [a for a in result.attempts if a.called]
    assert len(world.server.log) == len(called) == 2  # the SDK retried nothing


async def test_pinned_provider_model_still_knows_cooldowns(world, router) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=30))
    await router.complete("groq:small", "hi")
    for _ in range(4):
        await router.complete("groq:small", "hi")
    assert upstream_calls(world, 0) == 1
    assert {e.model for e in world.server.log} == {"small"}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def test_a_tools_request_gets_the_providers_tool_calls(world, router) -> None:
    """The whole provider answer travels with the result: tool calls, fingerprint, logprobs."""
    result = await router.complete("other", "weather in Paris?", tools=[WEATHER_TOOL])
    assert world.server.log[0].body["tools"] == [WEATHER_TOOL]  # type: ignore[index]
    assert result.finish_reason == "tool_calls"
    assert result.content == ""
    message = result.response["choices"][0]["message"]
    assert message["content"] is None
    (call,) = result.tool_calls
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "fake"}
    assert result.response["system_fingerprint"] == "fp_fake"
    assert result.to_dict()["tool_calls"] == [call]


async def test_logprobs_and_n_choices_come_back_as_sent(router) -> None:
    result = await router.complete("other", "hello", logprobs=True, n=2)
    choices = result.response["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert choices[0]["logprobs"]["content"][0]["logprob"] == -0.25
    assert result.content == choices[0]["message"]["content"]
    assert "tool_calls" not in result.to_dict()


async def test_a_streamed_tool_call_is_assembled_like_a_completed_one(world, router) -> None:
    stream = router.stream("other", "weather in Paris?", tools=[WEATHER_TOOL])
    chunks = [chunk.data async for chunk in stream.chunks()]
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    result = stream.result
    assert result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert json.loads(call["function"]["arguments"]) == {"city": "fake"}
    assert result.response["system_fingerprint"] == "fp_fake"
    assert result.usage is not None and result.usage.completion_tokens > 0
