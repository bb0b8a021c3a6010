"""Sending a bench: N streamed requests per target through the router, `concurrency` at a time.

Targets run one after another, so that they do not slow each other down. Every request goes
through the router: pacing, cooldowns and the shared state hold as for any other request. A
candidate's latency and time to first token are those of its answering attempt (from when it
was sent), not of a wait for budget or a fallback before it; a route's count from the start of
the request, as its user sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmroute.attempt import Attempt, Result
from llmroute.bench.stats import NOT_SENT, OK, Sample, Summary, summarize
from llmroute.bench.target import Target
from llmroute.config import Config
from llmroute.errors import RequestFailedError, RequestRejectedError
from llmroute.requestlog import LIBRARY, LogPolicy
from llmroute.upstream import Upstream

if TYPE_CHECKING:
    from llmroute.router import Event, Router


@dataclass(frozen=True, kw_only=True)
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
    log: LogPolicy | None = LIBRARY,
) -> list[Summary]:
    """Measure each target in turn; a summary per target, in the order given."""
    from llmroute.router import Router, Waiting
    from llmroute.upstream import OpenAIUpstream

    heard = listener or _Quiet()
    current: list[Target] = []

    def observe(event: Event) -> None:
        if isinstance(event, Waiting) and current:
            heard.waiting(current[-1], event.seconds)

    summaries = []
    router = Router(
        config, env=env, upstream=upstream or OpenAIUpstream(), observer=observe, log=log
    )
    async with router:
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
    stream = router.stream(
        target.name, spec.messages, deadline=spec.deadline, timeout=spec.timeout,
        ttft_timeout=spec.ttft_timeout, **spec.params,
    )  # fmt: skip
    try:
        async with stream:
            async for _text in stream:
                pass
    except (RequestFailedError, RequestRejectedError) as exc:
        return _failed(exc.attempts, str(exc), getattr(exc, "waited_s", 0.0))
    return _answered(target, stream.result)


def _answered(target: Target, result: Result) -> Sample:
    """A route counts as its user sees it; an entry from when its answering request left."""
    if target.route:
        latency, ttft = result.latency_s, result.ttft_s
    else:
        latency, ttft = result.answer.latency_s, result.answer.ttft_s
    return Sample(
        OK,
        latency_s=latency,
        ttft_s=ttft if ttft is not None else latency,
        output_tokens=result.usage.completion_tokens if result.usage else None,
        key=result.candidate.key.alias,
        rate_limited=_429s(result.attempts),
        waited_s=result.waited_s,
    )


def _failed(attempts: Sequence[Attempt], message: str, waited_s: float) -> Sample:
    """Classified by the last attempt that reached a provider; `not_sent` when none did."""
    called = [a for a in attempts if a.called]
    last = called[-1] if called else (attempts[-1] if attempts else None)
    reason = f"{last.candidate.key.alias}: {last.reason}" if last else message
    return Sample(
        called[-1].outcome if called else NOT_SENT,
        rate_limited=_429s(attempts),
        waited_s=waited_s,
        reason=reason,
    )


def _429s(attempts: Sequence[Attempt]) -> int:
    return sum(1 for a in attempts if a.status == 429)
