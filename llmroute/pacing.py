"""Pacing: which budget an attempt draws on, what it costs, and the reservation around it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmroute.attempt import Candidate
from llmroute.budget import MARGIN_S, Cost, Finished
from llmroute.clock import Clock
from llmroute.config import Config, Limits, ProviderConfig, shares_keys, shares_models
from llmroute.signals import learned_windows
from llmroute.state.base import Reservation, StateStore

CHARS_PER_TOKEN = 4  # a rough, tokenizer-free estimate; settled with the provider's count
DEFAULT_COMPLETION_TOKENS = 256  # reserved when the request sets no max_tokens
UNPACED = Reservation(entry_id="")  # pacing is off: granted, holding nothing


def budget_scope(candidate: Candidate, provider: ProviderConfig) -> str:
    """The budget an attempt draws on: per key and model unless `limits_per` says that the
    provider's keys (`account…`) or a key's models (`key`, `account`) share one."""
    c, shared = candidate, provider.limits_per
    owner = "*" if shares_keys(shared) else f"{c.key.alias}:{c.key.fingerprint}"
    model = "*" if shares_models(shared) else c.model
    return f"budget:{c.provider}:{owner}:{model}"


def limits_for(provider: ProviderConfig, model: str) -> Limits:
    """A model's own rates replace the provider's, dimension by dimension."""
    own = provider.models.get(model)
    if own is None:
        return provider.limits
    return Limits(
        requests=own.limits.requests or provider.limits.requests,
        tokens=own.limits.tokens or provider.limits.tokens,
    )


def estimate_cost(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Cost:
    """One request, and the prompt's tokens plus the completion it may produce."""
    chars = sum(len(content_text(m.get("content"))) for m in messages)
    prompt = max(1, math.ceil(chars / CHARS_PER_TOKEN))
    completion = params.get("max_tokens") or params.get("max_completion_tokens")
    if not isinstance(completion, int) or completion <= 0:
        completion = DEFAULT_COMPLETION_TOKENS
    return Cost(requests=1, tokens=prompt + completion)


def content_text(content: object) -> str:
    """A message's text: a string, or the text parts of a multi-part one."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part messages: count the text parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class Pacer:
    """Reserves budget before an attempt and reports how it went, against the state store."""

    def __init__(self, config: Config, store: StateStore, clock: Clock) -> None:
        self.config, self.store, self.clock = config, store, clock

    def reserve(self, candidate: Candidate, cost: Cost) -> Reservation:
        if not self.config.settings.pacing:
            return UNPACED
        provider = self.config.providers[candidate.provider]
        scope = budget_scope(candidate, provider)
        return self.store.reserve(
            scope, limits_for(provider, candidate.model), cost, self.clock.now()
        )

    def finish(
        self,
        candidate: Candidate,
        reservation: Reservation,
        sent_at: float,
        headers: Mapping[str, str],
        tokens: int | None = None,
        heard_at: float | None = None,
        *,
        answered: bool = True,
    ) -> None:
        """After every reserved attempt: one request less in flight, and what headers said
        (they came at `heard_at`, by default now). `answered`: an HTTP response came back; a
        timeout, a refused connection or a caller gone teach nothing."""
        if not reservation.entry_id:
            return
        # The provider's windows count from the request's arrival: about when it was sent.
        elapsed = (self.clock.now() if heard_at is None else heard_at) - sent_at
        windows = learned_windows(headers, sent_at + MARGIN_S, max(0.0, elapsed))
        done = Finished(
            entry_id=reservation.entry_id,
            sent_at=sent_at,
            windows=windows,
            tokens=tokens,
            heard=answered,
        )
        scope = budget_scope(candidate, self.config.providers[candidate.provider])
        self.store.finish(scope, done, self.clock.now())
