"""In-process doubles for the router's seams: a clock that never sleeps, a scripted upstream."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from llmroute.attempt import Candidate, Usage
from llmroute.upstream import Reply, SendStamp


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class ScriptedUpstream:
    """Answers per key alias from a script of replies and exceptions; default: an echo."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Any]] = defaultdict(deque)
        self.calls: list[tuple[str, str]] = []
        self.params: list[Mapping[str, Any]] = []

    def script(self, alias: str, *outcomes: Any) -> None:
        self.scripts[alias].extend(outcomes)

    def prepare(self, candidate: Candidate, base_url: str) -> None:
        pass

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply:
        stamp.mark()
        self.calls.append((candidate.key.alias, candidate.model))
        self.params.append(params)
        script = self.scripts[candidate.key.alias]
        outcome = script.popleft() if script else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome or Reply(f"answer from {candidate.label}", Usage(3, 4), "stop", {})

    async def aclose(self) -> None:
        pass
