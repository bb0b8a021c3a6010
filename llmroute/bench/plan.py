"""What a bench will spend, per key (or shared account budget) and model, before it starts.

The router rotates a pool's keys round robin, so N requests to an entry with k keys cost each
key about ceil(N/k). A route (`--route`) spends on its first usable entry, and on the next ones
only when that fails. The plan is checked against known daily request budgets: configured
`requests` rates whose window is a day or longer, and what is left of them in the state store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llmroute.attempt import Candidate
from llmroute.bench.target import Target, entry_of
from llmroute.budget import UsageEntry, remaining
from llmroute.config import Config, shares_keys
from llmroute.pacing import budget_scope, limits_for
from llmroute.pools import Pool
from llmroute.rate import Rate, daily_budget, window_name


@dataclass(frozen=True)
class Spend:
    """Requests planned on one budget: a key's (or an account's, shared by its keys) for a model."""

    provider: str
    model: str
    budget: str  # "groq#1", or "groq (account)" when the keys share one budget
    requests: int
    daily: int | None = None  # the known daily request budget
    left: int | None = None  # what is left of it now
    window: str | None = None  # of the daily budget: "day", or longer

    def exceeds(self, share: float) -> bool:
        """More than `share` of what is left of a known daily budget."""
        if self.daily is None:
            return False
        left = self.daily if self.left is None else self.left
        return self.requests > share * left

    def phrase(self) -> str:
        """`4 requests of groq#1's 1000/day (998 left) on small`."""
        used = self.left is not None and self.daily is not None and self.left < self.daily
        left = f" ({self.left} left)" if used else ""
        budget = f"{self.budget}'s {self.daily}/{self.window}{left}"
        return f"{self.requests} requests of {budget} on {self.model}"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class TargetSpend:
    """One target's share of the plan: requests per key alias."""

    target: Target
    keys: tuple[tuple[str, int], ...]
    fallbacks: bool  # a route may spend more on its later entries


@dataclass(frozen=True)
class Plan:
    targets: tuple[TargetSpend, ...]
    spends: tuple[Spend, ...]

    def over(self, share: float) -> list[Spend]:
        return [s for s in self.spends if s.exceeds(share)]


def plan_spend(
    config: Config,
    pools: Mapping[str, Pool],
    targets: Sequence[Target],
    requests: int,
    usage: Mapping[str, Iterable[UsageEntry]],
    now: float,
) -> Plan:
    per_target: list[TargetSpend] = []
    totals: dict[str, Spend] = {}
    for target in targets:
        entry = entry_of(config, pools, target)
        provider = config.providers[entry.provider]
        keys = pools[entry.provider].keys
        each = math.ceil(requests / len(keys))
        per_target.append(TargetSpend(target, tuple((k.alias, each) for k in keys), target.route))
        shared = shares_keys(provider.limits_per)
        for key in keys[:1] if shared else keys:
            scope = budget_scope(Candidate(entry.provider, key, entry.model), provider)
            label = f"{entry.provider} (account)" if shared else key.alias
            spent = requests if shared else each
            before = totals.get(scope)
            spend = Spend(
                entry.provider, entry.model, label, spent + (before.requests if before else 0)
            )
            totals[scope] = _with_budget(
                spend, limits_for(provider, entry.model).requests, usage.get(scope, ()), now
            )
    return Plan(tuple(per_target), tuple(totals.values()))


def _with_budget(
    spend: Spend, rates: Iterable[Rate], usage: Iterable[UsageEntry], now: float
) -> Spend:
    daily = daily_budget(rates)
    if daily is None:
        return spend
    left = remaining(usage, daily, "requests", now)
    return replace(spend, daily=daily.count, left=left, window=window_name(daily.window_s))
