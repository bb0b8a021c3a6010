"""A separate process that sends N requests through a Router: `python -m tests.worker CONFIG N`.

It counts the state updates it makes (cursor steps, granted reservations) and prints them as
JSON, so that a test can check that many processes sharing one state file lost none.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from typing import Any

from llmroute.environment import load_environment, locate_config
from llmroute.router import Router
from llmroute.state import open_store


class CountingStore:
    """Passes every call through to the real store, counting the updates that matter."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def advance_cursor(self, pool: str) -> int:
        self.counts[f"cursor:{pool}"] += 1
        return int(self.inner.advance_cursor(pool))

    def reserve(self, *args: Any) -> Any:
        reservation = self.inner.reserve(*args)
        self.counts["granted"] += int(reservation.granted)
        return reservation


async def main(path: str, count: int) -> None:
    env = load_environment()
    config = locate_config(path, env)
    store = CountingStore(open_store(config.settings.state))
    async with Router(config, env=env, store=store) as router:
        for _ in range(count):
            await router.complete(None, "hello")
            store.counts["answered"] += 1
    print(json.dumps(store.counts))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
