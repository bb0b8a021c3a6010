"""Streams through `llmroute serve` (a subprocess) when things break: before the first token a
failing candidate is replaced invisibly; after it, a break is one error event and no `[DONE]`
(the openai SDK raises), never a splice; and a client that goes away frees the budget and the
upstream connection at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakeprovider import FakeServer, Reply
from tests.gateway import (
    Gateway,
    Shared,
    chat_body,
    curl,
    in_flight,
    live_connections,
    running_gateway,
    shared_gateway,
    split_http,
    sse_data,
    wait_until,
)
from tests.world import World, assert_no_secret, make_world

HELLO = [{"role": "user", "content": "hello"}]
STALL_S = 60.0  # far longer than any wait below: only a cancelled call ends before it


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    with shared_gateway(tmp_path_factory.mktemp("gateway-streams")) as shared:
        yield shared


BREAKS = {
    "cut": Reply.stream(chunks=["a", "b", "c", "d"], cut_after=2),
    "error-event": Reply.stream(chunks=["a", "b", "c", "d"], error_after=2),
    "stall": Reply.stream(chunks=["a", "b", "c", "d"], stall_after=2, stall_seconds=STALL_S),
}
TIMEOUT_1S = {"x-llmroute-timeout": "1"}  # per attempt: a stream silent this long is broken


@pytest.mark.parametrize("kind", list(BREAKS))
def test_a_break_after_the_first_token_is_an_error_the_sdk_raises(
    world: World, gateway: Gateway, client: openai.OpenAI, kind: str
) -> None:
    world.groq_keys[0].script(BREAKS[kind])
    stream = client.chat.completions.create(
        model="other", messages=HELLO, stream=True, extra_headers=TIMEOUT_1S
    )
    received = []
    with pytest.raises(openai.APIError) as caught:  # raised while iterating, not before
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == "ab"  # what came before the break came through
    assert "broke off" in caught.value.message
    assert caught.value.code == "stream_broken"
    stream.close()
    # Nothing spliced: one upstream call, and no other key or provider asked to finish it.
    assert len(world.server.log) == 1
    line = gateway.wait_for_line("POST /v1/chat/completions 200")
    assert line.endswith(" broken") and "by=groq#1/small" in line


def test_curl_sees_one_error_event_and_no_done_after_a_break(
    world: World, gateway: Gateway
) -> None:
    world.groq_keys[0].script(Reply.stream(chunks=["a", "b", "c", "d"], cut_after=2))
    done = curl(
        "-N", "-H", "content-type: application/json",
        "-d", json.dumps(chat_body(stream=True)), f"{gateway.base_url}/chat/completions",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # the gateway ends its own response cleanly
    status, headers, body = split_http(done.stdout)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = sse_data(body)
    assert "[DONE]" not in events
    *chunks, last = (json.loads(e) for e in events)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "ab"
    assert all("error" not in c for c in chunks)
    assert set(last) == {"error"} and set(last["error"]) == {"message", "type", "code"}
    assert last["error"]["code"] == "stream_broken"
    assert len(world.server.log) == 1
    assert_no_secret(done.stdout)


@pytest.mark.parametrize(
    "failure",
    [
        Reply.stream(chunks=["x", "y"], cut_after=0),  # the role chunk, then the cut
        Reply.stream(chunks=["x", "y"], error_after=0),  # an error event before any content
        Reply.stream(chunks=["x", "y"], stall_after=0, stall_seconds=STALL_S),  # no first token
        Reply.rate_limited(reset=30),
    ],
    ids=["cut", "error-event", "stall", "429"],
)
def test_a_failure_before_the_first_token_is_replaced_invisibly(
    world: World, client: openai.OpenAI, failure: Reply
) -> None:
    world.groq_keys[0].script(failure)
    world.groq_keys[1].script(Reply.stream(chunks=["Hel", "lo"]))
    raw = client.chat.completions.with_raw_response.create(
        model="other", messages=HELLO, stream=True,
        extra_headers={"x-llmroute-ttft-timeout": "1"},
    )  # fmt: skip
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert raw.headers["x-llmroute-key"] == "groq#2"
    assert raw.headers["x-llmroute-attempts"] == "2"
    ids = {c.id for c in chunks}
    assert len(ids) == 1  # one answer's chunks, none of the failed candidate's


# -- a client that goes away ---------------------------------------------------------------


@pytest.fixture
def alone(fake_server: FakeServer, isolated_env: Path) -> Iterator[tuple[World, Gateway, str]]:
    """A gateway of its own: the only upstream connection it opens is the test's."""
    state = f"sqlite://{isolated_env / 'state.sqlite3'}"
    world = make_world(fake_server, state=state)
    config = world.write_config(isolated_env / "routes.toml")
    with running_gateway(config, world.env) as gateway:
        yield world, gateway, state


def assert_released(world: World, gateway: Gateway, state: str) -> None:
    """The gateway let go of the upstream call at once (a stall of a minute was cut short)."""
    wait_until(lambda: in_flight(state) == 0, 10, "the reservation to be released")
    port = world.server.port
    assert port is not None
    wait_until(lambda: not live_connections(port), 10, "the upstream connection to close")
    # The candidate did nothing wrong: no cooldown, no failure counted against it.
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        rows = client.get("/llmroute/state", cast_to=object)
    groq1 = next(r for r in rows["keys"] if r["key"] == "groq#1")
    assert groq1["state"] == "ready" and groq1["failures"] == 0
    assert len(world.server.log) == 1  # and nobody else was asked instead


def assert_held(world: World, state: str) -> None:
    """While the provider stalls, the gateway holds the reservation and the connection: so the
    observables of `assert_released` do see a call that is kept running."""
    assert in_flight(state) == 1
    port = world.server.port
    assert port is not None
    assert len(live_connections(port)) == 1


def test_a_client_leaving_a_stream_frees_the_budget_and_the_upstream_connection(
    alone: tuple[World, Gateway, str],
) -> None:
    """Observables that fail if the gateway kept the upstream call running: the reservation it
    holds in the shared state store (a held one counts against the key's learned limits until
    it is settled) and the provider's side of the upstream TCP connection, which stays
    ESTABLISHED for as long as the gateway keeps it. The provider stalls for a minute after the
    first token; both must be gone within seconds of the client closing its stream."""
    world, gateway, state = alone
    world.groq_keys[0].script(Reply.stream(chunks=["a", "b"], stall_after=1, stall_seconds=STALL_S))
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(model="other", messages=HELLO, stream=True)
        chunks = iter(stream)
        while not any(c.delta.content for c in next(chunks).choices):
            pass  # the role chunk, then "a"
        assert_held(world, state)
        stream.close()  # the client goes away mid-stream
    assert_released(world, gateway, state)
    assert gateway.wait_for_line("POST /v1/chat/completions", "by=groq#1/small")


def test_a_client_giving_up_on_a_completion_frees_the_budget_and_the_upstream_connection(
    alone: tuple[World, Gateway, str],
) -> None:
    """As above, for a completion that is not streamed: the provider stalls a minute before
    answering; the client's own timeout gives up after a second."""
    world, gateway, state = alone
    world.groq_keys[0].script(Reply.stall(STALL_S))
    with (
        openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(model="other", messages=HELLO, timeout=1.5)
    assert_released(world, gateway, state)
    assert gateway.wait_for_line("POST /v1/chat/completions 499")
