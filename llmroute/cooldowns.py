"""Cooldown decisions: which scope a failure cools down, and until when. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from llmroute.attempt import Candidate
from llmroute.config import shares_keys, shares_models
from llmroute.failures import Failure, FailureKind

K = FailureKind
FOREVER = math.inf  # disabled until the config or the key changes


@dataclass(frozen=True)
class Cooldown:
    scope: str
    until: float  # epoch seconds; FOREVER for a disabled key or model
    kind: str
    reason: str

    @property
    def disabled(self) -> bool:
        return self.until == FOREVER


# Scopes. Key fingerprints are part of them: state about a key is void once the key changes.
def provider_scope(provider: str) -> str:
    return f"provider:{provider}"


def provider_model_scope(provider: str, model: str) -> str:
    return f"model:{provider}:{model}"


def key_scope(c: Candidate) -> str:
    return f"key:{c.provider}:{c.key.alias}:{c.key.fingerprint}"


def key_model_scope(c: Candidate) -> str:
    return f"keymodel:{c.provider}:{c.key.alias}:{c.key.fingerprint}:{c.model}"


def provider_of(scope: str) -> str:
    """The provider a scope (`kind:provider:…`) or a pool cursor (`provider`) belongs to."""
    parts = scope.split(":", 2)
    return parts[1] if len(parts) > 1 else parts[0]


def scopes_of(c: Candidate) -> tuple[str, ...]:
    """Every scope whose cooldown keeps this candidate from being tried."""
    return (
        provider_scope(c.provider),
        provider_model_scope(c.provider, c.model),
        key_scope(c),
        key_model_scope(c),
    )


def budget_cooldown_scope(c: Candidate, limits_per: str) -> str:
    """The scope a spent budget cools down: as wide as the budget (`limits_per`)."""
    keys, models = shares_keys(limits_per), shares_models(limits_per)
    if keys and models:
        return provider_scope(c.provider)
    if keys:
        return provider_model_scope(c.provider, c.model)
    if models:
        return key_scope(c)
    return key_model_scope(c)


def scope_for(c: Candidate, failure: Failure, limits_per: str = "key-model") -> str | None:
    """The scope a failure cools down; None when it only affects this request. A 429 cools
    down everything that shares the budget it spent (a key-wide daily cap: every model)."""
    if failure.kind in (K.TOO_LARGE, K.CONTEXT_TOO_LONG, K.BAD_REQUEST):
        return None
    if failure.kind in (K.RATE_LIMITED, K.QUOTA_EXHAUSTED):
        return budget_cooldown_scope(c, limits_per)
    if failure.provider_down:
        return provider_scope(c.provider)
    if failure.kind is K.AUTH:
        return key_scope(c)
    if failure.kind is K.NOT_FOUND:
        return provider_model_scope(c.provider, c.model)
    return key_model_scope(c)


CIRCUIT_KINDS = frozenset({K.TIMEOUT, K.UNAVAILABLE})


@dataclass(frozen=True)
class CooldownPolicy:
    rate_limit_default_s: float = 60.0  # a 429 with no reset signal: assume a per-minute window
    circuit_base_s: float = 5.0
    circuit_factor: float = 2.0
    circuit_max_s: float = 300.0

    def circuit_s(self, consecutive: int) -> float:
        """Open-circuit time after `consecutive` failures in a row: 5 s, 10 s, 20 s … 5 min."""
        grown = self.circuit_base_s * self.circuit_factor ** max(0, consecutive - 1)
        return min(grown, self.circuit_max_s)

    def cooldown(self, scope: str, failure: Failure, now: float, consecutive: int = 1) -> Cooldown:
        reason = f"{failure.kind}" + (f" {failure.status}" if failure.status else "")
        return Cooldown(scope, self._until(failure, now, consecutive), failure.kind, reason)

    def _until(self, failure: Failure, now: float, consecutive: int) -> float:
        after = failure.retry_after
        if failure.kind in (K.AUTH, K.NOT_FOUND):
            return FOREVER
        if failure.kind is K.QUOTA_EXHAUSTED:
            return now + after if after is not None else next_utc_midnight(now)
        if failure.kind is K.RATE_LIMITED:
            return now + (after if after is not None else self.rate_limit_default_s)
        # timeout / unavailable: a circuit breaker that a provider's retry-after can lengthen
        return now + max(self.circuit_s(consecutive), after or 0.0)


def next_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    return midnight.timestamp()
