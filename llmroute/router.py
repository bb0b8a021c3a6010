"""The router: the library's front door. Each method is a short loop over the engine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from llmroute.attempt import SKIPPED, Result, Waiting
from llmroute.clock import Clock
from llmroute.config import Config, RouteEntry
from llmroute.cooldowns import CooldownPolicy
from llmroute.engine import Engine, Event, Observer
from llmroute.mapping import Outcome, Request, map_requests
from llmroute.requestlog import LIBRARY, LogPolicy
from llmroute.setup import Setup, open_setup
from llmroute.state import StateStore
from llmroute.streaming import AnswerStream
from llmroute.upstream import Upstream

Messages = Sequence[Mapping[str, Any]]


class Router:
    def __init__(
        self,
        config: Config | Setup,
        *,
        env: Mapping[str, str] | None = None,
        store: StateStore | None = None,
        upstream: Upstream | None = None,
        clock: Clock | None = None,
        policy: CooldownPolicy | None = None,
        observer: Observer | None = None,
        log: LogPolicy | None = LIBRARY,
    ) -> None:
        """`log`: who is asking and whether the request log keeps the text; None logs nothing
        (docs/design.md, the request log)."""
        setup = (
            config
            if isinstance(config, Setup)
            else Setup.build(config, os.environ if env is None else env, store)
        )
        self.engine = Engine(
            setup, upstream=upstream, clock=clock, policy=policy, observer=observer, log=log
        )

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Router:
        return cls(config, **kwargs)

    @classmethod
    def from_path(
        cls,
        path: str | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        store: StateStore | None = None,
        **kwargs: Any,
    ) -> Router:
        """Find the config as the CLI does (argument, LLMROUTE_CONFIG, ./routes.toml, XDG)."""
        return cls(open_setup(path, env=env, store=store), **kwargs)

    @property
    def config(self) -> Config:
        return self.engine.config

    @property
    def store(self) -> StateStore:
        return self.engine.store

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.engine.aclose()

    def route(self, task: str | None = None) -> tuple[RouteEntry, ...]:
        """A task's entries (with `fallback`), or one pinned `provider:model` entry."""
        return self.engine.route(task)

    async def complete(
        self,
        task: str | None,
        messages: Messages | str,
        *,
        deadline: float | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> Result:
        """Answer `messages` with the first candidate of `task` that can; see docs/design.md.
        `result.response` is the provider's whole answer (tool calls, logprobs, ...)."""
        dispatch = self.engine.dispatch(
            task, _as_messages(messages), params, deadline=deadline, timeout=timeout
        )
        async with dispatch:
            while True:
                lease = await dispatch.next()
                async with lease.limited():
                    reply = await lease.chat()
                    await lease.answered(reply.headers, reply.usage)
                    return dispatch.result(
                        lease, content=reply.content, usage=reply.usage,
                        finish_reason=reply.finish_reason, response=reply.response,
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
        """`async for text in router.stream(...)`: the answer as it comes, then `.result`;
        `stream.chunks()` gives the provider's chunks instead. Falls back until the first
        content reaches the caller, never after it."""
        return AnswerStream(
            self.engine, task, _as_messages(messages), params,
            deadline=deadline, timeout=timeout, ttft_timeout=ttft_timeout,
        )  # fmt: skip

    def map(
        self, requests: Iterable[Request], *, concurrency: int = 8, task: str | None = None
    ) -> AsyncIterator[Outcome]:
        """Many requests at once (at most `concurrency` in flight), as an async iterator of
        outcomes in completion order. Each request has `.messages`, `.task` (None: `task`)
        and `.params`; an outcome carries it back with its `result` or its `error`."""

        def answer(request: Request) -> Any:
            params = dict(request.params)
            return self.complete(request.task or task, list(request.messages), **params)

        return map_requests(answer, requests, concurrency=concurrency)


def _as_messages(messages: Messages | str) -> Messages:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return messages


__all__ = ["SKIPPED", "Event", "LogPolicy", "Observer", "Router", "Waiting"]
