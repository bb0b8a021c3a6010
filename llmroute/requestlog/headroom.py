"""Daily headroom: for each key (or shared account) and model with a daily limit, how much of
today it has used, and when it starts afresh. "Can I still run this batch today?"

The limits are an argument: `configured_daily_limits` reads them from the config; limits
learned from provider headers can be passed alongside (a `DailyLimit` with `source="learned"`
and the provider's own `resets_at`). Use is counted from the request log since UTC midnight,
as providers count daily caps. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llmroute.attempt import OK
from llmroute.config import Config
from llmroute.pacing import limits_for
from llmroute.pools import Pool
from llmroute.rate import daily_budget
from llmroute.requestlog.record import REFUSED, LogRecord
from llmroute.timespan import utc_midnight_after


@dataclass(frozen=True, kw_only=True)
class DailyLimit:
    provider: str
    model: str
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


def configured_daily_limits(config: Config, pools: Mapping[str, Pool]) -> list[DailyLimit]:
    """Every key (or account) and model that a configured rate of a day or longer limits."""
    found = []
    for name, provider in config.providers.items():
        keys = [k.alias for k in pools[name].keys] if name in pools else []
        budgets = (
            [(f"{name} (account)", frozenset(keys))]
            if provider.limit_scope == "account"
            else [(k, frozenset({k})) for k in keys]
        )
        for model in _models(config, name):
            limits = limits_for(provider, model)
            requests, tokens = daily_budget(limits.requests), daily_budget(limits.tokens)
            if keys and (requests or tokens):
                found += [
                    DailyLimit(
                        provider=name,
                        model=model,
                        budget=budget,
                        keys=aliases,
                        requests=requests.count if requests else None,
                        tokens=tokens.count if tokens else None,
                    )
                    for budget, aliases in budgets
                ]
    return found


def _models(config: Config, provider: str) -> list[str]:
    """The models of a provider that the config names: in a route, or with settings of their own."""
    routed = [e.model for route in config.tasks.values() for e in route if e.provider == provider]
    return list(dict.fromkeys([*routed, *config.providers[provider].models]))


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
        counted = [spent.get((limit.provider, k, limit.model), [0, 0]) for k in limit.keys]
        rows.append(Headroom(
            limit=limit, requests=sum(c[0] for c in counted), tokens=sum(c[1] for c in counted),
            resets_at=limit.resets_at or midnight,
        ))  # fmt: skip
    return rows
