"""`router.map`: many requests at once, results in completion order.

Concurrency is an upper bound: with pacing, requests wait for budget rather than hitting 429s,
so the pool runs as fast as its limits allow and not faster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from llmroute.attempt import Result
from llmroute.errors import LLMRouteError


class Request(Protocol):
    @property
    def messages(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def task(self) -> str | None: ...

    @property
    def params(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class Outcome:
    request: Any  # the request as given, so the caller can tell which it was
    result: Result | None
    error: LLMRouteError | None


async def map_requests(
    answer: Callable[[Request], Awaitable[Result]],
    requests: Iterable[Request],
    *,
    concurrency: int,
) -> AsyncIterator[Outcome]:
    """`answer(request)` for each request, at most `concurrency` at once."""
    finished: asyncio.Queue[Outcome | BaseException] = asyncio.Queue()
    slots = asyncio.Semaphore(concurrency)
    workers: set[asyncio.Task[None]] = set()
    started = 0

    async def work(request: Request) -> None:
        try:
            result = await answer(request)
            finished.put_nowait(Outcome(request=request, result=result, error=None))
        except LLMRouteError as exc:
            finished.put_nowait(Outcome(request=request, result=None, error=exc))
        except Exception as exc:  # noqa: BLE001 - a bug: carried to the consumer, raised there
            finished.put_nowait(exc)
        finally:
            slots.release()

    async def feed() -> None:
        nonlocal started
        for request in requests:
            await slots.acquire()
            started += 1
            worker = asyncio.create_task(work(request))
            workers.add(worker)
            worker.add_done_callback(workers.discard)

    feeder = asyncio.create_task(feed())
    done = 0
    try:
        while not (feeder.done() and done == started):
            item = await _next(finished, feeder)
            if item is None:
                continue
            done += 1
            if isinstance(item, BaseException):
                raise item
            yield item
        await feeder  # surfaces an error of the request iterator itself
    finally:
        feeder.cancel()
        for worker in list(workers):
            worker.cancel()
        await asyncio.gather(feeder, *workers, return_exceptions=True)


async def _next(
    finished: asyncio.Queue[Outcome | BaseException], feeder: asyncio.Task[None]
) -> Outcome | BaseException | None:
    """The next finished request; None when the feeder ended first (recheck the count)."""
    if not finished.empty():
        return finished.get_nowait()
    if feeder.done():
        return await finished.get()
    getter = asyncio.ensure_future(finished.get())
    await asyncio.wait({getter, feeder}, return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    return None
