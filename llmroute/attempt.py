"""The record of a request: the candidates it went to and what each one did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmroute.keys import ApiKey

OK = "ok"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Candidate:
    """What one upstream attempt goes to: a provider, one key of its pool, a model."""

    provider: str
    key: ApiKey
    model: str
    context_window: int | None = None

    @property
    def label(self) -> str:
        return f"{self.key.alias}/{self.model}"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One candidate considered for a request: called (outcome ok or a failure kind) or skipped."""

    candidate: Candidate
    outcome: str
    reason: str = ""
    status: int | None = None
    latency_s: float = 0.0  # from when this attempt was sent
    ttft_s: float | None = None  # streaming: from when it was sent to its first token

    @property
    def called(self) -> bool:
        return self.outcome != SKIPPED

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.candidate.provider,
            "key": self.candidate.key.alias,
            "model": self.candidate.model,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.reason or None,
            "latency_s": round(self.latency_s, 4),
            "ttft_s": None if self.ttft_s is None else round(self.ttft_s, 4),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        """The record `to_dict` wrote (a gateway's report): the key is known by alias only."""
        return cls(
            candidate=_candidate(data), outcome=str(data["outcome"]),
            reason=data.get("error") or "", status=data.get("status"),
            latency_s=float(data.get("latency_s") or 0.0), ttft_s=data.get("ttft_s"),
        )  # fmt: skip


def _candidate(data: Mapping[str, Any]) -> Candidate:
    alias = str(data["key"])
    return Candidate(str(data["provider"]), ApiKey(alias, None, ""), str(data["model"]))


@dataclass(frozen=True)
class Waiting:
    """Every candidate is cooling down; the request waits `seconds` for the earliest one."""

    seconds: float
    candidate: Candidate
    reason: str


@dataclass(frozen=True, kw_only=True)
class Result:
    """An answered request: the content, who answered, and everything tried on the way."""

    content: str
    candidate: Candidate
    latency_s: float
    usage: Usage | None
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    finish_reason: str | None = None
    ttft_s: float | None = None  # streaming: from the request to its first content token
    waited_s: float = 0.0  # spent waiting for a cooldown or budget to free up
    # The provider's answer as JSON (choices with tool_calls and logprobs, usage,
    # system_fingerprint); for a stream, assembled from its chunks.
    response: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tool_calls(self) -> list[Any]:
        """The first choice's tool calls, as the provider sent them ([] when there are none)."""
        choices = self.response.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        return list(calls) if isinstance(calls, list) else []

    @property
    def answer(self) -> Attempt:
        """The attempt that answered: its timing leaves out waits and fallbacks before it."""
        return self.attempts[-1]

    @property
    def fallbacks(self) -> tuple[Attempt, ...]:
        """Every attempt before the answering one."""
        return self.attempts[:-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "provider": self.candidate.provider,
            "key": self.candidate.key.alias,
            "model": self.candidate.model,
            "latency_s": round(self.latency_s, 4),
            "ttft_s": None if self.ttft_s is None else round(self.ttft_s, 4),
            "waited_s": round(self.waited_s, 4),
            "usage": self.usage.to_dict() if self.usage else None,
            "finish_reason": self.finish_reason,
            **({"tool_calls": self.tool_calls} if self.tool_calls else {}),
            "attempts": [a.to_dict() for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """The result `to_dict` wrote (a gateway's report), without the provider's response."""
        usage = data.get("usage")
        return cls(
            content=str(data.get("content") or ""), candidate=_candidate(data),
            latency_s=float(data.get("latency_s") or 0.0),
            usage=Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
            if usage else None,
            attempts=tuple(Attempt.from_dict(a) for a in data.get("attempts") or ()),
            finish_reason=data.get("finish_reason"), ttft_s=data.get("ttft_s"),
            waited_s=float(data.get("waited_s") or 0.0),
        )  # fmt: skip
