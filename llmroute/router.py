"""The router: walks a task's candidates until one answers, within one deadline."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from llmroute.attempt import SKIPPED, Attempt, Candidate, Result
from llmroute.clock import Clock, SystemClock
from llmroute.config import Config, RouteEntry, parse_entry
from llmroute.cooldowns import (
    CIRCUIT_KINDS,
    Cooldown,
    CooldownPolicy,
    key_model_scope,
    scope_for,
    scopes_of,
)
from llmroute.errors import ConfigError, NoUsableCandidateError
from llmroute.failures import Failure, FailureKind
from llmroute.keys import Redactor
from llmroute.pacing import budget_scope, estimate_cost, limits_for
from llmroute.pools import Pool, build_pools, candidates, missing_key_hint
from llmroute.quirks import adapt_params
from llmroute.request import RequestRun
from llmroute.signals import learned_windows
from llmroute.state import StateStore, open_store
from llmroute.state.base import Reservation
from llmroute.upstream import OpenAIUpstream, Upstream

log = logging.getLogger("llmroute")
UNPACED = Reservation(entry_id="")  # granted, holding nothing
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
        self.store = store or open_store(env.get("LLMROUTE_STATE") or config.settings.state)
        self.upstream = upstream or OpenAIUpstream()
        self.clock = clock or SystemClock()
        self.policy = policy or CooldownPolicy()
        self.observer = observer
        self.redact = Redactor([k.secret for p in self.pools.values() for k in p.keys])

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
        entries = self.route(task)
        if not any(self.pools[e.provider].usable for e in entries):
            raise NoUsableCandidateError(
                f"task {task or self.config.settings.default_task!r} has no usable provider: "
                f"set {missing_key_hint(entries, self.pools) or 'an API key'} "
                "in the environment or a .env file"
            )
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        settings = self.config.settings
        run = RequestRun(self.clock.now() + (deadline or settings.deadline))
        cost = estimate_cost(messages, params)
        started = time.perf_counter()
        while True:
            for candidate in candidates(entries, self.pools, self.store.advance_cursor):
                if not run.admits(candidate, self._observe):
                    continue
                blocking = self._blocking(candidate)
                if blocking is not None:
                    run.wait_for(candidate, blocking, self.clock.now(), self._observe)
                    continue
                remaining = run.deadline - self.clock.now()
                if remaining <= 0:
                    break
                reservation = self._reserve(candidate, cost)
                if not reservation.granted:
                    run.no_budget(candidate, reservation.free_at, self.clock.now(), self._observe)
                    continue
                pinned = timeout or self._attempt_timeout(candidate)
                answer = await self._attempt(
                    run, candidate, reservation, messages, params, pinned, remaining
                )
                if answer is not None:
                    content, usage, finish = answer
                    return Result(
                        content, candidate, time.perf_counter() - started, usage,
                        tuple(run.attempts), finish,
                    )  # fmt: skip
            if not run.called_this_pass:
                await self._wait_or_fail(run)
            run.next_pass()

    def _attempt_timeout(self, candidate: Candidate) -> float:
        provider = self.config.providers[candidate.provider]
        return provider.timeout or self.config.settings.timeout

    def _reserve(self, candidate: Candidate, cost: Any) -> Reservation:
        if not self.config.settings.pacing:
            return UNPACED
        provider = self.config.providers[candidate.provider]
        limits = limits_for(provider, candidate.model)
        scope = budget_scope(candidate, provider)
        return self.store.reserve(scope, limits, cost, self.clock.now())

    def _finish(
        self,
        candidate: Candidate,
        reservation: Reservation,
        headers: Mapping[str, str],
        tokens: int | None = None,
    ) -> None:
        """After every paced attempt: one request less in flight, and what the headers say."""
        if not reservation.entry_id:  # pacing is off
            return
        now = self.clock.now()
        scope = budget_scope(candidate, self.config.providers[candidate.provider])
        windows = learned_windows(headers, now)
        self.store.finish(scope, reservation.entry_id, windows, now, tokens)

    def _blocking(self, candidate: Candidate) -> Cooldown | None:
        active = self.store.cooldowns(scopes_of(candidate), self.clock.now())
        return max(active.values(), key=lambda c: c.until, default=None)

    async def _attempt(
        self,
        run: RequestRun,
        candidate: Candidate,
        reservation: Reservation,
        messages: Messages,
        params: Mapping[str, Any],
        timeout: float,
        remaining: float,
    ) -> tuple[str, Any, str | None] | None:
        provider = self.config.providers[candidate.provider]
        limit = min(timeout, remaining)
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(
                self.upstream.chat(
                    candidate, provider.base_url, messages, adapt_params(provider, params), limit
                ),
                limit,
            )
        except asyncio.CancelledError:  # Ctrl-C: nothing is in flight any more
            self._finish(candidate, reservation, {})
            raise
        except Exception as exc:  # noqa: BLE001 - classify() decides; unknown ones re-raise
            failure = self._classify(exc)
            if failure.kind is FailureKind.TIMEOUT and remaining <= timeout:
                # Cut short by the request's deadline: not the candidate's fault.
                failure = Failure(FailureKind.TIMEOUT, "the request deadline was reached")
            else:
                self._cool_down(candidate, failure)
            self._finish(candidate, reservation, failure.headers)
            self._observe(run.failed(candidate, failure, time.perf_counter() - started))
            return None
        tokens = reply.usage.total_tokens if reply.usage else None
        self._finish(candidate, reservation, reply.headers, tokens)
        self.store.note_success(key_model_scope(candidate))
        self._observe(run.answered(candidate, reply.usage, time.perf_counter() - started))
        return reply.content, reply.usage, reply.finish_reason

    def _classify(self, exc: Exception) -> Failure:
        from llmroute.classify import classify

        failure = classify(exc, now=self.clock.now(), redact=self.redact)
        if failure is None:
            raise exc
        return failure

    def _cool_down(self, candidate: Candidate, failure: Failure) -> None:
        scope = scope_for(candidate, failure)
        if scope is None:
            return
        consecutive = self.store.note_failure(scope) if failure.kind in CIRCUIT_KINDS else 1
        cooldown = self.policy.cooldown(scope, failure, self.clock.now(), consecutive)
        self.store.extend_cooldown(cooldown)
        if cooldown.disabled:
            log.warning("%s disabled: %s", candidate.label, failure)

    async def _wait_or_fail(self, run: RequestRun) -> None:
        """Nothing answered in this pass: wait for the earliest cooldown, or give up."""
        now = self.clock.now()
        run.check_rejected()
        soonest = run.soonest()
        if soonest is not None and soonest[0] < run.deadline and now < run.deadline:
            until, candidate, reason = soonest
            self._observe(Waiting(max(0.0, until - now), candidate, reason))
            await self.clock.sleep(max(0.0, until - now))
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


__all__ = ["SKIPPED", "Event", "Observer", "Router", "Waiting"]
