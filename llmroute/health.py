"""Health of candidates: cooldowns and circuit breakers, kept in the state store."""

from __future__ import annotations

import logging

from llmroute.attempt import Candidate
from llmroute.clock import Clock
from llmroute.cooldowns import (
    CIRCUIT_KINDS,
    Cooldown,
    CooldownPolicy,
    key_model_scope,
    scope_for,
    scopes_of,
)
from llmroute.failures import Failure
from llmroute.state.base import StateStore

log = logging.getLogger("llmroute")


class Health:
    def __init__(self, store: StateStore, policy: CooldownPolicy, clock: Clock) -> None:
        self.store, self.policy, self.clock = store, policy, clock

    def blocking(self, candidate: Candidate) -> Cooldown | None:
        """The cooldown that keeps the candidate out longest, if any."""
        active = self.store.cooldowns(scopes_of(candidate), self.clock.now())
        return max(active.values(), key=lambda c: c.until, default=None)

    def failed(self, candidate: Candidate, failure: Failure, limits_per: str = "key-model") -> None:
        scope = scope_for(candidate, failure, limits_per)
        if scope is None:
            return
        consecutive = self.store.note_failure(scope) if failure.kind in CIRCUIT_KINDS else 1
        cooldown = self.policy.cooldown(scope, failure, self.clock.now(), consecutive)
        self.store.extend_cooldown(cooldown)
        if cooldown.disabled:
            log.warning("%s disabled: %s", candidate.label, failure)

    def answered(self, candidate: Candidate) -> None:
        self.store.note_success(key_model_scope(candidate))
