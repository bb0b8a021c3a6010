"""`llmroute serve` in a subprocess, driven by real clients (the openai SDK, curl) over HTTP,
with the fake provider upstream: answers, streams, fallback, pass-through and the endpoints.

One gateway serves the whole module (a start costs about a second); each test starts from a
clean fake and a cleared state store (`Shared.reset`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
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
    sse_data,
)
from tests.world import World, assert_no_secret

HELLO = [{"role": "user", "content": "hello"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    with shared_gateway(tmp_path_factory.mktemp("gateway")) as shared:
        yield shared


def llmroute_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-llmroute-")}


def test_a_completion_falls_back_inside_the_pool(
    world: World, gateway: Gateway, client: openai.OpenAI
) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=30))
    raw = client.chat.completions.with_raw_response.create(model="other", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello"
    assert completion.system_fingerprint == "fp_fake"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert llmroute_headers(raw.headers) == {
        "x-llmroute-provider": "groq", "x-llmroute-key": "groq#2", "x-llmroute-model": "small",
        "x-llmroute-attempts": "2", "x-llmroute-fallbacks": "1",
    }  # fmt: skip
    line = gateway.wait_for_line("POST /v1/chat/completions 200")
    assert "task=other" in line and "by=groq#2/small" in line
    assert "attempts=2" in line and "fallbacks=1" in line
    assert [e.status for e in world.server.log] == [429, 200]
    assert_no_secret(*gateway.lines, str(dict(raw.headers)), raw.text)


def test_a_stream_falls_back_before_its_first_token_and_says_who_answered(
    world: World, gateway: Gateway, client: openai.OpenAI
) -> None:
    world.groq_keys[0].script(Reply.server_error(503))
    world.groq_keys[1].script(Reply.stream(chunks=["Hel", "lo"]))
    raw = client.chat.completions.with_raw_response.create(
        model="other", messages=HELLO, stream=True
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert llmroute_headers(raw.headers) == {
        "x-llmroute-provider": "groq", "x-llmroute-key": "groq#2", "x-llmroute-model": "small",
        "x-llmroute-attempts": "2", "x-llmroute-fallbacks": "1",
    }  # fmt: skip
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello"  # nothing of the candidate that failed first
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [(e.status, e.stream) for e in world.server.log] == [(503, True), (200, True)]
    line = gateway.wait_for_line("POST /v1/chat/completions 200")
    assert "by=groq#2/small" in line and "broken" not in line
    assert_no_secret(*gateway.lines, str(dict(raw.headers)))


def test_curl_gets_a_completion_and_a_stream(world: World, gateway: Gateway) -> None:
    url = f"{gateway.base_url}/chat/completions"
    world.groq_keys[0].script(Reply.ok("plain answer"))
    plain = curl("-H", "content-type: application/json", "-d", json.dumps(chat_body()), url)
    assert plain.returncode == 0, plain.stderr
    status, headers, body = split_http(plain.stdout)
    assert status == 200 and headers["content-type"] == "application/json"
    assert headers["x-llmroute-provider"] == "groq" and headers["x-llmroute-key"] == "groq#1"
    assert json.loads(body)["choices"][0]["message"]["content"] == "plain answer"

    world.groq_keys[1].script(Reply.stream(chunks=["Str", "eam", "ed"]))  # the pool's next key
    streamed = curl(
        "-N", "-H", "content-type: application/json",
        "-d", json.dumps(chat_body(stream=True)), url,
    )  # fmt: skip
    assert streamed.returncode == 0, streamed.stderr
    status, headers, body = split_http(streamed.stdout)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers["x-llmroute-key"] == "groq#2" and headers["x-llmroute-attempts"] == "1"
    events = sse_data(body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Streamed"
    assert_no_secret(plain.stdout, streamed.stdout, *gateway.lines)


def test_tools_go_in_and_tool_calls_come_out(world: World, client: openai.OpenAI) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    completion = client.chat.completions.create(
        model="other", messages=HELLO, tools=[WEATHER_TOOL], tool_choice=choice
    )
    (answer,) = completion.choices
    assert answer.finish_reason == "tool_calls"
    assert answer.message.content is None
    (call,) = answer.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "fake", "days": 0}
    (sent,) = world.server.log
    assert sent.body is not None
    assert sent.body["tools"] == [WEATHER_TOOL] and sent.body["tool_choice"] == choice


def test_a_stream_of_tool_calls_comes_through_piece_by_piece(
    world: World, client: openai.OpenAI
) -> None:
    world.groq_keys[0].script(Reply.tool_calls("get_weather", {"city": "Paris", "days": 3}))
    stream = client.chat.completions.create(
        model="other", messages=HELLO, tools=[WEATHER_TOOL], stream=True
    )
    name, pieces, finish = None, [], None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            if call.function and call.function.name:
                name = call.function.name
            if call.function and call.function.arguments:
                pieces.append(call.function.arguments)
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls"
    assert len(pieces) > 1  # streamed in pieces, as the provider sent them
    assert json.loads("".join(pieces)) == {"city": "Paris", "days": 3}
    (sent,) = world.server.log
    assert sent.stream and sent.body is not None and sent.body["tools"] == [WEATHER_TOOL]


def test_request_fields_pass_through_unchanged(world: World, client: openai.OpenAI) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "weather",
            "strict": True,
            "schema": {"type": "object", "properties": {"t": {"type": "number"}},
                       "required": ["t"], "additionalProperties": False},
        },
    }  # fmt: skip
    completion = client.chat.completions.create(
        model="other", messages=HELLO, response_format=response_format,
        n=2, logprobs=True, seed=7, temperature=0.25, max_tokens=64, stop=["\n\n"],
        user="someone", extra_body={"x_custom_field": {"kept": [1, 2]}},
    )  # fmt: skip
    assert [c.index for c in completion.choices] == [0, 1]
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content and logprobs.content[0].logprob == -0.25
    (sent,) = world.server.log
    assert sent.body is not None
    expected = {
        "response_format": response_format, "n": 2, "logprobs": True, "seed": 7,
        "temperature": 0.25, "max_tokens": 64, "stop": ["\n\n"], "user": "someone",
        "x_custom_field": {"kept": [1, 2]}, "messages": HELLO,
    }  # fmt: skip
    assert {k: sent.body.get(k) for k in expected} == expected
    assert sent.body["model"] == "small"  # `model` picked the route; the candidate's model went


def test_the_usage_chunk_reaches_only_a_client_that_asked_for_it(
    world: World, client: openai.OpenAI
) -> None:
    def last_chunk(**fields: Any) -> Any:
        return list(client.chat.completions.create(
            model="other", messages=HELLO, stream=True, **fields
        ))[-1]  # fmt: skip

    asked = last_chunk(stream_options={"include_usage": True})
    assert asked.choices == [] and asked.usage is not None and asked.usage.total_tokens > 0
    not_asked = last_chunk()
    assert not_asked.choices and not_asked.usage is None
    for sent in world.server.log:  # llmroute always asks, to settle its token budgets
        assert sent.body is not None
        assert sent.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("model", "provider", "task"),
    [
        ("fallback", "backup", "fallback"),  # a task
        ("backup:big", "backup", "backup:big"),  # a pinned provider:model
        ("groq:small", "groq", "groq:small"),
        (None, "groq", "fast"),  # absent: the default task
    ],
)
def test_model_picks_a_task_a_pinned_model_or_the_default_task(
    world: World, gateway: Gateway, model: str | None, provider: str, task: str
) -> None:
    response = post_raw(
        f"{gateway.base_url}/chat/completions", json.dumps(chat_body(model)).encode()
    )
    assert response.status == 200, response.body
    assert response.headers["x-llmroute-provider"] == provider
    (sent,) = world.server.log
    assert sent.provider == provider
    assert gateway.wait_for_line("POST /v1/chat/completions 200", f"task={task} ")


def test_models_lists_the_tasks_and_the_configured_models(
    world: World, client: openai.OpenAI
) -> None:
    models = list(client.models.list())
    ids = [m.id for m in models]
    tasks = list(world.config["tasks"])
    assert ids[: len(tasks)] == tasks
    assert {"groq:small", "backup:big", "dead:m"} <= set(ids[len(tasks) :])
    assert all(m.object == "model" and isinstance(m.created, int) for m in models)
    owners = {m.id: m.owned_by for m in models}
    assert owners["fast"] == "llmroute" and owners["groq:small"] == "groq"
    assert not world.server.log  # answered from the config, without asking any provider


def test_health_answers_without_asking_a_provider(world: World, gateway: Gateway) -> None:
    done = curl(f"{gateway.url}/health")
    status, headers, body = split_http(done.stdout)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"
    assert not world.server.log


def test_state_shows_every_key_and_what_cools_down(
    world: World, gateway: Gateway, client: openai.OpenAI
) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=30))
    client.chat.completions.create(model="other", messages=HELLO)
    done = curl(f"{gateway.base_url}/llmroute/state")
    status, _, body = split_http(done.stdout)
    assert status == 200
    rows = json.loads(body)["keys"]
    fields = {"provider", "key", "masked", "model", "state", "until", "reason", "failures",
              "budgets", "learned"}  # fmt: skip
    assert all(set(row) == fields for row in rows)
    by_key = {(r["provider"], r["key"], r["model"]): r for r in rows}
    assert {("groq", f"groq#{i}", "small") for i in (1, 2, 3)} <= set(by_key)
    assert ("backup", "backup#1", "big") in by_key
    assert by_key[("groq", "groq#1", "small")]["state"] == "cooling"
    assert by_key[("groq", "groq#2", "small")]["state"] == "ready"
    assert_no_secret(body)


def test_the_base_url_may_leave_out_v1(world: World, gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.url, api_key="unused", max_retries=0) as client:
        completion = client.chat.completions.create(model="other", messages=HELLO)
    assert completion.choices[0].message.content == "echo: hello"


def test_the_gateway_announces_itself_to_local_clients(shared: Shared, world: World) -> None:
    """The discovery file that a local `ask` reads names this gateway and its config."""
    (announcement,) = (shared.home / "state").rglob("gateway.json")
    data = json.loads(announcement.read_text())
    assert data["url"] == shared.gateway.url
    assert data["pid"] == shared.gateway.process.pid
    assert Path(data["config"]).name == "routes.toml"
