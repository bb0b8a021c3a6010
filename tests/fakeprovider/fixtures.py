"""pytest fixtures; enable with `pytest_plugins = ["tests.fakeprovider.fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeServer


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A started FakeServer (ready at once, no sleeps), stopped after the test."""
    with FakeServer() as server:
        yield server
