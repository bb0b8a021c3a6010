"""Daily headroom: for each key (or shared account) and model with a daily limit, how much of
today it has used, and when it starts afresh. "Can I still run this batch today?"

The limits are an argument: `daily_limits` reads them from the config and, when given the state
store's snapshot, the daily limits learned from provider headers (with the provider's own
reset). Budgets are as wide as `limits_per` makes them. Use is counted from the request log
since UTC midnight, as providers count daily caps. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from llmroute.attempt import OK, Candidate
from llmroute.budget import Learned
from llmroute.config import Config, shares_keys, shares_models
from llmroute.keys import ApiKey
from llmroute.pacing import budget_scope, limits_for
from llmroute.pools import Pool
from llmroute.rate import daily_budget
from llmroute.requestlog.record import REFUSED, LogRecord
from llmroute.state.base import Snapshot
from llmroute.status import models_of
from llmroute.timespan import utc_midnight_after

DAILY_WINDOW_S = 43200.0


@dataclass(frozen=True, kw_only=True)
class DailyLimit:
    provider: str
    model: str  # "*": the budget is shared by the provider's models (`limits_per`)
    budget: str  # "groq#1", or "groq (account)" when the keys share one budget
    keys: frozenset[str]  # the aliases whose requests count against it
    requests: int | None = None
    tokens: int | None = None
    resets_at: float | None = None  # None: the next UTC midnight
    source: str = "configured"  # or "learned"


@dataclass(frozen=True, kw_only=True)
class Headroom:
    limit: DailyLimit
    requests: int  # used today
    tokens: int
    resets_at: float

    @property
    def requests_left(self) -> int | None:
        return None if self.limit.requests is None else max(0, self.limit.requests - self.requests)

    @property
    def tokens_left(self) -> int | None:
        return None if self.limit.tokens is None else max(0, self.limit.tokens - self.tokens)

    def to_dict(self) -> dict[str, Any]:
        lim = self.limit
        return {
            "provider": lim.provider, "model": lim.model, "budget": lim.budget,
            "source": lim.source, "requests_used": self.requests,
            "requests_limit": lim.requests, "requests_left": self.requests_left,
            "tokens_used": self.tokens, "tokens_limit": lim.tokens,
            "tokens_left": self.tokens_left, "resets_at": self.resets_at,
        }  # fmt: skip


def daily_limits(
    config: Config, pools: Mapping[str, Pool], snapshot: Snapshot | None, now: float
) -> list[DailyLimit]:
    """Every budget that a configured rate of a day or longer limits, then those whose daily
    limit was learned from the provider's headers (`snapshot`: the state store's)."""
    configured: list[DailyLimit] = []
    learned: list[DailyLimit] = []
    seen: set[str] = set()
    for name, provider in config.providers.items():
        keys = pools[name].keys if name in pools else ()
        for model in models_of(config, name):
            for key in keys:
                scope = budget_scope(Candidate(name, key, model), provider)
                if scope in seen:
                    continue  # a budget the keys or models share: listed once
                seen.add(scope)
                budget = _budget(name, model, key.alias, provider.limits_per, keys)
                limits = limits_for(provider, model)
                requests, tokens = daily_budget(limits.requests), daily_budget(limits.tokens)
                if requests or tokens:
                    configured.append(replace(
                        budget,
                        requests=requests.count if requests else None,
                        tokens=tokens.count if tokens else None,
                    ))  # fmt: skip
                state = snapshot.learned.get(scope) if snapshot else None
                if state is not None:
                    learned += _learned_daily(budget, state, now)
    return [*configured, *learned]


def _budget(
    provider: str, model: str, alias: str, limits_per: str, keys: Iterable[ApiKey]
) -> DailyLimit:
    """The budget a key and model draw on, named for the table, with the keys that share it."""
    shared_keys, shared_models = shares_keys(limits_per), shares_models(limits_per)
    return DailyLimit(
        provider=provider,
        model="*" if shared_models else model,
        budget=f"{provider} (account)" if shared_keys else alias,
        keys=frozenset(k.alias for k in keys) if shared_keys else frozenset({alias}),
    )


def _learned_daily(budget: DailyLimit, state: Learned, now: float) -> list[DailyLimit]:
    """The learned rates of half a day or more (a measured window is a lower bound: such a
    window is a day), with the reset the provider's live window gives."""
    # by header and limit: OpenRouter's per-minute and per-day limits share one header
    resets = {(w.header, w.limit): w.reset_at for w in state.windows.values() if w.active(now)}
    return [
        replace(
            budget, source="learned", resets_at=resets.get((rate.header, rate.count)),
            requests=rate.count if rate.dimension == "requests" else None,
            tokens=rate.count if rate.dimension == "tokens" else None,
        )
        for rate in state.rates.values()
        if rate.window_s >= DAILY_WINDOW_S and rate.alive(now)
    ]  # fmt: skip


def headroom(
    limits: Iterable[DailyLimit], today: Iterable[LogRecord], now: float
) -> list[Headroom]:
    """Each limit against what `today`'s records (since UTC midnight) spent on it."""
    spent: dict[tuple[str, str, str], list[int]] = {}
    for record in today:
        for attempt in record.called:
            if attempt["outcome"] in REFUSED or attempt.get("status") == 429:
                continue  # a provider does not count what it refused
            used = spent.setdefault((attempt["provider"], attempt["key"], attempt["model"]), [0, 0])
            used[0] += 1
            if attempt["outcome"] == OK:
                used[1] += (record.tokens_in or 0) + (record.tokens_out or 0)
    midnight = utc_midnight_after(now)
    rows = []
    for limit in limits:
        counted = [
            used for (provider, key, model), used in spent.items()
            if provider == limit.provider and key in limit.keys and limit.model in ("*", model)
        ]  # fmt: skip
        rows.append(Headroom(
            limit=limit, requests=sum(c[0] for c in counted), tokens=sum(c[1] for c in counted),
            resets_at=limit.resets_at or midnight,
        ))  # fmt: skip
    return rows
