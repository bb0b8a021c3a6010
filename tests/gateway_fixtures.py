"""Fixtures for the gateway test modules that share one gateway per module: each such module
defines a module-scoped `shared` (a `tests.gateway.Shared`); these build on it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.gateway import Gateway, Shared
from tests.world import World, assert_no_secret


@pytest.fixture
def world(shared: Shared) -> World:
    shared.reset()
    return shared.world


@pytest.fixture
def gateway(shared: Shared, world: World) -> Iterator[Gateway]:
    yield shared.gateway
    # Whatever the test did: no 500 and no key in any line of the access log.
    lines = shared.gateway.lines
    assert not [line for line in lines if " 500 " in line], "\n".join(lines)  # with tracebacks
    assert_no_secret(*shared.gateway.lines)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        yield client
