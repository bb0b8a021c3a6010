"""The request loop with its seams replaced: a scripted upstream and a clock that never sleeps."""

from __future__ import annotations

import contextlib

import pytest

from llmroute.config import parse_config
from llmroute.errors import NoUsableCandidateError, RequestFailedError, RequestRejectedError
from llmroute.router import Router, Waiting
from tests.fakes import FakeClock, ScriptedUpstream
from tests.sdk import status_error

CONFIG = {
    "settings": {"default_task": "main", "deadline": 60},
    "providers": {
        "groq": {"base_url": "http://groq.test/v1", "keys": ["G1", "G2", "G3"],
                 "models": {"small": {"context_window": 8000}}},
        "big": {"base_url": "http://big.test/v1", "keys": ["B1"],
                "models": {"large": {"context_window": 128000}}},
        "google": {"base_url": "https://generativelanguage.googleapis.com/v1beta/openai/",
                   "keys": ["GEM"]},
    },
    "tasks": {
        "main": {"route": ["groq:small", "big:large"]},
        "other": {"route": ["groq:small"]},
    },
}  # fmt: skip
ENV = {
    "G1": "gsk_one_0000000000000001", "G2": "gsk_two_0000000000000002",
    "G3": "gsk_three_000000000000003", "B1": "big_key_00000000000001", "GEM": "AIza_0000000000000",
}  # fmt: skip


def router(
    upstream: ScriptedUpstream, clock: FakeClock, env: dict[str, str] = ENV, **kw: object
) -> Router:
    return Router(parse_config(CONFIG), env=env, upstream=upstream, clock=clock, **kw)  # type: ignore[arg-type]


def rate_limited(seconds: float) -> Exception:
    return status_error(
        429, {"error": {"code": "rate_limit_exceeded"}}, {"retry-after": str(seconds)}
    )


async def test_pool_rotates_and_the_cursor_is_shared_across_tasks(upstream, clock) -> None:
    r = router(upstream, clock)
    answered = [
        (await r.complete(task, "hi")).candidate.key.alias for task in ("main", "other", "main")
    ]
    assert answered == ["groq#1", "groq#2", "groq#3"]


async def test_429_moves_on_and_the_key_rests_until_its_reset(upstream, clock) -> None:
    upstream.script("groq#1", rate_limited(30))
    r = router(upstream, clock)
    first = await r.complete("main", "hi")
    assert first.candidate.key.alias == "groq#2"
    assert [a.outcome for a in first.attempts] == ["rate_limited", "ok"]
    for _ in range(4):
        await r.complete("main", "hi")
    assert upstream.calls.count(("groq#1", "small")) == 1  # not touched again within 30 s
    clock.t += 31
    await r.complete("main", "hi")
    await r.complete("main", "hi")
    assert upstream.calls.count(("groq#1", "small")) == 2


async def test_waits_for_the_earliest_reset_before_the_deadline(upstream, clock) -> None:
    for alias in ("groq#1", "groq#2", "groq#3", "big#1"):
        upstream.script(alias, rate_limited(5 if alias == "big#1" else 20))
    events: list[object] = []
    result = await router(upstream, clock, observer=events.append).complete("main", "hi")
    assert result.candidate.key.alias == "big#1"
    assert clock.slept == [5.0]
    assert result.waited_s == 5.0
    waits = [e for e in events if isinstance(e, Waiting)]
    assert len(waits) == 1 and waits[0].candidate.key.alias == "big#1"


async def test_fails_at_once_when_nothing_frees_before_the_deadline(upstream, clock) -> None:
    for alias in ("groq#1", "groq#2", "groq#3", "big#1"):
        upstream.script(alias, rate_limited(120))
    with pytest.raises(RequestFailedError) as caught:
        await router(upstream, clock).complete("main", "hi")
    assert clock.slept == []
    assert caught.value.retry_at == pytest.approx(clock.t + 120, abs=1e-6)
    assert "retry after" in str(caught.value)


async def test_bad_request_costs_one_call(upstream, clock) -> None:
    upstream.script("groq#1", status_error(400, {"error": {"message": "temperature too high"}}))
    with pytest.raises(RequestRejectedError, match="temperature too high"):
        await router(upstream, clock).complete("main", "hi")
    assert len(upstream.calls) == 1


async def test_context_too_long_tries_only_larger_windows(upstream, clock) -> None:
    upstream.script("groq#1", status_error(400, {"error": {"code": "context_length_exceeded"}}))
    result = await router(upstream, clock).complete("main", "long")
    assert result.candidate.provider == "big"
    assert [a.outcome for a in result.attempts] == ["context_too_long", "skipped", "skipped", "ok"]


async def test_context_too_long_everywhere_is_rejected(upstream, clock) -> None:
    too_long = status_error(400, {"error": {"code": "context_length_exceeded"}})
    upstream.script("groq#1", too_long)
    upstream.script("big#1", too_long)
    with pytest.raises(RequestRejectedError, match="context window"):
        await router(upstream, clock).complete("main", "long")
    assert len(upstream.calls) == 2


async def test_too_large_skips_only_that_candidate(upstream, clock) -> None:
    upstream.script("groq#1", status_error(413, {"error": {"code": "rate_limit_exceeded"}}))
    r = router(upstream, clock)
    assert (await r.complete("main", "hi")).candidate.key.alias == "groq#2"
    later = [(await r.complete("main", "hi")).candidate.key.alias for _ in range(3)]
    assert later == ["groq#2", "groq#3", "groq#1"]  # no cooldown: its next turn comes as usual


async def test_auth_disables_the_key_for_later_requests(upstream, clock) -> None:
    upstream.script("groq#1", status_error(401, {"error": {"code": "invalid_api_key"}}))
    r = router(upstream, clock)
    for _ in range(6):
        await r.complete("main", "hi")
    clock.t += 86400 * 30
    for _ in range(3):
        await r.complete("main", "hi")
    assert upstream.calls.count(("groq#1", "small")) == 1


async def test_circuit_opens_and_grows(upstream, clock) -> None:
    r = router(upstream, clock)
    upstream.script("big#1", *[status_error(503, {"error": {}})] * 10)
    calls = 0
    for _ in range(40):
        clock.t += 1
        with contextlib.suppress(RequestFailedError):
            await r.complete("big:large", "hi", deadline=0.5)
        calls = upstream.calls.count(("big#1", "large"))
    # 40 s of one request a second: calls at t=1, 6 (after 5 s), 16 (10 s), 36 (20 s).
    assert calls == 4


async def test_pinned_model_bypasses_the_route(upstream, clock) -> None:
    result = await router(upstream, clock).complete("big:large", "hi")
    assert result.candidate.provider == "big" and len(result.attempts) == 1
    with pytest.raises(Exception, match="no provider 'nope'"):
        await router(upstream, clock).complete("nope:x", "hi")


async def test_missing_keys_name_the_variables(upstream, clock) -> None:
    with pytest.raises(NoUsableCandidateError, match="set G1 or G2 or G3 \\(groq\\), B1 \\(big\\)"):
        await router(upstream, clock, env={}).complete("main", "hi")


async def test_quirks_drop_params_the_provider_rejects(upstream, clock) -> None:
    await router(upstream, clock).complete(
        "google:gemini", "hi", response_format={"type": "json"}, temperature=0
    )
    assert upstream.params[-1] == {"temperature": 0}
