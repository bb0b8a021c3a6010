"""A streamed answer on the wire: SSE events sent as they come, and a client that goes away
stops the work for it (its upstream call and its budget are freed, not left to run out).

Plain ASGI: a framework's streaming response runs a task group and a disconnect listener per
chunk's worth of machinery; this runs one watcher per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TypeVar

from llmroute.gateway.access import Receive, Scope, Send

T = TypeVar("T")
SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class EventStreamResponse:
    """`events` as a 200 `text/event-stream`; `close` frees the answer when the events
    themselves never ran (the client left before the first)."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        headers: Mapping[str, str],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.events, self.close = events, close
        merged = {**SSE_HEADERS, **headers}
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await until_disconnected(receive, self._send(send))
        finally:
            await self.events.aclose()
            await self.close()

    async def _send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        async for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def until_disconnected(receive: Receive, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None when the client disconnects first (then `work` is cancelled,
    which releases what it holds)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when the server itself cancels us: nothing is left running
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return task.result() if not task.cancelled() else None


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
