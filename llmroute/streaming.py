"""A streamed answer: fall back freely until the first content, never after it.

Before the first content a 429, an error status, a stall (the time-to-first-token timeout) or
an error event moves on to the next candidate, and the reader sees nothing of it. After it, a
failure ends the answer: the text so far stands, the break is raised as StreamBrokenError, and
the candidate is cooled down like any failed attempt. Two models' answers are never spliced.
What settles each attempt lives in the engine; this module only reads events.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

from llmroute.assembly import Assembly
from llmroute.attempt import Attempt, Candidate, Result
from llmroute.classify import UPSTREAM_FAILURES
from llmroute.engine import Dispatch, Engine, Lease
from llmroute.errors import UsageError
from llmroute.failures import UpstreamProtocolError
from llmroute.sse import Chunk, StreamEnd, StreamEvent

T = TypeVar("T")
Events = AsyncIterator[StreamEvent]
Head = tuple[list[Chunk], StreamEnd | None]


class AnswerStream:
    """`async for text in router.stream(...)`, then `.result` (who answered, TTFT, usage).
    `async for chunk in stream.chunks()` gives the provider's chunks (`chunk.data`) instead.
    To stop early, `await stream.aclose()` or use `async with router.stream(...) as stream`."""

    def __init__(
        self,
        engine: Engine,
        task: str | None,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        *,
        deadline: float | None,
        timeout: float | None,
        ttft_timeout: float | None,
    ) -> None:
        self._engine = engine
        self._request = (task, messages, params, deadline, timeout)
        self._ttft_timeout = ttft_timeout or engine.config.settings.ttft_timeout
        self._result: Result | None = None
        self._generator: AsyncGenerator[Any, None] | None = None
        self._dispatch: Dispatch | None = None
        self._lease: Lease | None = None  # the candidate answering, once its content began

    @property
    def result(self) -> Result:
        if self._result is None:
            raise UsageError("the stream has not finished: iterate it to the end first")
        return self._result

    @property
    def candidate(self) -> Candidate | None:
        """Who is answering, from the first content on (None before it)."""
        return self._lease.candidate if self._lease else None

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt so far: before the first content, the fallbacks taken to get it."""
        return tuple(self._dispatch.run.attempts) if self._dispatch else ()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._reading(self._texts())

    def chunks(self) -> AsyncIterator[Chunk]:
        """Every chunk of the answering candidate as the provider sent it (role, content,
        tool calls, the final usage chunk); nothing of the candidates that failed first."""
        return self._reading(self._chunks())

    def _reading(self, generator: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
        if self._generator is not None:
            raise UsageError("a stream is read once: ask router.stream() again")
        self._generator = generator
        return generator

    async def aclose(self) -> None:
        """Stop early: release the answer's connection and budget now (a `break` out of
        `async for` leaves that to the garbage collector)."""
        if self._generator is not None:
            await self._generator.aclose()

    async def __aenter__(self) -> AnswerStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _texts(self) -> AsyncGenerator[str, None]:
        # aclosing: when the reader stops, the inner generator's cleanup runs now, not at exit.
        async with contextlib.aclosing(self._chunks()) as chunks:
            async for chunk in chunks:
                if chunk.text:
                    yield chunk.text

    async def _chunks(self) -> AsyncGenerator[Chunk, None]:
        task, messages, params, deadline, timeout = self._request
        dispatch = self._engine.dispatch(task, messages, params, deadline=deadline, timeout=timeout)
        self._dispatch = dispatch
        async with dispatch:  # its exit logs the request, however the stream ends
            lease, events, (head, end) = await self._first_content(dispatch)
            self._lease = lease
            assembly = Assembly()
            try:
                for chunk in head:
                    assembly.add(chunk)
                    yield chunk
                while end is None:
                    async with self._engine.clock.timeout(lease.timeout):  # a stall breaks it
                        event = await anext(events)
                    if isinstance(event, StreamEnd):
                        end = event
                    else:
                        assembly.add(event)
                        yield event
            except UPSTREAM_FAILURES as exc:
                raise await lease.broke(exc, assembly.text, len(assembly.pieces)) from exc
            except BaseException:  # Ctrl-C, or the reader stopped: free budget and connection
                await lease.cancelled()
                raise
            await lease.answered(lease.headers, end.usage)
            self._result = dispatch.result(
                lease, content=assembly.text, usage=end.usage, finish_reason=end.finish_reason,
                response=assembly.response(end),
            )  # fmt: skip

    async def _first_content(self, dispatch: Dispatch) -> tuple[Lease, Events, Head]:
        """Candidates in turn until one sends content (or ends, empty) within the first-token
        timeout; the chunks up to there are held back until then."""
        expired = f"no first token within {self._ttft_timeout:.1f}s"
        while True:
            lease = await dispatch.next()
            fair = self._engine.config.settings.ttft_timeout
            async with lease.limited(self._ttft_timeout, expired, fair=fair):
                events = await lease.open_stream()
                head = await _head(events)
                lease.first_content()
                return lease, events, head


async def _head(events: AsyncIterator[StreamEvent]) -> Head:
    """The chunks up to the first with content (role chunks come before it), or to the end of
    an answer that has none."""
    head: list[Chunk] = []
    async for event in events:
        if isinstance(event, StreamEnd):
            return head, event
        head.append(event)
        if event.has_content:
            return head, None
    raise UpstreamProtocolError("the stream ended before it began")
