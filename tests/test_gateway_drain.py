"""Stopping `llmroute serve` (a subprocess): SIGTERM and Ctrl-C stop accepting, let requests
in flight finish for up to `--drain` seconds, then cut the rest and release their budgets."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakeprovider import FakeServer, Reply
from tests.gateway import Gateway, in_flight, start_gateway, wait_until
from tests.world import World, assert_no_secret, make_world

HELLO = [{"role": "user", "content": "hello"}]
EXIT_MARGIN_S = 7.0  # a loaded 2-core machine: drain + this is still far from a hang


class Stopping:
    """A gateway of its own that the test stops, with the clients it runs in threads."""

    def __init__(self, world: World, gateway: Gateway, state: str, home: Path) -> None:
        self.world, self.gateway, self.state, self.home = world, gateway, state, home
        self.pool = ThreadPoolExecutor(4)
        self.finished: dict[str, float] = {}  # what: when its client returned or raised

    def submit(self, what: str, work: Callable[[openai.OpenAI], Any]) -> Future[Any]:
        def run() -> Any:
            client = openai.OpenAI(
                base_url=self.gateway.base_url, api_key="unused", max_retries=0, timeout=30
            )
            try:
                return work(client)
            finally:
                self.finished[what] = time.monotonic()
                client.close()

        return self.pool.submit(run)

    def wait_arrived(self, count: int) -> None:
        wait_until(lambda: len(self.world.server.log) >= count, 15, f"{count} upstream calls")

    def refuses_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.gateway.port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: caught as it closed
            return True
        return False


@pytest.fixture
def stopping(
    request: pytest.FixtureRequest, fake_server: FakeServer, isolated_env: Path
) -> Iterator[Stopping]:
    args: tuple[str, ...] = getattr(request, "param", ())
    state = f"sqlite://{isolated_env / 'state.sqlite3'}"
    world = make_world(fake_server, state=state)
    config = world.write_config(isolated_env / "routes.toml")
    gateway = start_gateway(config, world.env, *args)
    it = Stopping(world, gateway, state, isolated_env.parent / "home")
    try:
        yield it
    finally:
        gateway.stop(signal.SIGKILL)
        it.pool.shutdown(wait=True, cancel_futures=True)
        assert_no_secret(*gateway.lines)


def complete(client: openai.OpenAI) -> str | None:
    return client.chat.completions.create(model="other", messages=HELLO).choices[0].message.content


def stream(client: openai.OpenAI) -> str:
    chunks = client.chat.completions.create(model="other", messages=HELLO, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_lets_requests_in_flight_finish_and_refuses_new_ones(
    stopping: Stopping, sig: signal.Signals
) -> None:
    keys = stopping.world.groq_keys
    keys[0].script(Reply.stall(3.0))  # a completion the provider answers in 3 s
    keys[1].script(Reply.stream(chunks=["slow ", "answer"], stall_after=1, stall_seconds=3.0))
    answered = stopping.submit("completion", complete)
    stopping.wait_arrived(1)  # one at a time: the pool's first key, then its second
    streamed = stopping.submit("stream", stream)
    stopping.wait_arrived(2)
    assert in_flight(stopping.state) == 2  # both under way when the signal arrives

    stopping.gateway.process.send_signal(sig)
    wait_until(stopping.refuses_connections, 5, "the gateway to stop accepting")
    refused_at = time.monotonic()

    assert answered.result(timeout=30) == "echo: hello"
    assert streamed.result(timeout=30) == "slow answer"  # whole, ended by [DONE]
    assert refused_at < min(stopping.finished.values())  # refused while they were in flight
    stopping.gateway.process.wait(15)
    assert len(stopping.gateway.log_lines("POST /v1/chat/completions 200")) == 2
    assert in_flight(stopping.state) == 0


@pytest.mark.parametrize("stopping", [("--drain", "1")], indirect=True)
def test_a_request_stalled_past_the_drain_is_cut_and_its_budget_released(
    stopping: Stopping,
) -> None:
    keys = stopping.world.groq_keys
    keys[0].script(Reply.stall(10.0))
    keys[1].script(Reply.stream(chunks=["cut ", "short"], stall_after=1, stall_seconds=10.0))
    answered = stopping.submit("completion", complete)
    stopping.wait_arrived(1)  # one at a time: the pool's first key, then its second
    streamed = stopping.submit("stream", stream)
    stopping.wait_arrived(2)
    # Both are in flight at the provider: the stream has sent its first token.
    wait_until(lambda: in_flight(stopping.state) == 2, 10, "both reservations")

    signalled = time.monotonic()
    stopping.gateway.process.send_signal(signal.SIGTERM)
    stopping.gateway.process.wait(1 + EXIT_MARGIN_S)
    exited = time.monotonic() - signalled

    with pytest.raises(openai.APIError):  # an error, not a hang and not an answer
        answered.result(timeout=EXIT_MARGIN_S)
    with pytest.raises(openai.APIError):  # raised while reading the stream
        streamed.result(timeout=EXIT_MARGIN_S)
    assert exited < 1 + EXIT_MARGIN_S
    assert max(stopping.finished.values()) - signalled < 1 + EXIT_MARGIN_S
    assert in_flight(stopping.state) == 0  # cut, and their budgets released on the way out


def test_sigterm_exits_0_and_withdraws_the_discovery_file(stopping: Stopping) -> None:
    (announcement,) = stopping.home.rglob("gateway.json")
    assert stopping.gateway.stop(signal.SIGTERM) == 0
    assert not announcement.exists()
