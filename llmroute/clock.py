"""Time as a dependency: decisions take `now()`, waits use `sleep()` and limits `timeout()`,
so tests run the request loop on a fake clock and never sleep."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds (cooldowns are shared between processes, so wall time, not monotonic)."""

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """A scope that raises TimeoutError when `seconds` pass before it ends."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)
