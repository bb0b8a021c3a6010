"""Sending a bench: N streamed requests per target through the router, `concurrency` at a time.

Targets run one after another, so that they do not slow each other down. Every request goes
through the router: pacing, cooldowns and the shared state hold as for any other request. A
candidate's latency and time to first token count from the moment its answering request left
(stamped at the upstream seam), not from a wait for budget or a fallback before it; a route's
count from the start of the request, as its user sees them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmroute.attempt import Attempt, Candidate, Result
from llmroute.bench.stats import NOT_SENT, OK, Sample, Summary, summarize
from llmroute.bench.target import Target
from llmroute.config import Config
from llmroute.errors import RequestFailedError, RequestRejectedError
from llmroute.upstream import SendStamp, Upstream

if TYPE_CHECKING:
    from llmroute.router import Event, Router
    from llmroute.sse import EventStream
    from llmroute.upstream import Reply


@dataclass(frozen=True)
class BenchSpec:
    targets: Sequence[Target]
    requests: int
    concurrency: int
    messages: Sequence[Mapping[str, Any]]
    params: Mapping[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    timeout: float | None = None
    ttft_timeout: float | None = None


class Listener(Protocol):
    """Told as a bench goes (a progress bar)."""

    def started(self, target: Target, total: int) -> None: ...

    def measured(self, target: Target, sample: Sample) -> None: ...

    def waiting(self, target: Target, seconds: float) -> None: ...


class Probe:
    """What one request went through, noted by the upstream seam and the router's observer in
    the request's own task (a context variable keeps concurrent requests apart)."""

    def __init__(self) -> None:
        self.called_at: float | None = None
        self.stamp: SendStamp | None = None
        self.waited_s = 0.0

    @property
    def sent_at(self) -> float | None:
        """When the latest attempt left (the answering one, for an answered request)."""
        return self.stamp.at if self.stamp and self.stamp.at else self.called_at


_PROBE: ContextVar[Probe | None] = ContextVar("llmroute_bench_probe", default=None)


class TimedUpstream:
    """The router's upstream, noting when each attempt is sent."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner

    def prepare(self, candidate: Candidate, base_url: str) -> None:
        self.inner.prepare(candidate, base_url)

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply:
        _note_send(stamp)
        return await self.inner.chat(candidate, base_url, messages, params, timeout, stamp)

    async def open_stream(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> EventStream:
        _note_send(stamp)
        return await self.inner.open_stream(candidate, base_url, messages, params, timeout, stamp)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _note_send(stamp: SendStamp) -> None:
    probe = _PROBE.get()
    if probe is not None:
        probe.called_at, probe.stamp = time.time(), stamp


class _Quiet:
    def started(self, target: Target, total: int) -> None:
        pass

    def measured(self, target: Target, sample: Sample) -> None:
        pass

    def waiting(self, target: Target, seconds: float) -> None:
        pass


async def run_bench(
    config: Config,
    env: Mapping[str, str],
    spec: BenchSpec,
    listener: Listener | None = None,
    *,
    upstream: Upstream | None = None,
) -> list[Summary]:
    """Measure each target in turn; a summary per target, in the order given."""
    from llmroute.router import Router, Waiting
    from llmroute.upstream import OpenAIUpstream

    heard = listener or _Quiet()
    current: list[Target] = []

    def observe(event: Event) -> None:
        probe = _PROBE.get()
        if isinstance(event, Waiting) and probe is not None:
            probe.waited_s += event.seconds
            heard.waiting(current[-1], event.seconds)

    timed = TimedUpstream(upstream or OpenAIUpstream())
    summaries = []
    async with Router(config, env=env, upstream=timed, observer=observe) as router:
        for target in spec.targets:
            current.append(target)
            heard.started(target, spec.requests)
            samples = await _measure(router, target, spec, heard)
            summaries.append(summarize(target, samples))
    return summaries


async def _measure(
    router: Router, target: Target, spec: BenchSpec, heard: Listener
) -> list[Sample]:
    samples: list[Sample] = []
    turns: Iterator[int] = iter(range(spec.requests))  # shared: each worker takes the next

    async def worker() -> None:
        for _ in turns:
            sample = await _one(router, target, spec)
            samples.append(sample)
            heard.measured(target, sample)

    tasks = [asyncio.create_task(worker()) for _ in range(min(spec.concurrency, spec.requests))]
    try:
        await asyncio.gather(*tasks)
    finally:  # one worker's error (or Ctrl-C) stops the others
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return samples


async def _one(router: Router, target: Target, spec: BenchSpec) -> Sample:
    probe = Probe()
    token = _PROBE.set(probe)
    try:
        stream = router.stream(
            target.name, spec.messages, deadline=spec.deadline, timeout=spec.timeout,
            ttft_timeout=spec.ttft_timeout, **spec.params,
        )  # fmt: skip
        first: float | None = None
        async for _text in stream:
            first = first or time.time()
        return _answered(target, stream.result, probe, first, time.time())
    except (RequestFailedError, RequestRejectedError) as exc:
        return _failed(exc.attempts, str(exc), probe)
    finally:
        _PROBE.reset(token)


def _answered(
    target: Target, result: Result, probe: Probe, first: float | None, end: float
) -> Sample:
    if target.route:
        latency, ttft = result.latency_s, result.ttft_s
    else:
        sent = probe.sent_at or end - result.latency_s
        latency, ttft = max(0.0, end - sent), max(0.0, (first or end) - sent)
    return Sample(
        OK,
        latency_s=latency,
        ttft_s=ttft,
        output_tokens=result.usage.completion_tokens if result.usage else None,
        key=result.candidate.key.alias,
        rate_limited=_429s(result.attempts),
        waited_s=probe.waited_s,
    )


def _failed(attempts: Sequence[Attempt], message: str, probe: Probe) -> Sample:
    """Classified by the last attempt that reached a provider; `not_sent` when none did."""
    called = [a for a in attempts if a.called]
    last = called[-1] if called else (attempts[-1] if attempts else None)
    reason = f"{last.candidate.key.alias}: {last.reason}" if last else message
    return Sample(
        called[-1].outcome if called else NOT_SENT,
        rate_limited=_429s(attempts),
        waited_s=probe.waited_s,
        reason=reason,
    )


def _429s(attempts: Sequence[Attempt]) -> int:
    return sum(1 for a in attempts if a.status == 429)
