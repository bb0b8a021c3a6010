"""A streamed answer: fall back freely until the first content token, never after it.

Before the first token a 429, an error status, a stall (the time-to-first-token timeout) or an
error event moves on to the next candidate, and the user sees nothing of it. After it, a
failure ends the answer: the text so far stands, the break is raised as StreamBrokenError, and
the candidate is cooled down like any failed attempt. Two models' answers are never spliced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmroute.attempt import Attempt, Candidate, Result
from llmroute.classify import UPSTREAM_FAILURES
from llmroute.errors import StreamBrokenError, UsageError
from llmroute.failures import Failure, FailureKind, UpstreamProtocolError
from llmroute.pacing import estimate_cost
from llmroute.quirks import adapt_params
from llmroute.request import RequestRun
from llmroute.sse import EventStream, StreamEnd, StreamEvent, TextDelta
from llmroute.state.base import Reservation
from llmroute.upstream import SendStamp

if TYPE_CHECKING:
    from llmroute.router import Passes, Router


class _Opened:
    """A candidate whose stream has produced its first content token."""

    def __init__(
        self,
        candidate: Candidate,
        reservation: Reservation,
        stream: EventStream,
        events: AsyncGenerator[StreamEvent, None],
        first: str,
        end: StreamEnd | None,
        sent_at: float,
        started: float,
    ) -> None:
        self.candidate, self.reservation, self.stream = candidate, reservation, stream
        self.events, self.first, self.sent_at = events, first, sent_at
        self.end = end  # set when the answer ended before any text: an empty answer
        self.started = started  # perf_counter when the attempt was sent
        self.ttft_s = time.perf_counter() - started


class AnswerStream:
    """`async for text in router.stream(...)`, then `.result` (who answered, TTFT, usage).
    To stop early, `await stream.aclose()` or use `async with router.stream(...) as stream`."""

    def __init__(
        self,
        router: Router,
        task: str | None,
        messages: Sequence[Mapping[str, Any]],
        *,
        deadline: float | None,
        timeout: float | None,
        ttft_timeout: float | None,
        params: Mapping[str, Any],
    ) -> None:
        self._router = router
        self._task, self._messages, self._params = task, messages, params
        settings = router.config.settings
        self._deadline = deadline or settings.deadline
        self._timeout = timeout
        self._ttft_timeout = ttft_timeout or settings.ttft_timeout
        self._result: Result | None = None
        self._end = StreamEnd(None, None)
        self._generator: AsyncGenerator[str, None] | None = None

    @property
    def result(self) -> Result:
        if self._result is None:
            raise UsageError("the stream has not finished: iterate it to the end first")
        return self._result

    def __aiter__(self) -> AsyncIterator[str]:
        if self._generator is None:
            self._generator = self._deltas()
        return self._generator

    async def aclose(self) -> None:
        """Stop early: release the answer's connection and budget now (a `break` out of
        `async for` leaves that to the garbage collector)."""
        if self._generator is not None:
            await self._generator.aclose()

    async def __aenter__(self) -> AnswerStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _deltas(self) -> AsyncGenerator[str, None]:
        from llmroute.router import Passes

        router = self._router
        entries = router._usable_route(self._task)
        run = RequestRun(router.clock.now() + self._deadline)
        cost = estimate_cost(self._messages, self._params)
        passes = Passes(entries, router.pools, router.store.advance_cursor)
        started = time.perf_counter()
        opened = await self._first_token(run, passes, cost)
        ttft = time.perf_counter() - started
        parts = [opened.first]
        try:
            if opened.first:
                yield opened.first
        except (asyncio.CancelledError, GeneratorExit):  # the reader stopped at the first token
            await self._abandon(opened)
            raise
        # aclosing: when the reader stops, the inner generator's cleanup runs now, not at exit.
        async with contextlib.aclosing(self._rest(run, opened, parts)) as rest:
            async for text in rest:
                yield text
        end = self._end
        self._result = Result(
            "".join(parts), opened.candidate, time.perf_counter() - started, end.usage,
            tuple(run.attempts), end.finish_reason, ttft, run.waited_s,
        )  # fmt: skip

    async def _first_token(self, run: RequestRun, passes: Passes, cost: Any) -> _Opened:
        router = self._router
        while True:
            async with router.turns.turn(passes.entries):
                candidate, reservation = await router._pick(run, passes, cost)
            opened = await self._open(run, candidate, reservation)
            if opened is not None:
                return opened

    async def _open(
        self, run: RequestRun, candidate: Candidate, reservation: Reservation
    ) -> _Opened | None:
        """Send, and read up to the first content token; None when that failed (recorded)."""
        router = self._router
        provider = router.config.providers[candidate.provider]
        per_attempt = self._timeout or provider.timeout or router.config.settings.timeout
        limit = min(self._ttft_timeout, run.deadline - router.clock.now())
        body = adapt_params(provider, self._params)
        router.upstream.prepare(candidate, provider.base_url)
        stamp = SendStamp(router.clock.now)
        called_at, started = router.clock.now(), time.perf_counter()
        stream: EventStream | None = None
        events: AsyncGenerator[StreamEvent, None] | None = None
        try:
            async with asyncio.timeout(limit):
                stream = await router.upstream.open_stream(
                    candidate, provider.base_url, self._messages, body, per_attempt, stamp
                )
                opened_events = events = stream.events()
                first, end = await _first_text(opened_events)
            sent_at = stamp.at or called_at
            return _Opened(
                candidate, reservation, stream, opened_events, first, end, sent_at, started
            )
        except asyncio.CancelledError:
            router.pacer.finish(candidate, reservation, stamp.at or called_at, {})
            await _close(stream, events)
            raise
        except UPSTREAM_FAILURES as exc:
            failure, cut_by_deadline = self._open_failure(exc, limit)
            if not cut_by_deadline:
                router.health.failed(candidate, failure)
            headers = failure.headers or (stream.headers if stream else {})
            router.pacer.finish(candidate, reservation, stamp.at or called_at, headers)
            router._observe(run.failed(candidate, failure, time.perf_counter() - started))
            await _close(stream, events)
            return None

    def _open_failure(self, exc: Exception, limit: float) -> tuple[Failure, bool]:
        if not isinstance(exc, TimeoutError):
            return self._router._classify(exc), False
        if limit < self._ttft_timeout:  # the request's deadline ended it, not the candidate
            return Failure(FailureKind.TIMEOUT, "the request deadline was reached"), True
        return Failure(FailureKind.TIMEOUT, f"no first token within {limit:.1f}s"), False

    async def _rest(
        self, run: RequestRun, opened: _Opened, parts: list[str]
    ) -> AsyncGenerator[str, None]:
        """Everything after the first token, or StreamBrokenError with the text so far."""
        router, c = self._router, opened.candidate
        provider = router.config.providers[c.provider]
        stall = self._timeout or provider.timeout or router.config.settings.timeout
        end: StreamEnd | None = opened.end
        try:
            while end is None:
                event = await asyncio.wait_for(anext(opened.events), stall)
                if isinstance(event, StreamEnd):
                    end = event
                else:
                    parts.append(event.text)
                    yield event.text
        except (asyncio.CancelledError, GeneratorExit):  # Ctrl-C, or the reader stopped
            await self._abandon(opened)
            raise
        except UPSTREAM_FAILURES as exc:
            await self._broken(run, opened, parts, exc, stall)
        assert end is not None  # the loop only leaves with an end, or by raising
        self._end = end
        tokens = end.usage.total_tokens if end.usage else None
        router.pacer.finish(c, opened.reservation, opened.sent_at, opened.stream.headers, tokens)
        router.health.answered(c)
        latency = time.perf_counter() - opened.started
        router._observe(run.answered(c, latency, opened.ttft_s))
        await _close(opened.stream, opened.events)

    async def _abandon(self, opened: _Opened) -> None:
        """The reader gave up on the answer: release its budget and its connection."""
        self._router.pacer.finish(opened.candidate, opened.reservation, opened.sent_at, {})
        await _close(opened.stream, opened.events)

    async def _broken(
        self,
        run: RequestRun,
        opened: _Opened,
        parts: list[str],
        exc: Exception,
        stall: float,
    ) -> None:
        router, c = self._router, opened.candidate
        if isinstance(exc, TimeoutError):
            failure = Failure(FailureKind.TIMEOUT, f"the stream stalled for {stall:.1f}s")
        else:
            failure = router._classify(exc)
        router.health.failed(c, failure)
        router.pacer.finish(c, opened.reservation, opened.sent_at, opened.stream.headers)
        why = f"broke off after {len(parts)} chunk(s): {failure.message}"
        latency = time.perf_counter() - opened.started
        attempt = Attempt(c, failure.kind, why, failure.status, latency, opened.ttft_s)
        run.attempts.append(attempt)
        router._observe(attempt)
        await _close(opened.stream, opened.events)
        raise StreamBrokenError(
            f"the answer from {c.label} broke off ({failure.kind}: {failure.message}); "
            "the text above is incomplete",
            run.attempts,
            "".join(parts),
        )


async def _first_text(
    events: AsyncGenerator[StreamEvent, None],
) -> tuple[str, StreamEnd | None]:
    """Skip the role chunk and empty deltas. An answer that ends before any text is empty."""
    async for event in events:
        if isinstance(event, TextDelta):
            return event.text, None
        return "", event
    raise UpstreamProtocolError("the stream ended before it began")


async def _close(
    stream: EventStream | None, events: AsyncGenerator[StreamEvent, None] | None
) -> None:
    """Close what was opened; closing a broken stream must not hide why it broke."""
    with contextlib.suppress(Exception):
        if events is not None:
            await events.aclose()
        if stream is not None:
            await stream.aclose()
