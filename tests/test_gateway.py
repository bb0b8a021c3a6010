"""`llmroute serve` in a subprocess, driven by real clients (the openai SDK, curl) over HTTP,
with the fake provider upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakeprovider import FakeServer, Reply
from tests.gateway import Gateway, running_gateway
from tests.world import World, assert_no_secret, make_world


@pytest.fixture
def world(fake_server: FakeServer, isolated_env: Path) -> World:
    return make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")


@pytest.fixture
def gateway(world: World, isolated_env: Path) -> Iterator[Gateway]:
    config = world.write_config(isolated_env / "routes.toml")
    with running_gateway(config, world.env) as gateway:
        yield gateway


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)


def test_a_completion_falls_back_inside_the_pool(
    world: World, gateway: Gateway, client: openai.OpenAI
) -> None:
    world.groq_keys[0].script(Reply.rate_limited(reset=30))
    raw = client.chat.completions.with_raw_response.create(
        model="other", messages=[{"role": "user", "content": "hello"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello"
    assert completion.system_fingerprint == "fp_fake"
    assert raw.headers["x-llmroute-provider"] == "groq"
    assert raw.headers["x-llmroute-key"] == "groq#2"
    assert raw.headers["x-llmroute-model"] == "small"
    assert (raw.headers["x-llmroute-attempts"], raw.headers["x-llmroute-fallbacks"]) == ("2", "1")
    (line,) = gateway.wait_for_log(1)
    assert "200" in line and "task=other" in line and "by=groq#2/small" in line
    assert_no_secret(*gateway.lines, str(dict(raw.headers)))


def test_a_stream_falls_back_before_its_first_token(
    world: World, gateway: Gateway, client: openai.OpenAI
) -> None:
    world.groq_keys[0].script(Reply.server_error(503))
    world.groq_keys[1].script(Reply.stream(chunks=["Hel", "lo"]))
    stream = client.chat.completions.create(
        model="other", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    texts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta]
    assert "".join(t for t in texts if t) == "Hello"
