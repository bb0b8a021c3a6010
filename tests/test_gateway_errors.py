"""Every error row of the gateway's table, over real HTTP against `llmroute serve` in a
subprocess: OpenAI's error shape, an honest status, the openai SDK's matching exception, never
a 500, and never a provider key in a body, a header or a log line.

| case | status |
| --- | --- |
| malformed JSON, not an object, a missing `messages` | 400 |
| unknown task or model | 404 `model_not_found` |
| a request the provider rejected | the provider's 400 / 422 and its message |
| a prompt too long for every candidate | 400 `context_length_exceeded` |
| too large for every candidate | 413 |
| every candidate cooling down or out of budget past the deadline | 429, `retry-after` |
| every candidate failed | 502 (503 when none could be called) |
| a body over `--max-body-mb` | 413 |
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fakeprovider import Reply
from tests.gateway import (
    Gateway,
    Shared,
    chat_body,
    curl,
    post_raw,
    shared_gateway,
    split_http,
)
from tests.world import World, assert_no_secret

HELLO = [{"role": "user", "content": "hello"}]
PACED_KEY = "paced-fake-key-GGGGGGGGGGGGGG7"
MAX_BODY_MB = 1
SHORT_DEADLINE = {"x-llmroute-deadline": "1"}


def with_a_paced_provider(world: World) -> None:
    """`paced:m`: one key, one request a minute by the config, so a second request within the
    deadline has no budget."""
    paced = world.server.provider("paced", dialect="openai", models=["m"])
    paced.key(PACED_KEY)
    world.config["providers"]["paced"] = {
        "base_url": paced.base_url, "keys": ["PACED_KEY"], "limits": {"requests": "1/60s"},
    }  # fmt: skip
    world.env["PACED_KEY"] = PACED_KEY


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    tmp = tmp_path_factory.mktemp("gateway-errors")
    args = ("--max-body-mb", str(MAX_BODY_MB))
    with shared_gateway(tmp, *args, configure=with_a_paced_provider) as shared:
        yield shared


@pytest.fixture
def gateway(shared: Shared, world: World) -> Iterator[Gateway]:
    yield shared.gateway
    # Whatever the test did: no 500 and no key in any line of the access log.
    assert not [line for line in shared.gateway.lines if " 500 " in line]
    assert_no_secret(*shared.gateway.lines)
    assert all(PACED_KEY not in line for line in shared.gateway.lines)


def openai_error(body: Any) -> dict[str, Any]:
    """OpenAI's error shape, exactly: `{"error": {"message", "type", "code"}}`."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["code"] is None or isinstance(error["code"], str)
    return dict(error)


def raised(
    kind: type[openai.APIStatusError], status: int, call: Any, *args: Any, **kwargs: Any
) -> tuple[openai.APIStatusError, dict[str, Any]]:
    """The SDK's exception for a call that must fail with `status`, and the error it carried."""
    with pytest.raises(kind) as caught:
        call(*args, **kwargs)
    exc = caught.value
    assert exc.status_code == status
    response = exc.response
    assert response.headers["content-type"] == "application/json"
    error = openai_error(response.json())
    assert_no_secret(response.text, str(dict(response.headers)))
    assert PACED_KEY not in response.text
    return exc, error


# -- the request itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b'{"model": "other", "messages": [', b"[1, 2]", b"\xff\xfe not utf-8", b""],
    ids=["truncated", "not-an-object", "bad-utf8", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_400(
    world: World, gateway: Gateway, body: bytes
) -> None:
    response = post_raw(f"{gateway.base_url}/chat/completions", body)
    assert response.status == 400
    error = openai_error(response.json())
    assert error["type"] == "invalid_request_error"
    assert not world.server.log


@pytest.mark.parametrize(
    "body",
    [{"model": "other"}, {"model": "other", "messages": []},
     {"model": "other", "messages": "hello"}, {"model": 7, "messages": HELLO},
     {"model": "other", "messages": HELLO, "stream": "yes"}],
    ids=["no-messages", "empty-messages", "messages-not-a-list", "model-not-a-string",
         "stream-not-a-bool"],
)  # fmt: skip
def test_a_chat_request_without_usable_messages_is_400(
    world: World, client: openai.OpenAI, body: dict[str, Any]
) -> None:
    _, error = raised(
        openai.BadRequestError, 400, client.post, "/chat/completions", body=body, cast_to=object
    )
    assert error["type"] == "invalid_request_error"
    assert not world.server.log


@pytest.mark.parametrize("model", ["no-such-task", "nope:some-model"])
def test_an_unknown_task_or_provider_is_404_model_not_found(
    world: World, client: openai.OpenAI, model: str
) -> None:
    exc, error = raised(
        openai.NotFoundError, 404, client.chat.completions.create, model=model, messages=HELLO
    )
    assert error["code"] == exc.code == "model_not_found"
    assert model in error["message"]
    assert not world.server.log


def test_a_model_the_provider_does_not_serve_is_404_model_not_found(
    world: World, client: openai.OpenAI
) -> None:
    for _ in range(2):  # the second finds the model disabled and calls nobody
        _, error = raised(
            openai.NotFoundError, 404, client.chat.completions.create,
            model="groq:no-such-model", messages=HELLO,
        )  # fmt: skip
        assert error["code"] == "model_not_found"
    assert [e.status for e in world.server.log] == [404]


# -- what the providers said ----------------------------------------------------------------


def test_a_request_the_provider_rejects_is_its_400_with_its_message(
    world: World, client: openai.OpenAI
) -> None:
    for key in world.groq_keys:
        key.default = Reply.bad_request("Invalid value for 'temperature': must be <= 2")
    _, error = raised(
        openai.BadRequestError, 400, client.chat.completions.create,
        model="other", messages=HELLO, temperature=9,
    )  # fmt: skip
    assert "Invalid value for 'temperature': must be <= 2" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert len(world.server.log) == 1  # the request is wrong: no other candidate is tried


def test_a_request_the_provider_cannot_process_is_its_422(
    world: World, client: openai.OpenAI
) -> None:
    for key in world.groq_keys:
        key.default = Reply.unprocessable()
    _, error = raised(
        openai.UnprocessableEntityError, 422, client.chat.completions.create,
        model="other", messages=HELLO,
    )  # fmt: skip
    assert "Unprocessable Entity" in error["message"]
    assert len(world.server.log) == 1


def test_a_prompt_too_long_for_every_candidate_is_400_context_length_exceeded(
    world: World, client: openai.OpenAI
) -> None:
    for key in world.groq_keys:
        key.default = Reply.context_length_exceeded()
    exc, error = raised(
        openai.BadRequestError, 400, client.chat.completions.create,
        model="groq:small", messages=HELLO,
    )  # fmt: skip
    assert error["code"] == exc.code == "context_length_exceeded"
    # The other keys have the same context window: not worth a call.
    assert len(world.server.log) == 1


def test_a_request_too_large_for_every_candidate_is_413(
    world: World, client: openai.OpenAI
) -> None:
    for key in [*world.groq_keys, *world.backup.keys]:
        key.default = Reply.too_large()
    _, error = raised(
        openai.APIStatusError, 413, client.chat.completions.create, model="fast", messages=HELLO
    )
    assert error["code"] == "request_too_large"
    assert [e.status for e in world.server.log] == [413] * 4  # each candidate once


def test_every_candidate_cooling_down_past_the_deadline_is_429_with_retry_after(
    world: World, client: openai.OpenAI
) -> None:
    for key in world.groq_keys:
        key.default = Reply.rate_limited(reset=60)
    for _ in range(2):  # the second calls nobody: every key is known to cool down
        exc, error = raised(
            openai.RateLimitError, 429, client.chat.completions.create,
            model="groq:small", messages=HELLO, extra_headers=SHORT_DEADLINE,
        )  # fmt: skip
        assert error["code"] == "rate_limit_exceeded"
        assert 50 <= int(exc.response.headers["retry-after"]) <= 61
    assert [e.status for e in world.server.log] == [429] * 3


def test_every_candidate_out_of_budget_past_the_deadline_is_429_with_retry_after(
    world: World, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="paced:m", messages=HELLO)  # the minute's one request
    exc, error = raised(
        openai.RateLimitError, 429, client.chat.completions.create,
        model="paced:m", messages=HELLO, extra_headers=SHORT_DEADLINE,
    )  # fmt: skip
    assert error["code"] == "rate_limit_exceeded"
    assert 50 <= int(exc.response.headers["retry-after"]) <= 61
    assert len(world.server.log) == 1  # llmroute knew, and did not ask


def test_llmroute_report_says_which_attempts_failed_and_when_to_retry(
    world: World, gateway: Gateway
) -> None:
    for key in world.groq_keys:
        key.default = Reply.rate_limited(reset=60)
    response = post_raw(
        f"{gateway.base_url}/chat/completions", json.dumps(chat_body("groq:small")).encode(),
        {**SHORT_DEADLINE, "x-llmroute-report": "1"},
    )  # fmt: skip
    assert response.status == 429
    report = response.json()["error"]["llmroute"]
    assert report["retry_at"] is not None
    assert {a["key"] for a in report["attempts"]} == {"groq#1", "groq#2", "groq#3"}
    assert {a["outcome"] for a in report["attempts"]} == {"rate_limited"}
    assert_no_secret(response.body.decode())


@pytest.mark.parametrize(
    ("model", "broken"),
    [("fallback", ["backup"]), ("other", ["groq", "backup"])],
    ids=["one-provider", "the-whole-route"],
)
def test_every_candidate_failing_is_502(
    world: World, client: openai.OpenAI, gateway: Gateway, model: str, broken: list[str]
) -> None:
    for name in broken:
        for key in world.server.providers[name].keys:
            key.default = Reply.server_error(503)
    _, error = raised(
        openai.InternalServerError, 502, client.chat.completions.create,
        model=model, messages=HELLO, extra_headers=SHORT_DEADLINE,  # no waiting for a retry
    )  # fmt: skip
    assert error["code"] == "upstream_failed"
    assert {e.status for e in world.server.log} == {503}
    assert gateway.wait_for_line("POST /v1/chat/completions 502", f"task={model}")


def test_providers_that_refuse_connections_are_a_5xx(world: World, client: openai.OpenAI) -> None:
    exc, _ = raised(
        openai.InternalServerError, 502, client.chat.completions.create,
        model="dead:m", messages=HELLO, extra_headers=SHORT_DEADLINE,
    )  # fmt: skip
    assert "dead-key" not in exc.response.text
    # The provider is down: the next request knows it and calls nobody, still not a 500.
    with pytest.raises(openai.APIStatusError) as again:
        client.chat.completions.create(model="dead:m", messages=HELLO, extra_headers=SHORT_DEADLINE)
    assert again.value.status_code in (429, 502, 503)
    openai_error(again.value.response.json())


# -- the gateway's own limit ------------------------------------------------------------------


def big_body() -> bytes:
    content = "x" * (MAX_BODY_MB * 1024 * 1024 + 1)
    return json.dumps(chat_body(content=content)).encode()


def test_a_body_over_max_body_mb_is_413_by_its_content_length(
    world: World, gateway: Gateway, client: openai.OpenAI
) -> None:
    response = post_raw(f"{gateway.base_url}/chat/completions", big_body())
    assert response.status == 413
    assert openai_error(response.json())["code"] == "request_too_large"
    _, error = raised(
        openai.APIStatusError, 413, client.chat.completions.create,
        model="other", messages=[{"role": "user", "content": "y" * (MAX_BODY_MB << 20)}],
    )  # fmt: skip
    assert error["code"] == "request_too_large"
    assert not world.server.log


def test_a_chunked_body_over_max_body_mb_is_413(
    world: World, gateway: Gateway, tmp_path: Any
) -> None:
    """Without a Content-Length, the gateway counts what arrives."""
    payload = tmp_path / "big.json"
    payload.write_bytes(big_body())
    done = curl(
        "-H", "content-type: application/json", "-H", "transfer-encoding: chunked",
        "--data-binary", f"@{payload}", f"{gateway.base_url}/chat/completions",
    )  # fmt: skip
    status, _, body = split_http(done.stdout)
    assert status == 413, done.stdout[:500]
    assert openai_error(json.loads(body))["code"] == "request_too_large"
    assert not world.server.log


def test_a_body_just_under_max_body_mb_is_served(world: World, gateway: Gateway) -> None:
    content = "z" * (MAX_BODY_MB * 1024 * 1024 - 200)
    response = post_raw(
        f"{gateway.base_url}/chat/completions",
        json.dumps(chat_body("fallback", content=content)).encode(),
    )
    assert response.status == 200, response.body[:300]


def test_an_unknown_path_or_method_is_answered_in_openai_shape(gateway: Gateway) -> None:
    missing = curl(f"{gateway.base_url}/embeddings", "-d", "{}")
    status, _, body = split_http(missing.stdout)
    assert status == 404
    openai_error(json.loads(body))
    wrong = curl(f"{gateway.base_url}/chat/completions")  # GET
    status, _, body = split_http(wrong.stdout)
    assert status == 405
    openai_error(json.loads(body))
