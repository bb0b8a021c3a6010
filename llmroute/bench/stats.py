"""Figures from samples: percentiles, success and failure counts, output tokens per second."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmroute.bench.target import Target
from llmroute.percentiles import percentile

OK = "ok"
NOT_SENT = "not_sent"  # a failed request that reached no provider (all cooling down or disabled)


@dataclass(frozen=True)
class Sample:
    """One benchmark request: answered, or the kind of its last failure."""

    outcome: str  # "ok", a failure kind ("rate_limited", "timeout", ...) or "not_sent"
    latency_s: float | None = None  # answered requests only
    ttft_s: float | None = None
    output_tokens: int | None = None  # as the provider counted them, when it said
    key: str | None = None  # the alias of the key that answered
    rate_limited: int = 0  # 429 answers among the request's attempts
    waited_s: float = 0.0  # time spent waiting for budget or a cooldown
    reason: str = ""  # why it failed

    @property
    def ok(self) -> bool:
        return self.outcome == OK


@dataclass(frozen=True)
class Spread:
    p50: float | None = None
    p95: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(percentile(values, 50), percentile(values, 95), max(values, default=None))

    def to_dict(self) -> dict[str, float | None]:
        return {name: _round(value) for name, value in vars(self).items()}


@dataclass(frozen=True)
class KeyFigures:
    """The requests one key answered."""

    ok: int
    latency: Spread


@dataclass(frozen=True)
class Summary:
    target: Target
    requests: int
    ok: int
    failures: Mapping[str, int] = field(default_factory=dict)  # kind -> count
    rate_limited: int = 0
    latency: Spread = Spread()
    ttft: Spread = Spread()
    tokens_per_s: float | None = None
    waited_s: float = 0.0
    keys: Mapping[str, KeyFigures] = field(default_factory=dict)
    examples: Mapping[str, str] = field(default_factory=dict)  # kind -> one reason

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    @property
    def success_rate(self) -> float:
        return self.ok / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "mode": "route" if self.target.route else "candidate",
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "success_rate": round(self.success_rate, 4),
            "failures": dict(self.failures),
            "rate_limited_429": self.rate_limited,
            "latency_s": self.latency.to_dict(),
            "ttft_s": self.ttft.to_dict(),
            "output_tokens_per_s": _round(self.tokens_per_s, 1),
            "waited_s": _round(self.waited_s),
            "keys": {
                alias: {"ok": k.ok, "latency_s": k.latency.to_dict()}
                for alias, k in self.keys.items()
            },
            "failure_examples": dict(self.examples),
        }


def summarize(target: Target, samples: Sequence[Sample]) -> Summary:
    answered = [s for s in samples if s.ok]
    failures = Counter(s.outcome for s in samples if not s.ok)
    examples: dict[str, str] = {}
    for s in samples:
        if not s.ok and s.reason:
            examples.setdefault(s.outcome, s.reason)
    return Summary(
        target=target,
        requests=len(samples),
        ok=len(answered),
        failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
        rate_limited=sum(s.rate_limited for s in samples),
        latency=Spread.of([s.latency_s for s in answered if s.latency_s is not None]),
        ttft=Spread.of([s.ttft_s for s in answered if s.ttft_s is not None]),
        tokens_per_s=tokens_per_second(answered),
        waited_s=sum(s.waited_s for s in samples),
        keys=_by_key(answered),
        examples=examples,
    )


def tokens_per_second(samples: Iterable[Sample]) -> float | None:
    """Output tokens over the time of the requests that produced them (first byte included):
    what a caller receives per second. None when no provider reported its token count."""
    counted = [s for s in samples if s.output_tokens is not None and s.latency_s is not None]
    seconds = sum(s.latency_s or 0.0 for s in counted)
    if not counted or seconds <= 0:
        return None
    return sum(s.output_tokens or 0 for s in counted) / seconds


def _by_key(answered: Sequence[Sample]) -> dict[str, KeyFigures]:
    keys: dict[str, list[float]] = {}
    for s in answered:
        if s.key is not None:
            keys.setdefault(s.key, []).append(s.latency_s if s.latency_s is not None else 0.0)
    return {alias: KeyFigures(len(v), Spread.of(v)) for alias, v in sorted(keys.items())}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
