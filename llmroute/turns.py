"""First come, first served among requests that compete for the same route's capacity.

Without it, every request waiting for a budget wakes at the same instant and races for the one
slot that freed, and a request that just arrived can beat one that has waited for seconds. A
request takes its turn only to pick a candidate and reserve its budget (microseconds, or a
wait when nothing is free); it leaves the line before the upstream call, so requests still run
in parallel.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class Turns:
    def __init__(self) -> None:
        self._lines: dict[Hashable, deque[asyncio.Future[None]]] = {}

    @asynccontextmanager
    async def turn(self, line_key: Hashable) -> AsyncIterator[None]:
        line = self._lines.setdefault(line_key, deque())
        me: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(me)
        try:
            if line[0] is not me:
                await me  # woken by the request ahead when it leaves
            yield
        finally:
            self._leave(line_key, line, me)

    def _leave(
        self, line_key: Hashable, line: deque[asyncio.Future[None]], me: asyncio.Future[None]
    ) -> None:
        was_first = bool(line) and line[0] is me
        line.remove(me)
        if was_first and line and not line[0].done():
            line[0].set_result(None)
        if not line:
            self._lines.pop(line_key, None)
