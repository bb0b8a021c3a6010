"""The fake provider, driven through the real openai SDK over real HTTP.

Besides checking the fake, these tests pin down how the SDK surfaces each fault (which
exception, what `err.body` holds), which is what llmroute's own tests rely on.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from tests.fakeprovider import (
    FakeProvider,
    FakeServer,
    RefillBucket,
    Reply,
    SlidingWindow,
    Stream,
    go_duration,
    prompt_tokens,
    request_cost,
)
from tests.fakeprovider.dialects import DIALECTS, Breach, Context, Limits

MODEL = "llama-3.1-8b-instant"
KEY = "gsk_fake1_abcdefghijklmnop"
MESSAGES: list[Any] = [{"role": "user", "content": "hello there!"}]  # 12 chars: 3 tokens


@contextmanager
def client(base: FakeProvider | str, key: str = KEY, timeout: float = 5.0) -> Iterator[Any]:
    url = base if isinstance(base, str) else base.base_url
    with openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=timeout) as c:
        yield c


def chat(c: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", MESSAGES)
    return c.chat.completions.create(**kwargs)


def provider_with_key(server: FakeServer, dialect: str = "openai", name: str = "p") -> Any:
    provider = server.provider(name, dialect=dialect, models=[MODEL])
    return provider, provider.key(KEY)


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def raw_post(provider: FakeProvider, body: dict[str, Any], key: str = KEY) -> tuple[int, bytes]:
    """POST with the stdlib, to see bytes the SDK hides (like `data: [DONE]`)."""
    url = urlsplit(provider.base_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    try:
        conn.request(
            "POST",
            f"{url.path}/chat/completions",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def body(err: openai.APIStatusError) -> Any:
    """err.body, typed loosely: the SDK gives the inner `error` object, a list or a text."""
    return err.body


def rate_limit_error(provider: FakeProvider, key: str = KEY) -> openai.RateLimitError:
    with client(provider, key) as c, pytest.raises(openai.RateLimitError) as info:
        chat(c)
    return info.value


# -- plain success ---------------------------------------------------------------------------


def test_ok_reply_echoes_and_counts_usage(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server, "groq")
    with client(provider) as c:
        raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    completion = raw.parse()
    assert completion.model == MODEL
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "echo: hello there!"
    assert completion.choices[0].finish_reason == "stop"
    # prompt: ceil(12 / 4) = 3; completion: ceil(len("echo: hello there!") / 4) = ceil(18 / 4)
    assert completion.usage is not None
    assert completion.usage.model_dump(include={"prompt_tokens", "completion_tokens"}) == {
        "prompt_tokens": 3,
        "completion_tokens": 5,
    }
    assert completion.usage.total_tokens == 8
    # Every response carries the dialect's rate-limit headers, made up when no limit is set.
    assert raw.headers["x-ratelimit-limit-requests"] == "14400"
    assert raw.headers["x-ratelimit-remaining-tokens"].isdigit()


def test_scripted_replies_are_consumed_in_order_then_default(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    assert provider.key(KEY) is key  # same secret, same FakeKey
    key.script(
        Reply.ok("one", usage={"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}),
        Reply.ok("two", finish_reason="length", headers={"x-custom": "yes"}),
    )
    key.default = Reply.ok("fallback")
    with client(provider) as c:
        first = chat(c)
        second = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        third, fourth = chat(c), chat(c)
    assert first.choices[0].message.content == "one"
    assert first.usage.prompt_tokens == 7
    assert second.parse().choices[0].finish_reason == "length"
    assert second.headers["x-custom"] == "yes"
    assert [third.choices[0].message.content, fourth.choices[0].message.content] == [
        "fallback",
        "fallback",
    ]
    assert key.pending == 0


def test_models_list_and_bad_key(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    with client(provider) as c:
        models = c.models.list()
    assert [(m.id, m.object, m.owned_by) for m in models.data] == [(MODEL, "model", "p")]
    with client(provider, key="sk-wrong") as c, pytest.raises(openai.AuthenticationError):
        c.models.list()


def test_unknown_model_is_404_model_not_found(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    with client(provider) as c, pytest.raises(openai.NotFoundError) as info:
        chat(c, model="gpt-9")
    assert info.value.body == {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "code": "model_not_found",
    }
    # models=None accepts anything
    anything = fake_server.provider("any")
    anything.key(KEY)
    with client(anything) as c:
        assert chat(c, model="whatever/model:free").model == "whatever/model:free"


@pytest.mark.parametrize(
    "dialect", ["openai", "groq", "cerebras", "openrouter", "gemini", "llamacpp"]
)
def test_unknown_key_is_401_and_echoes_the_key(fake_server: FakeServer, dialect: str) -> None:
    provider, _ = provider_with_key(fake_server, dialect)
    secret = "sk-not-registered-0123456789"
    with client(provider, key=secret) as c, pytest.raises(openai.AuthenticationError) as info:
        chat(c)
    assert secret in json.dumps(info.value.body)
    assert fake_server.calls(key=secret)[0].outcome == "unauthorized"


def test_gemini_invalid_key_is_a_400_list(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "gemini")
    key.script(Reply.gemini_invalid_key())
    with client(provider) as c, pytest.raises(openai.BadRequestError) as info:
        chat(c)
    body = info.value.body  # a list body is passed through as is
    assert isinstance(body, list)
    assert body[0]["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert body[0]["error"]["status"] == "INVALID_ARGUMENT"


# -- rate limits in each dialect -------------------------------------------------------------


def test_rate_limited_openai(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openai")
    key.script(Reply.rate_limited(reset=20.0))
    err = rate_limit_error(provider)
    assert body(err)["type"] == "requests"
    assert body(err)["code"] == "rate_limit_exceeded"
    assert body(err)["param"] is None
    assert "on requests per min (RPM): Limit 3, Used 3, Requested 1." in body(err)["message"]
    assert body(err)["message"].endswith("Please try again in 20s.")
    headers = err.response.headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("20000", "20")
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "20s"
    assert "x-ratelimit-reset-tokens" in headers


def test_rate_limited_groq(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "groq")
    key.script(Reply.rate_limited(reset=1.2))
    err = rate_limit_error(provider)
    assert err.body == {
        "message": f"Rate limit reached for model `{MODEL}` in organization `org_x` service "
        "tier `on_demand` on requests per minute (RPM): Limit 30, Used 30, Requested 1. "
        "Please try again in 1.2s.",
        "type": "requests",
        "code": "rate_limit_exceeded",
    }
    assert err.response.headers["retry-after"] == "2"  # whole seconds, rounded up
    # -requests is Groq's per-day window: a per-minute 429 does not zero it.
    assert err.response.headers["x-ratelimit-remaining-requests"] == "14399"


def test_rate_limited_cerebras_has_no_error_wrapper(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "cerebras")
    key.script(Reply.rate_limited(reset=2.5))
    err = rate_limit_error(provider)
    assert err.body == {
        "message": "Requests per minute limit exceeded - too many requests sent.",
        "type": "too_many_requests_error",
        "param": "quota",
        "code": "request_quota_exceeded",
    }
    headers = err.response.headers
    assert headers["x-ratelimit-remaining-requests-minute"] == "0"
    assert float(headers["x-ratelimit-reset-requests-minute"]) == 2.5
    assert float(headers["x-ratelimit-reset-requests-day"]) > 0
    assert "x-ratelimit-remaining-tokens-minute" in headers


def test_rate_limited_openrouter_resets_in_epoch_ms(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openrouter")
    key.script(Reply.rate_limited(reset=30.0))
    before = time.time()
    err = rate_limit_error(provider)
    assert body(err)["message"] == "Rate limit exceeded: free-models-per-min. "
    assert body(err)["code"] == 429
    meta = body(err)["metadata"]["headers"]
    reset_s = int(meta["X-RateLimit-Reset"]) / 1000
    assert before + 29 < reset_s < time.time() + 31
    assert meta["X-RateLimit-Remaining"] == "0"
    assert err.response.headers["X-RateLimit-Reset"] == meta["X-RateLimit-Reset"]
    assert err.response.headers["X-RateLimit-Remaining"] == "0"


def test_rate_limited_gemini_is_a_list_with_retry_info(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "gemini")
    key.script(Reply.rate_limited(reset=19.4))
    err = rate_limit_error(provider)
    assert isinstance(err.body, list)
    error = body(err)[0]["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    quota, _help, retry = error["details"]
    assert quota["violations"][0]["quotaId"] == (
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    assert quota["violations"][0]["quotaDimensions"]["model"] == MODEL
    assert retry == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "19s"}
    assert not any(h.lower().startswith("x-ratelimit") for h in err.response.headers)


def test_rate_limited_llamacpp(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "llamacpp")
    key.script(Reply.rate_limited(reset=1.0))
    err = rate_limit_error(provider)
    assert body(err)["code"] == 429
    assert not any(h.lower().startswith("x-ratelimit") for h in err.response.headers)


@pytest.mark.parametrize("dialect", ["openai", "groq", "cerebras", "openrouter", "gemini"])
def test_rate_limited_without_reset_says_nothing_about_when(
    fake_server: FakeServer, dialect: str
) -> None:
    provider, key = provider_with_key(fake_server, dialect)
    key.script(Reply.rate_limited())
    err = rate_limit_error(provider)
    assert not [h for h in err.response.headers if "reset" in h.lower() or "retry" in h.lower()]
    text = json.dumps(body(err))
    assert "try again" not in text and "RetryInfo" not in text and "Reset" not in text
    assert any(h.lower().startswith("x-ratelimit") for h in err.response.headers) == (
        dialect != "gemini"
    )


@pytest.mark.parametrize("dialect", ["openai", "gemini"])
def test_rate_limited_headers_only(fake_server: FakeServer, dialect: str) -> None:
    provider, key = provider_with_key(fake_server, dialect)
    key.script(Reply.rate_limited(reset=4.2, headers_only=True))
    err = rate_limit_error(provider)
    assert err.body == ""  # the SDK keeps the (empty) text when the body isn't JSON
    assert err.response.headers["retry-after"] == "5"


# -- daily quotas ----------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["openai", "groq"])
def test_quota_exhausted_openai_style(fake_server: FakeServer, dialect: str) -> None:
    provider, key = provider_with_key(fake_server, dialect)
    key.script(Reply.quota_exhausted(reset=3600.0))
    err = rate_limit_error(provider)
    assert (body(err)["type"], body(err)["code"]) == ("insufficient_quota", "insufficient_quota")
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.response.headers["x-ratelimit-reset-requests"] == "1h0m0s"


def test_quota_exhausted_openrouter_defaults_to_utc_midnight(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openrouter")
    key.script(Reply.quota_exhausted())
    err = rate_limit_error(provider)
    assert body(err)["message"].startswith("Rate limit exceeded: free-models-per-day. ")
    meta = body(err)["metadata"]["headers"]
    assert (meta["X-RateLimit-Limit"], meta["X-RateLimit-Remaining"]) == ("50", "0")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    expected_ms = int((midnight + timedelta(days=1)).timestamp() * 1000)
    assert abs(int(meta["X-RateLimit-Reset"]) - expected_ms) <= 1000


def test_quota_exhausted_gemini_and_cerebras(fake_server: FakeServer) -> None:
    gemini, gkey = provider_with_key(fake_server, "gemini", name="g")
    cerebras, ckey = provider_with_key(fake_server, "cerebras", name="c")
    gkey.script(Reply.quota_exhausted(reset=42.0))
    ckey.script(Reply.quota_exhausted(reset=42.0))
    details = body(rate_limit_error(gemini))[0]["error"]["details"]
    assert details[0]["violations"][0]["quotaId"] == (
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    )
    assert details[-1]["retryDelay"] == "42s"
    headers = rate_limit_error(cerebras).response.headers
    assert headers["x-ratelimit-remaining-requests-day"] == "0"
    assert float(headers["x-ratelimit-reset-requests-day"]) == 42.0


# -- sliding windows -------------------------------------------------------------------------


def test_request_window_refuses_then_frees(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openai")
    key.limit(requests=3, per=0.6)
    key.script(Reply.ok("a"), Reply.ok("b"), Reply.ok("c"), Reply.ok("d"))
    with client(provider) as c:
        first = time.monotonic()
        remaining = [
            c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES).headers[
                "x-ratelimit-remaining-requests"
            ]
            for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]
        with pytest.raises(openai.RateLimitError) as info:
            chat(c)
        err = info.value
        assert "Limit 3, Used 3, Requested 1" in body(err)["message"]
        retry_ms = int(err.response.headers["retry-after-ms"])
        assert 0 < retry_ms <= 600
        assert err.response.headers["x-ratelimit-limit-requests"] == "3"

        # The refused request did not eat "d"; it is served once the oldest request expires.
        def admitted() -> bool:
            try:
                return bool(chat(c).choices[0].message.content == "d")
            except openai.RateLimitError:
                return False

        wait_until(admitted, timeout=2.0)
        freed_after = time.monotonic() - first
    assert 0.55 <= freed_after < 1.2
    outcomes = [e.outcome for e in fake_server.calls(provider="p")]
    assert outcomes[:4] == ["ok", "ok", "ok", "rate_limited"]
    assert outcomes[-1] == "ok"


def test_refill_bucket_refuses_without_counting_and_reports_time_to_full(
    fake_server: FakeServer,
) -> None:
    provider, key = provider_with_key(fake_server, "openai")
    key.limit(requests=2, per=60.0, refill=True)  # one request refills every 30 s
    with client(provider) as c:
        first = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        chat(c)
        refused = [rate_limit_error(provider) for _ in range(2)]
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert 29.0 < go_seconds(first.headers["x-ratelimit-reset-requests"]) <= 30.0
    for err in refused:  # the second refusal did not drain the bucket further
        headers = err.response.headers
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert 59.0 < go_seconds(headers["x-ratelimit-reset-requests"]) <= 60.0  # until full
        assert 29_000 < int(headers["retry-after-ms"]) <= 30_000  # until one fits
    assert [e.outcome for e in fake_server.calls(provider="p")] == [
        "ok",
        "ok",
        "rate_limited",
        "rate_limited",
    ]


def test_token_window_counts_prompt_and_max_tokens(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "groq")
    key.limit(tokens=50, per=1.0)
    messages = [{"role": "user", "content": "x" * 40}]  # 10 prompt tokens
    assert request_cost({"messages": messages, "max_tokens": 10}, "ignored") == 20
    with client(provider) as c:
        ok = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, max_tokens=10
        )
        assert ok.headers["x-ratelimit-remaining-tokens"] == "30"
        chat(c, messages=messages, max_tokens=10)
        with pytest.raises(openai.RateLimitError) as info:
            chat(c, messages=messages, max_tokens=10)
    err = info.value
    assert body(err)["type"] == "tokens"
    assert "tokens per minute (TPM): Limit 50, Used 40, Requested 20" in body(err)["message"]
    assert err.response.headers["retry-after"] == "1"


def test_token_window_without_max_tokens_charges_the_completion(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openai")
    key.limit(tokens=100, per=5.0)
    key.default = Reply.ok("y" * 80)  # 20 completion tokens
    with client(provider) as c:
        raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.headers["x-ratelimit-remaining-tokens"] == str(100 - 3 - 20)


@pytest.mark.parametrize("dialect", ["groq", "cerebras", "openrouter", "gemini"])
def test_window_429_reports_the_window_reset(fake_server: FakeServer, dialect: str) -> None:
    provider, key = provider_with_key(fake_server, dialect)
    key.limit(requests=1, per=0.8)
    with client(provider) as c:
        chat(c)
        started = time.time()
        with pytest.raises(openai.RateLimitError) as info:
            chat(c)
    headers, err_body = info.value.response.headers, body(info.value)
    if dialect == "groq":
        assert headers["retry-after"] == "1"
        assert headers["x-ratelimit-remaining-requests"] == "0"  # the configured window
        assert "Limit 1, Used 1, Requested 1" in err_body["message"]
    elif dialect == "cerebras":
        assert 0 < float(headers["x-ratelimit-reset-requests-minute"]) <= 0.8
        assert headers["x-ratelimit-remaining-requests-minute"] == "0"
        assert headers["x-ratelimit-remaining-requests-day"] != "0"  # not a daily cap
    elif dialect == "openrouter":
        reset_ms = int(err_body["metadata"]["headers"]["X-RateLimit-Reset"])
        assert started * 1000 < reset_ms <= (started + 0.8) * 1000 + 50
        assert headers["X-RateLimit-Reset"] == str(reset_ms)
    else:
        assert err_body[0]["error"]["details"][-1]["retryDelay"] in {"0s", "1s"}


def test_limit_headers_per_dialect(fake_server: FakeServer) -> None:
    cerebras, ckey = provider_with_key(fake_server, "cerebras", name="c")
    openrouter, okey = provider_with_key(fake_server, "openrouter", name="o")
    ckey.limit(requests=5, per=60.0)
    ckey.limit(tokens=1000, per=60.0)
    okey.limit(requests=20, per=60.0)
    with client(cerebras) as c:
        headers = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES
        ).headers
    assert headers["x-ratelimit-limit-requests-minute"] == "5"
    assert headers["x-ratelimit-remaining-requests-minute"] == "4"
    assert headers["x-ratelimit-remaining-requests-day"] == "14399"  # the day stays fixed
    assert headers["x-ratelimit-limit-tokens-minute"] == "1000"
    assert 59.0 < float(headers["x-ratelimit-reset-tokens-minute"]) <= 60.0
    with client(openrouter) as c:
        before = time.time()
        headers = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES
        ).headers
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("20", "19")
    assert before + 59 < int(headers["X-RateLimit-Reset"]) / 1000 < time.time() + 61


# -- other scripted errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "dialect", "error_type", "status", "check"),
    [
        (Reply.too_large(), "groq", openai.APIStatusError, 413, "Limit 6000, Requested 9000"),
        (Reply.unauthorized(), "groq", openai.AuthenticationError, 401, KEY),
        (Reply.forbidden(), "openai", openai.PermissionDeniedError, 403, "permission_denied"),
        (Reply.not_found(), "openai", openai.NotFoundError, 404, "model_not_found"),
        (Reply.gone(), "openai", openai.APIStatusError, 410, "model_decommissioned"),
        (Reply.context_length_exceeded(), "openai", openai.BadRequestError, 400, "8192"),
        (Reply.context_length_exceeded(), "llamacpp", openai.BadRequestError, 400, "n_ctx"),
        (Reply.bad_request(), "openai", openai.BadRequestError, 400, "temperature"),
        (Reply.unprocessable(), "openai", openai.UnprocessableEntityError, 422, "422"),
        (Reply.server_error(), "openai", openai.InternalServerError, 503, "Service Unavailable"),
        (Reply.server_error(500), "groq", openai.InternalServerError, 500, "server_error"),
        (Reply.server_error(502), "cerebras", openai.InternalServerError, 502, "Bad Gateway"),
        (Reply.server_error(529), "openrouter", openai.InternalServerError, 529, "Overloaded"),
        (Reply.server_error(498), "groq", openai.APIStatusError, 498, "server_error"),
        (Reply.timeout_408(), "openai", openai.APIStatusError, 408, "timeout"),
        (Reply.error(418, "<html>teapot</html>"), "openai", openai.APIStatusError, 418, "teapot"),
    ],
)
def test_scripted_error_replies(
    fake_server: FakeServer,
    reply: Reply,
    dialect: str,
    error_type: type[openai.APIStatusError],
    status: int,
    check: str,
) -> None:
    provider, key = provider_with_key(fake_server, dialect)
    key.script(reply)
    with client(provider) as c, pytest.raises(error_type) as info:
        chat(c)
    assert info.value.status_code == status
    assert check in json.dumps(info.value.body) or check in str(info.value.status_code)
    assert fake_server.log[0].status == status
    assert fake_server.log[0].outcome == reply.outcome


def test_context_length_bodies(fake_server: FakeServer) -> None:
    openai_p, okey = provider_with_key(fake_server, "openai", name="o")
    llama, lkey = provider_with_key(fake_server, "llamacpp", name="l")
    okey.script(Reply.context_length_exceeded())
    lkey.script(Reply.context_length_exceeded())
    with client(openai_p) as c, pytest.raises(openai.BadRequestError) as info:
        chat(c)
    assert body(info.value)["code"] == "context_length_exceeded"
    assert body(info.value)["param"] == "messages"
    with client(llama) as c, pytest.raises(openai.BadRequestError) as info:
        chat(c)
    assert info.value.body == {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 9000,
        "n_ctx": 8192,
    }


# -- faults on the wire, and what the SDK makes of them --------------------------------------


def test_stall_then_ok_and_stall_beyond_the_client_timeout(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.stall(0.2), Reply.stall(30.0))
    with client(provider, timeout=2.0) as c:
        started = time.monotonic()
        assert chat(c).choices[0].message.content.startswith("echo:")
        assert time.monotonic() - started >= 0.2
    with client(provider, timeout=0.2) as c, pytest.raises(openai.APITimeoutError):
        chat(c)
    assert [e.outcome for e in fake_server.log] == ["stall", "stall"]
    # The fixture's stop() must now cut the 30 s stall short (see the next test for timing).


def test_stop_is_prompt_with_stalled_handlers() -> None:
    server = FakeServer().start()
    provider, key = provider_with_key(server)
    key.default = Reply.stall(30.0)
    errors: list[BaseException] = []

    def waiting_client() -> None:
        with client(provider, timeout=10.0) as c:
            try:
                chat(c)
            except openai.APIError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=waiting_client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(server.log) == 3)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 0.5
    finally:
        server.stop()  # idempotent
        for thread in threads:
            thread.join(5)
    # Clients blocked on a stalled reply see the connection drop, not a 10 s timeout.
    assert [type(e) for e in errors] == [openai.APIConnectionError] * 3


def test_reset_is_a_connection_error(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.reset())
    with client(provider) as c, pytest.raises(openai.APIConnectionError) as info:
        chat(c)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert "reset by peer" in str(info.value.__cause__)
    assert fake_server.log[0].status == 0


def test_cut_body_is_a_connection_error(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.cut())
    with client(provider) as c, pytest.raises(openai.APIConnectionError) as info:
        chat(c)
    assert "incomplete" in str(info.value.__cause__) or "complete" in str(info.value.__cause__)


def test_malformed_json_raises_a_bare_json_decode_error(fake_server: FakeServer) -> None:
    """The SDK does NOT wrap invalid JSON in an openai error: json.JSONDecodeError escapes
    (a ValueError subclass), so the router must catch it itself."""
    provider, key = provider_with_key(fake_server)
    key.script(Reply.malformed())
    with client(provider) as c, pytest.raises(json.JSONDecodeError) as info:
        chat(c)
    assert not isinstance(info.value, openai.OpenAIError)


def test_error_in_200_is_returned_not_raised(fake_server: FakeServer) -> None:
    """The SDK returns a ChatCompletion with choices=None and the error in model_extra."""
    provider, key = provider_with_key(fake_server, "openrouter")
    key.script(Reply.error_in_200())
    with client(provider) as c:
        completion = chat(c)
    assert completion.choices is None
    assert completion.model_extra == {
        "error": {"message": "Upstream error from provider", "code": 502}
    }


def test_refused_base_url_is_a_connection_error(fake_server: FakeServer) -> None:
    url = fake_server.refused_base_url()
    with client(url) as c, pytest.raises(openai.APIConnectionError) as info:
        chat(c)
    assert not isinstance(info.value, openai.APITimeoutError)


def test_provider_latency_delays_every_reply(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    provider.latency = 0.15
    key.script(Reply.ok(latency=0.1), Reply.rate_limited(reset=1.0))
    with client(provider) as c:
        started = time.monotonic()
        chat(c)
        assert time.monotonic() - started >= 0.25
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            chat(c)
        assert time.monotonic() - started >= 0.15


# -- streaming -------------------------------------------------------------------------------


def test_stream_chunks_in_order_with_usage(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openai")
    key.script(Reply.stream(chunks=["Hel", "lo", " world"]))
    with client(provider) as c:
        chunks = list(
            chat(c, stream=True, stream_options={"include_usage": True}),
        )
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [ch.choices[0].delta.content for ch in chunks[1:] if ch.choices]
    assert texts == ["Hel", "lo", " world", None]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 3)
    assert fake_server.log[0].stream is True


def test_stream_wire_format_ends_with_done(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server, "openai")
    key.script(Reply.stream(chunks=["a", "b"]), Reply.stream(chunks=["a"], no_done=True))
    status, body = raw_post(provider, {"model": MODEL, "messages": MESSAGES, "stream": True})
    assert status == 200
    events = [e for e in body.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert len(events) == 1 + 2 + 1 + 1  # role, two chunks, finish, [DONE] (no usage asked)
    _, body = raw_post(provider, {"model": MODEL, "messages": MESSAGES, "stream": True})
    assert b"[DONE]" not in body
    assert body.endswith(b"\n\n")


def test_stream_no_done_ends_cleanly_in_the_sdk(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.stream(chunks=["x", "y"], no_done=True))
    with client(provider) as c:
        chunks = list(chat(c, stream=True))
    assert [ch.choices[0].delta.content for ch in chunks] == ["", "x", "y", None]


def test_ok_reply_to_a_streaming_request_is_one_chunk(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.ok("whole answer"))
    with client(provider) as c:
        chunks = list(chat(c, stream=True))
    assert [ch.choices[0].delta.content for ch in chunks] == ["", "whole answer", None]


def test_stream_reply_to_a_plain_request_is_one_body(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.ok(stream=Stream(chunks=["a", "b", "c"])))
    with client(provider) as c:
        assert chat(c).choices[0].message.content == "abc"


def test_groq_stream_always_reports_usage_in_x_groq(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server, "groq")
    with client(provider) as c:
        chunks = list(chat(c, stream=True))
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra is not None
    assert last.model_extra["x_groq"]["usage"]["prompt_tokens"] == 3


def test_stream_cut_after_yields_exactly_n_chunks_then_fails(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.stream(chunks=["a", "b", "c", "d"], cut_after=2))
    received: list[str | None] = []
    with client(provider) as c, pytest.raises(openai.APIConnectionError) as info:
        for chunk in chat(c, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "a", "b"]  # the role chunk, then exactly 2 content chunks
    assert "incomplete chunked read" in str(info.value.__cause__)


def test_stream_error_after(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.stream(chunks=["a", "b", "c"], error_after=1))
    received: list[str | None] = []
    with client(provider) as c, pytest.raises(openai.APIError) as info:
        for chunk in chat(c, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "a"]
    assert info.value.message == "Internal error during generation"
    assert info.value.body == {
        "message": "Internal error during generation",
        "type": "server_error",
        "code": "internal_error",
    }


def test_stream_stall_after_times_out_mid_stream(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.stream(chunks=["a", "b"], stall_after=1, stall_seconds=30.0))
    received: list[str | None] = []
    with client(provider, timeout=0.3) as c, pytest.raises(openai.APITimeoutError):
        for chunk in chat(c, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "a"]


def test_stream_delay_spaces_chunks(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.stream(chunks=["a", "b", "c"], delay=0.05))
    with client(provider) as c:
        arrivals = [time.monotonic() for _ in chat(c, stream=True)]
    assert arrivals[3] - arrivals[0] >= 0.14


# -- tool calls, logprobs, n -----------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time"}}  # no parameters at all
TOOLS: list[Any] = [WEATHER, CLOCK]


def async_client(provider: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.base_url, api_key=KEY, max_retries=0, timeout=5.0)


def test_default_answer_calls_the_first_tool(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    with client(provider) as c:
        completion = chat(c, tools=TOOLS)
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    # Every parameter gets a sample of its type (an enum its first value).
    assert json.loads(call.function.arguments) == {"city": "fake", "unit": "c"}
    # A call's completion tokens are its name's and arguments' characters / 4.
    charged = len("get_weather" + call.function.arguments)
    assert completion.usage.completion_tokens == math.ceil(charged / 4)
    assert completion.system_fingerprint == "fp_fake"
    assert fake_server.log[0].outcome == "ok"


@pytest.mark.parametrize(
    ("tool_choice", "name", "arguments"),
    [
        ({"type": "function", "function": {"name": "get_time"}}, "get_time", {}),
        ("required", "get_weather", {"city": "fake", "unit": "c"}),
        ("none", None, None),
    ],
)
def test_tool_choice_picks_or_refuses_the_call(
    fake_server: FakeServer, tool_choice: Any, name: str | None, arguments: Any
) -> None:
    provider, _ = provider_with_key(fake_server)
    with client(provider) as c:
        message = chat(c, tools=TOOLS, tool_choice=tool_choice).choices[0].message
    if name is None:
        assert (message.content, message.tool_calls) == ("echo: hello there!", None)
        return
    assert message.tool_calls[0].function.name == name
    assert json.loads(message.tool_calls[0].function.arguments) == arguments


def test_scripted_tool_call_on_one_key(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    # A scripted call is made even to a request without tools; explicit text beats the tools.
    key.script(Reply.tool_calls(name="lookup", arguments={"q": "x"}), Reply.ok("plain"))

    async def main() -> list[Any]:
        async with async_client(provider) as c:
            return [
                await c.chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS)
                for _ in range(2)
            ]

    called, texted = asyncio.run(main())
    assert called.choices[0].finish_reason == "tool_calls"
    function = called.choices[0].message.tool_calls[0].function
    assert (function.name, function.arguments) == ("lookup", '{"q": "x"}')
    assert (texted.choices[0].message.content, texted.choices[0].message.tool_calls) == (
        "plain",
        None,
    )


def test_streamed_tool_call_reassembles(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.tool_calls(arguments={"city": "Paris", "days": 3}))

    async def main() -> list[Any]:
        async with async_client(provider) as c:
            stream = await c.chat.completions.create(
                model=MODEL,
                messages=MESSAGES,
                tools=TOOLS,
                stream=True,
                stream_options={"include_usage": True},
            )
            return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    first, *pieces, final, usage = chunks
    opening = first.choices[0].delta
    assert (opening.role, opening.content) == ("assistant", None)
    call = opening.tool_calls[0]
    assert (call.index, call.type, call.function.name) == (0, "function", "get_weather")
    assert call.id.startswith("call_") and call.function.arguments == ""
    assert len(pieces) > 1
    assert all(p.choices[0].delta.tool_calls[0].index == 0 for p in pieces)
    arguments = "".join(p.choices[0].delta.tool_calls[0].function.arguments for p in pieces)
    assert json.loads(arguments) == {"city": "Paris", "days": 3}
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.choices[0].delta.tool_calls is None
    assert usage.choices == [] and usage.usage is not None
    assert {ch.system_fingerprint for ch in chunks} == {"fp_fake"}


def test_streamed_tool_call_wire_format(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    request = {"model": MODEL, "messages": MESSAGES, "tools": [CLOCK], "stream": True}
    _, body = raw_post(provider, request)
    events = [e.removeprefix("data: ") for e in body.decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    opening, piece, final = (json.loads(e)["choices"][0] for e in events[:-1])
    call_id = opening["delta"]["tool_calls"][0]["id"]
    assert opening["delta"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": call_id,
                "type": "function",
                "function": {"name": "get_time", "arguments": ""},
            }
        ],
    }
    assert piece["delta"] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    assert (final["delta"], final["finish_reason"]) == ({}, "tool_calls")


def test_cut_tool_call_stream_breaks_after_the_arguments(fake_server: FakeServer) -> None:
    provider, key = provider_with_key(fake_server)
    key.script(Reply.cut(then=Reply.tool_calls("lookup", '{"q": "x"}')))
    received: list[Any] = []
    with client(provider) as c, pytest.raises(openai.APIConnectionError):
        for chunk in chat(c, stream=True):
            received.append(chunk.choices[0].delta.tool_calls[0].function)
    assert [(f.name, f.arguments) for f in received] == [("lookup", ""), (None, '{"q": "x"}')]


def test_logprobs_only_when_asked(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    with client(provider) as c:
        plain, asked = chat(c), chat(c, logprobs=True)
    assert plain.choices[0].logprobs is None
    logprobs = asked.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    tokens = logprobs.content
    assert "".join(t.token for t in tokens) == asked.choices[0].message.content
    assert len(tokens) == asked.usage.completion_tokens  # one entry per counted token
    assert tokens[0].bytes == list(b"echo")
    assert all(t.logprob <= 0 and t.top_logprobs == [] for t in tokens)


def test_n_returns_n_choices(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    with client(provider) as c:
        completion = chat(c, n=3)
        streamed = list(chat(c, n=3, stream=True))
    assert [ch.index for ch in completion.choices] == [0, 1, 2]
    assert {ch.message.content for ch in completion.choices} == {"echo: hello there!"}
    assert completion.usage.completion_tokens == 3 * 5  # every choice is counted
    assert {ch.choices[0].index for ch in streamed} == {0}  # n is not honoured when streamed


# -- the request log -------------------------------------------------------------------------


def test_request_log_records_each_request_in_order(fake_server: FakeServer) -> None:
    groq = fake_server.provider("groq", dialect="groq", models=[MODEL, "llama-3.3-70b-versatile"])
    k1, k2 = groq.key("gsk_one"), groq.key("gsk_two")
    other = fake_server.provider("other")
    other.key("sk-other")
    k1.script(Reply.rate_limited(reset=1.0))
    with client(groq, key="gsk_one") as c:
        with pytest.raises(openai.RateLimitError):
            chat(c)
        chat(c, model="llama-3.3-70b-versatile", max_tokens=5)
    with client(groq, key="gsk_two") as c:
        chat(c, stream=True).close()
    with client(other, key="sk-other") as c:
        c.models.list()
    log = fake_server.log
    assert [(e.provider, e.key, e.model, e.outcome, e.status) for e in log] == [
        ("groq", "gsk_one", MODEL, "rate_limited", 429),
        ("groq", "gsk_one", "llama-3.3-70b-versatile", "ok", 200),
        ("groq", "gsk_two", MODEL, "ok", 200),
        ("other", "sk-other", None, "models", 200),
    ]
    assert [e.at for e in log] == sorted(e.at for e in log)
    assert log[0].path == "/groq/v1/chat/completions"
    assert log[1].body is not None and log[1].body["max_tokens"] == 5
    assert [e.stream for e in log] == [False, False, True, False]
    assert fake_server.calls(provider="groq", key=k1) == log[:2]
    assert fake_server.calls(key="gsk_two") == [log[2]]
    assert fake_server.calls(provider=groq, key=k2.secret) == [log[2]]
    assert fake_server.calls(provider="other") == [log[3]]
    fake_server.clear_log()
    assert fake_server.log == []


def test_concurrent_async_requests_are_served_in_parallel(fake_server: FakeServer) -> None:
    provider, _ = provider_with_key(fake_server)
    provider.latency = 0.3

    async def main() -> list[str | None]:
        async with openai.AsyncOpenAI(
            base_url=provider.base_url, api_key=KEY, max_retries=0, timeout=5.0
        ) as c:
            replies = await asyncio.gather(
                *(
                    c.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": f"n{i}"}]
                    )
                    for i in range(5)
                )
            )
            stream = await c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            streamed = [chunk async for chunk in stream]
        assert streamed[1].choices[0].delta.content == "echo: hello there!"
        return [r.choices[0].message.content for r in replies]

    started = time.monotonic()
    contents = asyncio.run(main())
    assert sorted(contents) == [f"echo: n{i}" for i in range(5)]  # type: ignore[type-var]
    assert time.monotonic() - started < 1.2  # 6 x 0.3 s if served one by one
    assert len(fake_server.log) == 6


# -- building blocks -------------------------------------------------------------------------


def test_server_starts_in_milliseconds_and_stops_cleanly() -> None:
    started = time.monotonic()
    with FakeServer() as server:
        assert time.monotonic() - started < 0.1
        provider = server.provider("p")
        provider.key(KEY)
        with client(provider) as c:
            chat(c)
        assert provider.base_url == f"http://127.0.0.1:{server.port}/p/v1"
    with pytest.raises(RuntimeError):
        FakeServer().provider("q").base_url  # noqa: B018 (the property raises)


def test_provider_validation(fake_server: FakeServer) -> None:
    assert fake_server.provider("g", dialect="groq") is fake_server.provider("g", dialect="groq")
    with pytest.raises(ValueError):
        fake_server.provider("g", dialect="openai")
    with pytest.raises(ValueError):
        fake_server.provider("x", dialect="anthropic")
    with pytest.raises(ValueError):
        fake_server.provider("a/b")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.46, "460ms"), (1, "1s"), (1.2, "1.2s"), (179.56, "2m59.56s"),
     (3600, "1h0m0s"), (86399.5, "23h59m59.5s")],
)  # fmt: skip
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_token_counting() -> None:
    assert prompt_tokens({"messages": []}) == 1
    parts = [{"type": "text", "text": "abcde"}, {"type": "image_url", "image_url": {}}]
    body = {"messages": [{"role": "system", "content": "abc"}, {"role": "user", "content": parts}]}
    assert prompt_tokens(body) == math.ceil(8 / 4)
    assert request_cost(body, "x" * 9) == 2 + 3
    assert request_cost({**body, "max_completion_tokens": 100}, "x" * 9) == 102


def test_sliding_window_reset_math() -> None:
    now = [100.0]
    window = SlidingWindow(10, per=1.0, clock=lambda: now[0])
    window.add(4)
    now[0] = 100.4
    window.add(4)
    assert window.wait_for(2) == 0.0
    assert window.wait_for(3) == pytest.approx(0.6)  # the first entry must leave
    assert window.wait_for(7) == pytest.approx(1.0)  # both must leave
    assert window.state().remaining == 2
    now[0] = 101.0
    assert window.used() == 4
    assert window.state().reset == pytest.approx(0.4)


def go_seconds(text: str) -> float:
    """A Go duration of whole minutes and seconds (`59.9s`, `1m0s`) in seconds."""
    match = re.fullmatch(r"(?:(\d+)m)?([\d.]+)s", text)
    assert match, text
    return 60 * int(match.group(1) or 0) + float(match.group(2))


def test_refill_bucket_bursts_then_admits_one_per_refill() -> None:
    now = [100.0]
    bucket = RefillBucket(5, per=2.0, clock=lambda: now[0])
    for _ in range(5):  # starts full: a burst of 5
        assert bucket.wait_for(1) == 0.0
        bucket.add(1)
    assert bucket.state() == bucket.state(100.0)
    assert (bucket.state().remaining, bucket.state().reset) == (0, pytest.approx(2.0))
    assert bucket.used() == 5
    for step in range(1, 11):  # then one every per/limit = 0.4 s, exactly on time
        assert bucket.wait_for(1) == pytest.approx(0.4)
        now[0] = 100.0 + 0.4 * step
        assert bucket.wait_for(1) == 0.0
        bucket.add(1)
        assert bucket.state().remaining == 0
    now[0] += 0.6  # 1.5 units back: remaining counts whole units, reset is until full
    state = bucket.state()
    assert (state.remaining, state.reset, state.refill) == (1, pytest.approx(1.4), True)
    assert bucket.wait_for(2) == pytest.approx(0.2)
    assert bucket.wait_for(6) == pytest.approx(1.4)  # never fits: reports the time until full
    now[0] += 5.0
    assert (bucket.state().remaining, bucket.state().reset, bucket.used()) == (5, 0.0, 0)


def test_refill_bucket_charges_token_costs() -> None:
    now = [0.0]
    bucket = RefillBucket(85, per=2.0, clock=lambda: now[0])
    bucket.add(17)
    assert (bucket.state().remaining, bucket.state().reset) == (68, pytest.approx(0.4))
    for _ in range(4):
        bucket.add(17)
    assert bucket.wait_for(17) == pytest.approx(0.4)
    assert bucket.wait_for(34) == pytest.approx(0.8)


def refill_limits(now: float, *, requests: bool) -> Limits:
    """A 5-per-2 s request bucket (or an 85-per-2 s token bucket) after two requests."""
    bucket = RefillBucket(5, 2.0) if requests else RefillBucket(85, 2.0)
    for _ in range(2):
        bucket.add(1 if requests else 17, now)
    state = bucket.state(now)
    return Limits(requests=state) if requests else Limits(tokens=state)


def test_dialects_report_a_refill_bucket_as_time_to_full() -> None:
    now, epoch = 7.0, 1_700_000_000.0
    limits = refill_limits(now, requests=True)
    openai_ = DIALECTS["openai"].limit_headers(limits, epoch)
    assert [openai_[f"x-ratelimit-{h}-requests"] for h in ("limit", "remaining", "reset")] == [
        "5",
        "3",
        "800ms",
    ]
    cerebras = DIALECTS["cerebras"].limit_headers(limits, epoch)
    assert cerebras["x-ratelimit-remaining-requests-minute"] == "3"
    assert cerebras["x-ratelimit-reset-requests-minute"] == "0.800"
    assert cerebras["x-ratelimit-limit-requests-day"] == "14400"  # the day stays fixed
    openrouter = DIALECTS["openrouter"].limit_headers(limits, epoch)
    assert openrouter == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": str(int((epoch + 0.8) * 1000)),
    }
    groq = DIALECTS["groq"].limit_headers(refill_limits(now, requests=False), epoch)
    assert [groq[f"x-ratelimit-{h}-tokens"] for h in ("limit", "remaining", "reset")] == [
        "85",
        "51",
        "800ms",
    ]
    # Without a request window, Groq's -requests headers are the fixed daily numbers.
    assert [groq[f"x-ratelimit-{h}-requests"] for h in ("limit", "remaining", "reset")] == [
        "14400",
        "14399",
        "6s",
    ]


@pytest.mark.parametrize("dialect", ["openai", "groq", "cerebras", "openrouter"])
def test_a_refill_bucket_429_keeps_the_time_to_full(dialect: str) -> None:
    """A 429 says when one request fits (retry-after) and, in the window headers, when the
    bucket is full again; remaining is 0."""
    epoch = 1_700_000_000.0
    bucket = RefillBucket(5, 2.0)
    for _ in range(5):
        bucket.add(1, 0.0)
    breach = Breach("requests", 5, 5, 1, bucket.wait_for(1, 0.1))  # 0.3 s
    limits = Limits(requests=bucket.state(0.1))  # full again in 1.9 s
    payload = DIALECTS[dialect].rate_limited(Context(MODEL, KEY, epoch), breach, limits)
    headers = payload.headers
    assert payload.status == 429
    if dialect == "openai":
        assert (headers["x-ratelimit-reset-requests"], headers["retry-after-ms"]) == ("1.9s", "300")
    elif dialect == "groq":
        assert (headers["x-ratelimit-reset-requests"], headers["retry-after"]) == ("1.9s", "1")
        assert headers["x-ratelimit-remaining-requests"] == "0"  # a configured request window
    elif dialect == "cerebras":
        assert headers["x-ratelimit-reset-requests-minute"] == "1.900"
        assert headers["x-ratelimit-remaining-requests-minute"] == "0"
    else:
        assert headers["X-RateLimit-Reset"] == str(int((epoch + 1.9) * 1000))
        assert headers["X-RateLimit-Remaining"] == "0"
