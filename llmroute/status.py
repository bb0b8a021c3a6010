"""What the shared state says about each configured key and model, for `llmroute state`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmroute.attempt import Candidate
from llmroute.budget import remaining
from llmroute.config import Config
from llmroute.cooldowns import key_model_scope, scopes_of
from llmroute.pacing import budget_scope, limits_for
from llmroute.pools import Pool
from llmroute.rate import window_name
from llmroute.state.base import Snapshot

READY, COOLING, DISABLED = "ready", "cooling", "disabled"


@dataclass(frozen=True)
class KeyStatus:
    provider: str
    key: str  # alias
    masked: str
    model: str
    state: str
    until: float | None = None
    reason: str = ""
    failures: int = 0
    budgets: list[str] = field(default_factory=list)  # "3/5 requests per 2s"
    learned: list[str] = field(default_factory=list)  # "tokens 4000/6000, resets in 12s"

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["until"] = None if self.until is None or math.isinf(self.until) else self.until
        return data


def key_statuses(
    config: Config, pools: Mapping[str, Pool], snapshot: Snapshot, now: float
) -> list[KeyStatus]:
    cooldowns = {c.scope: c for c in snapshot.cooldowns}
    rows = []
    for name, pool in pools.items():
        for model in models_of(config, name):
            for key in pool.keys:
                candidate = Candidate(name, key, model)
                active = [cooldowns[s] for s in scopes_of(candidate) if s in cooldowns]
                worst = max(active, key=lambda c: c.until, default=None)
                state = READY if worst is None else DISABLED if worst.disabled else COOLING
                rows.append(KeyStatus(
                    provider=name, key=key.alias, masked=key.masked, model=model, state=state,
                    until=worst.until if worst else None, reason=worst.reason if worst else "",
                    failures=snapshot.failures.get(key_model_scope(candidate), 0),
                    budgets=_budgets(config, candidate, snapshot, now),
                    learned=_learned(config, candidate, snapshot, now),
                ))  # fmt: skip
    return rows


def models_of(config: Config, provider: str) -> list[str]:
    """The models a provider serves in some route, then those only declared in its table."""
    routed = [e.model for route in config.tasks.values() for e in route if e.provider == provider]
    return list(dict.fromkeys([*routed, *config.providers[provider].models]))


def _budgets(config: Config, c: Candidate, snapshot: Snapshot, now: float) -> list[str]:
    provider = config.providers[c.provider]
    limits = limits_for(provider, c.model)
    entries = snapshot.usage.get(budget_scope(c, provider), [])
    return [
        f"{remaining(entries, rate, dim, now)}/{rate.count} {dim} per {window_name(rate.window_s)}"
        for dim, rates in (("requests", limits.requests), ("tokens", limits.tokens))
        for rate in rates
    ]


def _learned(config: Config, c: Candidate, snapshot: Snapshot, now: float) -> list[str]:
    """The provider's windows as they stand, then the rates learned behind them."""
    learned = snapshot.learned.get(budget_scope(c, config.providers[c.provider]))
    if learned is None:
        return []
    lines = []
    for name, w in sorted(learned.windows.items()):
        if not w.active(now):
            continue
        limit = f"/{w.limit:g}" if w.limit is not None else ""
        lines.append(f"{name} {w.remaining:g}{limit}, resets in {w.reset_at - now:.0f}s")
    rates = sorted(learned.rates.values(), key=lambda r: (r.dimension, r.window_s))
    return lines + [r.describe() for r in rates if r.alive(now)]
