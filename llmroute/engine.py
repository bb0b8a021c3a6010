"""The request engine under every caller (`complete`, `stream`, `map`, the gateway).

Three objects, one job each:
- `Engine`: what all requests share: pools, state store, upstream, clock, health, pacer,
  turns, observer, redactor.
- `Dispatch`: one request walking its route: takes its turn, picks the next candidate whose
  budget it can hold, waits when everything is cooling down, fails when nothing frees in time.
  Callers run it as `async with`: its exit is the one place every request ends, and is logged.
- `Lease`: one attempt at one candidate, with its budget held. It ends in exactly one outcome,
  and each outcome settles budget, health and the record in one method: `answered`, `failed`,
  `broke` (a stream cut after its first token) or `cancelled`.

Callers only move bytes: they send through the lease, read what comes back, and report how it
ended. Every decision (classification, cooldowns, pacing, the deadline rule) is made here or
in the pure modules this one calls.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmroute.attempt import Attempt, Candidate, Result, Usage, Waiting
from llmroute.classify import UPSTREAM_FAILURES, classify
from llmroute.clock import Clock, SystemClock
from llmroute.config import ProviderConfig, RouteEntry, parse_entry
from llmroute.cooldowns import CooldownPolicy
from llmroute.errors import (
    ConfigError,
    NoUsableCandidateError,
    StreamBrokenError,
    UnknownRouteError,
)
from llmroute.failures import Failure, FailureKind
from llmroute.health import Health
from llmroute.keys import Redactor
from llmroute.pacing import Pacer, estimate_cost
from llmroute.pools import Pool, candidates, missing_key_hint
from llmroute.quirks import adapt_params
from llmroute.request import DEADLINE_REACHED, RequestRun
from llmroute.requestlog import LogPolicy, RequestLog
from llmroute.requestlog.logfile import log_path
from llmroute.requestlog.record import ended
from llmroute.setup import Setup
from llmroute.state.base import Reservation
from llmroute.turns import Turns
from llmroute.upstream import Reply, SendStamp, Upstream

if TYPE_CHECKING:
    from llmroute.sse import EventStream, StreamEvent

log = logging.getLogger("llmroute")
Messages = Sequence[Mapping[str, Any]]


Event = Attempt | Waiting
Observer = Callable[[Event], None]


class Engine:
    def __init__(
        self,
        setup: Setup,
        *,
        upstream: Upstream | None = None,
        clock: Clock | None = None,
        policy: CooldownPolicy | None = None,
        observer: Observer | None = None,
        log: LogPolicy | None = None,
    ) -> None:
        self.config = setup.config
        self.pools: Mapping[str, Pool] = setup.pools
        self.store = setup.store
        self.upstream = upstream or _sdk_upstream()
        self.clock = clock or SystemClock()
        self.observer = observer
        self.redact = Redactor([k.secret for p in self.pools.values() for k in p.keys])
        self.health = Health(self.store, policy or CooldownPolicy(), self.clock)
        self.pacer = Pacer(self.config, self.store, self.clock)
        self.turns = Turns()
        self.log_path = log_path(self.config, setup.env)  # read by `usage`, even when off
        self.log = None if log is None else RequestLog(
            log, self.config.settings, self.log_path, self.redact
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.upstream.aclose()
        self.store.close()
        if self.log is not None:
            self.log.close()  # writes what is queued

    def route(self, task: str | None = None) -> tuple[RouteEntry, ...]:
        """A task's entries (with `fallback`), or one pinned `provider:model` entry."""
        task = task or self.config.settings.default_task
        if ":" not in task:
            return self.config.route(task)
        try:
            entry = parse_entry(task, "--model")
        except ConfigError as exc:
            raise UnknownRouteError(str(exc)) from None
        if entry.provider not in self.config.providers:
            known = ", ".join(sorted(self.config.providers))
            raise UnknownRouteError(
                f"{self.config.source}: no provider {entry.provider!r} for {task!r}; "
                f"known providers: {known}"
            )
        return (entry,)

    def dispatch(
        self,
        task: str | None,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> Dispatch:
        """Start one request; `deadline` covers all its attempts, `timeout` each of them."""
        entries = self.route(task)
        if not any(self.pools[e.provider].usable for e in entries):
            raise NoUsableCandidateError(
                f"task {task or self.config.settings.default_task!r} has no usable provider: "
                f"set {missing_key_hint(entries, self.pools) or 'an API key'} "
                "in the environment or a .env file"
            )
        return Dispatch(
            self, entries, messages, params, route=task or self.config.settings.default_task,
            deadline=deadline or self.config.settings.deadline, timeout=timeout,
        )  # fmt: skip

    def classify(self, exc: Exception) -> Failure:
        failure = classify(exc, now=self.clock.now(), redact=self.redact)
        if failure is None:
            raise exc  # not an upstream failure: a bug, to be seen
        return failure

    def observe(self, event: Event) -> None:
        if isinstance(event, Attempt):
            log.info(
                "%s %s %s %.3fs", event.candidate.label, event.outcome, event.reason,
                event.latency_s,
            )  # fmt: skip
        if self.observer is not None:
            self.observer(event)


def _sdk_upstream() -> Upstream:
    from llmroute.upstream import OpenAIUpstream  # the openai SDK: only when a call is made

    return OpenAIUpstream()


class Dispatch:
    """One request: its candidates, one pass after another, within one deadline. Run it as
    `async with dispatch:`, whose exit logs how it ended."""

    def __init__(
        self,
        engine: Engine,
        entries: tuple[RouteEntry, ...],
        messages: Messages,
        params: Mapping[str, Any],
        *,
        route: str,
        deadline: float,
        timeout: float | None,
    ) -> None:
        self.engine, self.entries, self.route = engine, entries, route
        self.messages, self.params = messages, params
        self.timeout = timeout  # per attempt, over the provider's and the settings' own
        self.run = RequestRun(engine.clock.now() + deadline)
        self.cost = estimate_cost(messages, params)
        self.started = time.perf_counter()
        self.started_at = time.time()  # wall time, for the log
        self._result: Result | None = None
        self._passes = self._walk()

    async def __aenter__(self) -> Dispatch:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The request ended: answered (`result` was made), failed, rejected, broken off, or
        interrupted. Every caller's requests end here, so this is where they are logged."""
        log = self.engine.log
        if log is None:
            return
        log.put(ended(
            at=self.started_at, source=log.source, route=self.route, messages=self.messages,
            attempts=self.run.attempts, latency_s=time.perf_counter() - self.started,
            waited_s=self.run.waited_s, result=self._result, error=error, content=log.content,
        ))  # fmt: skip

    def _walk(self) -> Iterator[Candidate]:
        return candidates(self.entries, self.engine.pools, self.engine.store.advance_cursor)

    def remaining(self) -> float:
        return self.run.deadline - self.engine.clock.now()

    async def next(self) -> Lease:
        """The next candidate that may be called now, its budget held. First come, first
        served among requests for the same route; waits for the earliest candidate when all
        are cooling down or out of budget, or raises when none frees before the deadline."""
        engine, run = self.engine, self.run
        async with engine.turns.turn(self.entries):
            while True:
                for candidate in self._passes:
                    if not run.admits(candidate, engine.observe):
                        continue
                    blocking = engine.health.blocking(candidate)
                    if blocking is not None:
                        run.wait_for(candidate, blocking, engine.clock.now(), engine.observe)
                        continue
                    if engine.clock.now() >= run.deadline:
                        run.fail(engine.clock.now(), None)
                    reservation = engine.pacer.reserve(candidate, self.cost)
                    if reservation.granted:
                        return Lease(self, candidate, reservation)
                    run.no_budget(
                        candidate, reservation.free_at, engine.clock.now(), engine.observe
                    )
                if not run.called_this_pass:
                    await self._wait_or_fail()
                run.next_pass()
                self._passes = self._walk()

    async def _wait_or_fail(self) -> None:
        """Nothing could be called in this pass: wait for the earliest candidate, or give up."""
        engine, run = self.engine, self.run
        now = engine.clock.now()
        run.check_rejected()
        soonest = run.soonest()
        if soonest is not None and soonest[0] < run.deadline and now < run.deadline:
            until, candidate, reason = soonest
            seconds = max(0.0, until - now)
            engine.observe(Waiting(seconds, candidate, reason))
            await engine.clock.sleep(seconds)
            run.waited_s += seconds
            return
        run.fail(now, soonest[0] if soonest else None)

    def result(
        self,
        lease: Lease,
        *,
        content: str,
        usage: Usage | None,
        finish_reason: str | None,
        response: Mapping[str, Any],
    ) -> Result:
        """The answer, once `lease` has answered; a stream's TTFT counts from the request."""
        first = lease.first_content_at
        ttft_s = None if first is None else first - self.started
        self._result = Result(
            content=content, candidate=lease.candidate,
            latency_s=time.perf_counter() - self.started, usage=usage,
            attempts=tuple(self.run.attempts), finish_reason=finish_reason, ttft_s=ttft_s,
            waited_s=self.run.waited_s, response=response,
        )  # fmt: skip
        return self._result


class Lease:
    """One attempt at one candidate, its budget held until the attempt's outcome settles it."""

    def __init__(self, dispatch: Dispatch, candidate: Candidate, reservation: Reservation) -> None:
        self.dispatch, self.candidate, self.reservation = dispatch, candidate, reservation
        engine = dispatch.engine
        self.engine = engine
        self.provider: ProviderConfig = engine.config.providers[candidate.provider]
        # Timeout resolution, one rule: the caller's, else the provider's, else the settings'.
        self.configured = self.provider.timeout or engine.config.settings.timeout
        self.timeout = dispatch.timeout or self.configured
        self.stamp = SendStamp(engine.clock.now)
        self.called_at = engine.clock.now()
        self.started = time.perf_counter()
        self.stream: EventStream | None = None
        self.headers: Mapping[str, str] = {}  # a stream's, once it opened
        self.heard_at: float | None = None  # when a stream's headers came
        self.events: AsyncGenerator[StreamEvent, None] | None = None
        self.first_content_at: float | None = None  # streams: perf_counter at first content
        self._own = self._limit = self._fair = self.timeout
        self._expired = f"no answer within {self.timeout:.1f}s"

    @property
    def sent_at(self) -> float:
        return self.stamp.at or self.called_at

    @property
    def latency_s(self) -> float:
        return time.perf_counter() - self.started

    # -- sending -------------------------------------------------------------------------

    @asynccontextmanager
    async def limited(
        self, own: float | None = None, expired: str = "", *, fair: float | None = None
    ) -> AsyncIterator[float]:
        """The part of the attempt that may still fail over: it runs under `own` seconds (the
        attempt timeout by default), cut by the request's deadline. `fair` is what the config
        grants a provider for this part (the configured attempt timeout by default): a timeout
        counts against the provider only if it had that long. A failure inside is settled
        (`failed`) and swallowed, so the caller's code after the block is the fallback path;
        anything else (Ctrl-C, a reader gone, a bug) frees what is held and goes on up."""
        self._own = self.timeout if own is None else own
        self._fair = self.configured if fair is None else fair
        self._limit = max(0.0, min(self._own, self.dispatch.remaining()))
        self._expired = expired or f"no answer within {self._own:.1f}s"
        try:
            async with self.engine.clock.timeout(self._limit):
                yield self._limit
        except UPSTREAM_FAILURES as exc:
            await self.failed(exc)
        except BaseException:
            await self.cancelled()
            raise

    async def chat(self) -> Reply:
        """The whole answer in one call (inside `limited`)."""
        engine, provider = self.engine, self.provider
        engine.upstream.prepare(self.candidate, provider.base_url)
        return await engine.upstream.chat(
            self.candidate, provider.base_url, self.dispatch.messages, self.body(),
            self._limit, self.stamp,
        )  # fmt: skip

    async def open_stream(self) -> AsyncGenerator[StreamEvent, None]:
        """A streamed answer's events, once the provider has sent its headers (inside
        `limited`). The lease closes them when it settles."""
        engine, provider = self.engine, self.provider
        engine.upstream.prepare(self.candidate, provider.base_url)
        self.stream = await engine.upstream.open_stream(
            self.candidate, provider.base_url, self.dispatch.messages, self.body(),
            self.timeout, self.stamp,
        )  # fmt: skip
        self.headers, self.heard_at = self.stream.headers, engine.clock.now()
        self.events = self.stream.events()
        return self.events

    def body(self) -> dict[str, Any]:
        return adapt_params(self.provider, self.dispatch.params)

    def first_content(self) -> None:
        """A stream's first content arrived: from now on it is this candidate's answer."""
        self.first_content_at = time.perf_counter()

    @property
    def ttft_s(self) -> float | None:
        """From sending this attempt to its first content."""
        return None if self.first_content_at is None else self.first_content_at - self.started

    # -- outcomes: each settles budget, health and the record once ------------------------

    async def answered(self, headers: Mapping[str, str], usage: Usage | None) -> None:
        engine, c = self.engine, self.candidate
        tokens = usage.total_tokens if usage else None
        engine.pacer.finish(c, self.reservation, self.sent_at, headers, tokens, self.heard_at)
        engine.health.answered(c)
        engine.observe(self.dispatch.run.answered(c, self.latency_s, self.ttft_s))
        await self._close()

    async def failed(self, exc: Exception) -> None:
        """Before the answer began: the next candidate may answer instead."""
        engine, c = self.engine, self.candidate
        failure, providers_fault = self._failure(exc)
        if providers_fault:
            engine.health.failed(c, failure, self.provider.limits_per)
        else:  # our own limits ran out: trying it again in this request would go the same way
            self.dispatch.run.rule_out(c)
        heard_at = None if failure.headers else self.heard_at
        engine.pacer.finish(
            c, self.reservation, self.sent_at, failure.headers or self.headers, heard_at=heard_at,
            answered=failure.status is not None or self.stream is not None,
        )  # fmt: skip
        await self._close()
        engine.observe(self.dispatch.run.failed(c, failure, self.latency_s))

    async def broke(self, exc: Exception, partial: str, chunks: int) -> StreamBrokenError:
        """After the first content: the answer is cut, and no other model may finish it."""
        engine, c = self.engine, self.candidate
        if isinstance(exc, TimeoutError):
            failure = Failure(FailureKind.TIMEOUT, f"the stream stalled for {self.timeout:.1f}s")
        else:
            failure = engine.classify(exc)
        stalled_too_soon = isinstance(exc, TimeoutError) and self.timeout < self.configured
        if not stalled_too_soon:  # a pause shorter than the config allows is the caller's call
            engine.health.failed(c, failure, self.provider.limits_per)
        engine.pacer.finish(c, self.reservation, self.sent_at, self.headers, heard_at=self.heard_at)
        await self._close()
        why = f"broke off after {chunks} chunk(s): {failure.message}"
        run = self.dispatch.run
        engine.observe(run.broke(c, failure, why, self.latency_s, self.ttft_s))
        return StreamBrokenError(
            f"the answer from {c.label} broke off ({failure.kind}: {failure.message}); "
            "the text above is incomplete",
            run.attempts,
            partial,
        )

    async def cancelled(self) -> None:
        """The caller went away (Ctrl-C, a reader that stopped): free the budget and the
        connection now; the candidate did nothing wrong."""
        self.engine.pacer.finish(self.candidate, self.reservation, self.sent_at, {}, answered=False)
        await self._close()

    def _failure(self, exc: Exception) -> tuple[Failure, bool]:
        """What went wrong, and whether the candidate is to blame. Shared state records only
        what providers did: a timeout is the request's own when its deadline cut the attempt
        shorter than its limit (then it says so), or when the caller chose a limit shorter
        than the config grants; either way it counts against no provider."""
        if isinstance(exc, TimeoutError):
            failure = Failure(FailureKind.TIMEOUT, self._expired)
        else:
            failure = self.engine.classify(exc)
        if failure.kind is not FailureKind.TIMEOUT or failure.status is not None:
            return failure, True
        if self._limit < self._own:
            return Failure(FailureKind.TIMEOUT, DEADLINE_REACHED), False
        return Failure(FailureKind.TIMEOUT, self._expired), self._limit >= self._fair

    async def _close(self) -> None:
        events, stream, self.events, self.stream = self.events, self.stream, None, None
        # Closing a broken stream must not hide why it broke: whatever closing raises is moot.
        with contextlib.suppress(Exception):
            if events is not None:
                await events.aclose()
            if stream is not None:
                await stream.aclose()
