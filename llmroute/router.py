"""The router: walks a task's candidates until one answers, within one deadline."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmroute.attempt import SKIPPED, Attempt, Candidate, Result
from llmroute.budget import Cost
from llmroute.classify import UPSTREAM_FAILURES, classify
from llmroute.clock import Clock, SystemClock
from llmroute.config import Config, RouteEntry, parse_entry
from llmroute.cooldowns import CooldownPolicy
from llmroute.errors import ConfigError, NoUsableCandidateError
from llmroute.failures import Failure, FailureKind
from llmroute.health import Health
from llmroute.keys import Redactor
from llmroute.pacing import Pacer, estimate_cost
from llmroute.pools import Pool, build_pools, candidates, missing_key_hint
from llmroute.quirks import adapt_params
from llmroute.request import RequestRun
from llmroute.state import StateStore, open_store, state_url
from llmroute.state.base import Reservation
from llmroute.turns import Turns
from llmroute.upstream import OpenAIUpstream, Reply, SendStamp, Upstream

if TYPE_CHECKING:
    from llmroute.mapping import Outcome, Request
    from llmroute.streaming import AnswerStream

log = logging.getLogger("llmroute")
Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Waiting:
    """Every candidate is cooling down; the router waits `seconds` for the earliest one."""

    seconds: float
    candidate: Candidate
    reason: str


Event = Attempt | Waiting
Observer = Callable[[Event], None]


class Router:
    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        store: StateStore | None = None,
        upstream: Upstream | None = None,
        clock: Clock | None = None,
        policy: CooldownPolicy | None = None,
        observer: Observer | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.config = config
        self.pools: dict[str, Pool] = build_pools(config, env)
        self.store = store or open_store(state_url(config, env))
        self.upstream = upstream or OpenAIUpstream()
        self.clock = clock or SystemClock()
        self.policy = policy or CooldownPolicy()
        self.observer = observer
        self.redact = Redactor([k.secret for p in self.pools.values() for k in p.keys])
        self.health = Health(self.store, self.policy, self.clock)
        self.pacer = Pacer(config, self.store, self.clock)
        self.turns = Turns()

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Router:
        return cls(config, **kwargs)

    @classmethod
    def from_path(cls, path: str | Path | None = None, **kwargs: Any) -> Router:
        """Find the config as the CLI does (argument, LLMROUTE_CONFIG, ./routes.toml, XDG)."""
        from llmroute.environment import load_environment, locate_config

        env = kwargs.pop("env", None) or load_environment()
        return cls(locate_config(path, env), env=env, **kwargs)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.upstream.aclose()
        self.store.close()

    def route(self, task: str | None = None) -> tuple[RouteEntry, ...]:
        """A task's entries (with `fallback`), or one pinned `provider:model` entry."""
        task = task or self.config.settings.default_task
        if ":" not in task:
            return self.config.route(task)
        entry = parse_entry(task, "--model")
        if entry.provider not in self.config.providers:
            known = ", ".join(sorted(self.config.providers))
            raise ConfigError(
                f"{self.config.source}: no provider {entry.provider!r} for {task!r}; "
                f"known providers: {known}"
            )
        return (entry,)

    async def complete(
        self,
        task: str | None,
        messages: Messages | str,
        *,
        deadline: float | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> Result:
        """Answer `messages` with the first candidate of `task` that can; see DESIGN.md."""
        entries = self._usable_route(task)
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        run = RequestRun(self.clock.now() + (deadline or self.config.settings.deadline))
        cost = estimate_cost(messages, params)
        passes = Passes(entries, self.pools, self.store.advance_cursor)
        started = time.perf_counter()
        while True:
            async with self.turns.turn(entries):  # first come, first served for capacity
                candidate, reservation = await self._pick(run, passes, cost)
            reply = await self._attempt(run, candidate, reservation, messages, params, timeout)
            if reply is not None:
                elapsed = time.perf_counter() - started
                return Result(
                    reply.content, candidate, elapsed, reply.usage, tuple(run.attempts),
                    reply.finish_reason, waited_s=run.waited_s,
                )  # fmt: skip

    def stream(
        self,
        task: str | None,
        messages: Messages | str,
        *,
        deadline: float | None = None,
        timeout: float | None = None,
        ttft_timeout: float | None = None,
        **params: Any,
    ) -> AnswerStream:
        """`async for text in router.stream(...)`: the answer as it comes, then `.result`.
        Falls back until the first content token reaches the caller, never after it."""
        from llmroute.streaming import AnswerStream

        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return AnswerStream(
            self, task, messages, deadline=deadline, timeout=timeout, ttft_timeout=ttft_timeout,
            params=params,
        )  # fmt: skip

    def map(
        self, requests: Iterable[Request], *, concurrency: int = 8, task: str | None = None
    ) -> AsyncIterator[Outcome]:
        """Many requests at once (at most `concurrency` in flight), as an async iterator of
        outcomes in completion order. Each request has `.messages`, `.task` (None: `task`)
        and `.params`; an outcome carries it back with its `result` or its `error`."""
        from llmroute.mapping import map_requests

        return map_requests(self, requests, concurrency=concurrency, task=task)

    def _usable_route(self, task: str | None) -> tuple[RouteEntry, ...]:
        entries = self.route(task)
        if not any(self.pools[e.provider].usable for e in entries):
            raise NoUsableCandidateError(
                f"task {task or self.config.settings.default_task!r} has no usable provider: "
                f"set {missing_key_hint(entries, self.pools) or 'an API key'} "
                "in the environment or a .env file"
            )
        return entries

    async def _pick(
        self, run: RequestRun, passes: Passes, cost: Cost
    ) -> tuple[Candidate, Reservation]:
        """The next candidate that may be called now, with its budget held; waits for one
        when everything is cooling down or out of budget, or raises when none frees in time."""
        while True:
            for candidate in passes.current:
                if not run.admits(candidate, self._observe):
                    continue
                blocking = self.health.blocking(candidate)
                if blocking is not None:
                    run.wait_for(candidate, blocking, self.clock.now(), self._observe)
                    continue
                if self.clock.now() >= run.deadline:
                    run.fail(self.clock.now(), None)
                reservation = self.pacer.reserve(candidate, cost)
                if reservation.granted:
                    return candidate, reservation
                run.no_budget(candidate, reservation.free_at, self.clock.now(), self._observe)
            if not run.called_this_pass:
                await self._wait_or_fail(run)
            run.next_pass()
            passes.restart()

    async def _attempt(
        self,
        run: RequestRun,
        candidate: Candidate,
        reservation: Reservation,
        messages: Messages,
        params: Mapping[str, Any],
        timeout: float | None,
    ) -> Reply | None:
        """One upstream call. None when it failed (recorded, and cooled down as it deserves)."""
        provider = self.config.providers[candidate.provider]
        per_attempt = timeout or provider.timeout or self.config.settings.timeout
        remaining = run.deadline - self.clock.now()
        limit = min(per_attempt, remaining)
        body = adapt_params(provider, params)
        self.upstream.prepare(candidate, provider.base_url)
        stamp = SendStamp(self.clock.now)
        called_at = self.clock.now()
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(
                self.upstream.chat(candidate, provider.base_url, messages, body, limit, stamp),
                limit,
            )
        except asyncio.CancelledError:  # Ctrl-C: nothing is in flight any more
            self.pacer.finish(candidate, reservation, stamp.at or called_at, {})
            raise
        except UPSTREAM_FAILURES as exc:
            failure = self._classify(exc)
            if failure.kind is FailureKind.TIMEOUT and remaining <= per_attempt:
                # Cut short by the request's deadline: not the candidate's fault.
                failure = Failure(FailureKind.TIMEOUT, "the request deadline was reached")
            else:
                self.health.failed(candidate, failure)
            self.pacer.finish(candidate, reservation, stamp.at or called_at, failure.headers)
            self._observe(run.failed(candidate, failure, time.perf_counter() - started))
            return None
        tokens = reply.usage.total_tokens if reply.usage else None
        self.pacer.finish(candidate, reservation, stamp.at or called_at, reply.headers, tokens)
        self.health.answered(candidate)
        self._observe(run.answered(candidate, time.perf_counter() - started))
        return reply

    def _classify(self, exc: Exception) -> Failure:
        failure = classify(exc, now=self.clock.now(), redact=self.redact)
        if failure is None:
            raise exc
        return failure

    async def _wait_or_fail(self, run: RequestRun) -> None:
        """Nothing could be called in this pass: wait for the earliest candidate, or give up."""
        now = self.clock.now()
        run.check_rejected()
        soonest = run.soonest()
        if soonest is not None and soonest[0] < run.deadline and now < run.deadline:
            until, candidate, reason = soonest
            self._observe(Waiting(max(0.0, until - now), candidate, reason))
            await self.clock.sleep(max(0.0, until - now))
            run.waited_s += max(0.0, until - now)
            return
        run.fail(now, soonest[0] if soonest else None)

    def _observe(self, event: Event) -> None:
        if isinstance(event, Attempt):
            log.info(
                "%s %s %s %.3fs", event.candidate.label, event.outcome, event.reason,
                event.latency_s,
            )  # fmt: skip
        if self.observer is not None:
            self.observer(event)


class Passes:
    """The route's candidates, one pass after another; a pass resumes where it left off."""

    def __init__(
        self,
        entries: tuple[RouteEntry, ...],
        pools: Mapping[str, Pool],
        advance_cursor: Callable[[str], int],
    ) -> None:
        self.entries = entries
        self._args = (entries, pools, advance_cursor)
        self.current: Iterator[Candidate] = candidates(*self._args)

    def restart(self) -> None:
        self.current = candidates(*self._args)


__all__ = ["SKIPPED", "Event", "Observer", "Router", "Waiting"]
