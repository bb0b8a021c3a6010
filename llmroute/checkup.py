"""Which keys work right now? A concurrent check of every provider and key (`llmroute providers`).

Each key is proven with the cheapest call that needs it: `GET /models`, which spends no quota.
With `probe`, a 1-token completion per routed model proves the model itself (and spends a
request). Every check has a short timeout of its own, so a dead provider never holds up the rest.
Every call goes through the `Upstream` seam, over its one HTTP client, as requests do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmroute.attempt import Candidate
from llmroute.classify import UPSTREAM_FAILURES, classify
from llmroute.config import Config, ProviderConfig, RouteEntry
from llmroute.failures import FailureKind
from llmroute.keys import ApiKey, Redactor
from llmroute.pools import Pool
from llmroute.quirks import key_info_path
from llmroute.signals import learned_windows
from llmroute.status import READY, KeyStatus
from llmroute.upstream import SendStamp, Upstream

OK, REJECTED, UNREACHABLE, TIMEOUT, ERROR = "ok", "rejected", "unreachable", "timeout", "error"
NOT_SET, UNUSABLE, DISABLED = "not set", "unusable", "disabled"
K = FailureKind


@dataclass(frozen=True, kw_only=True)
class KeyCheck:
    provider: str
    key: str | None  # alias; None for a disabled provider
    status: str
    detail: str = ""
    latency_s: float | None = None
    models: tuple[str, ...] | None = None  # what the provider lists; None: no listing
    missing: tuple[str, ...] = ()  # routed models the listing does not have
    headroom: tuple[str, ...] = ()  # what rate-limit headers said
    probes: Mapping[str, str] = field(default_factory=dict)  # model -> ok / failure kind
    state: Mapping[str, KeyStatus] = field(default_factory=dict)  # model -> shared state
    masked: str = ""

    def serves(self, model: str) -> bool:
        """Can this key answer for `model` right now, as far as the check can tell?"""
        if self.status != OK or model in self.missing:
            return False
        if self.probes.get(model, OK) != OK:
            return False
        status = self.state.get(model)
        return status is None or status.state == READY

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "key": self.key,
            "masked": self.masked or None,
            "status": self.status,
            "detail": self.detail,
            "latency_s": None if self.latency_s is None else round(self.latency_s, 4),
            "models": None if self.models is None else list(self.models),
            "missing_models": list(self.missing),
            "headroom": list(self.headroom),
            "probes": dict(self.probes),
            "state": {m: s.to_dict() for m, s in self.state.items()},
        }


async def check_providers(
    config: Config,
    pools: Mapping[str, Pool],
    states: Sequence[KeyStatus],
    *,
    models: Mapping[str, Sequence[str]],
    timeout: float,
    probe: bool = False,
    upstream: Upstream | None = None,
) -> list[KeyCheck]:
    """One row per provider and key, all checked at once. `models`: for each provider to
    check, the models the checked tasks route to it. Without an `upstream`, one is opened
    for the check and closed after it."""
    if upstream is None:
        from llmroute.upstream import OpenAIUpstream

        own = OpenAIUpstream()
        try:
            return await check_providers(
                config, pools, states, models=models, timeout=timeout, probe=probe, upstream=own
            )
        finally:
            await own.aclose()
    checker = _Checker(config, upstream, states, timeout, pools)
    jobs, rows = [], []
    for name, routed in models.items():
        pool = pools[name]
        for index, var in enumerate(pool.provider.key_vars, start=1):
            if var in pool.missing_vars:
                detail = f"not configured: set {var} (in the environment or a .env file)"
                rows.append(
                    KeyCheck(provider=name, key=f"{name}#{index}", status=NOT_SET, detail=detail)
                )
            elif var in pool.unusable:
                detail = f"{var} cannot be used: {pool.unusable[var]}"
                rows.append(
                    KeyCheck(provider=name, key=f"{name}#{index}", status=UNUSABLE, detail=detail)
                )
        if not pool.keys and not pool.missing_vars and not pool.unusable:
            hint = f"set {pool.provider.enable_env}=1 or " if pool.provider.enable_env else ""
            detail = f"{hint}enabled = true in the config"
            rows.append(KeyCheck(provider=name, key=None, status=DISABLED, detail=detail))
            continue
        for key in pool.keys:
            jobs.append(_masked(key, checker.check(name, routed, key, probe)))
    return [*await asyncio.gather(*jobs), *rows]


def task_ready(config: Config, task: str, checks: Sequence[KeyCheck]) -> bool:
    """At least one candidate of the task can answer now."""
    return any(_entry_served(e, checks) for e in config.route(task))


def _entry_served(entry: RouteEntry, checks: Sequence[KeyCheck]) -> bool:
    return any(c.provider == entry.provider and c.serves(entry.model) for c in checks)


async def _masked(key: ApiKey, check: Awaitable[KeyCheck]) -> KeyCheck:
    return replace(await check, masked=key.masked)


class _Checker:
    """Checks one key at a time, all through one upstream."""

    def __init__(
        self,
        config: Config,
        upstream: Upstream,
        states: Sequence[KeyStatus],
        timeout: float,
        pools: Mapping[str, Pool],
    ) -> None:
        self.config, self.upstream, self.states, self.timeout = config, upstream, states, timeout
        self.redact = Redactor([k.secret for p in pools.values() for k in p.keys])

    async def check(
        self, provider: str, routed: Sequence[str], key: ApiKey, probe: bool
    ) -> KeyCheck:
        state = {
            s.model: s
            for s in self.states
            if s.provider == provider and s.key == key.alias and s.model in routed
        }
        base = KeyCheck(provider=provider, key=key.alias, status=OK, state=state)
        base_url = self.config.providers[provider].base_url
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                listing = await self.upstream.list_models(provider, key, base_url, self.timeout)
            latency = time.perf_counter() - started
            about = await self._key_info(provider, key)
            probes = await self._probes(provider, key, routed) if probe else {}
        except UPSTREAM_FAILURES as exc:  # every failure of the provider becomes a row
            return self._failed(base, exc, time.perf_counter() - started)
        listed = listing.models
        missing = tuple(m for m in routed if listed and m not in listed)
        detail = f"{len(listed)} models listed" if listed else "no model list"
        if about:
            detail += f"; {about}"
        if missing:
            detail += f"; not listed: {', '.join(missing)}"
        return replace(
            base, detail=detail, latency_s=latency, models=listed or None, missing=missing,
            headroom=_headroom(listing.headers), probes=probes,
        )  # fmt: skip

    def _failed(self, base: KeyCheck, exc: Exception, latency: float) -> KeyCheck:
        failed = replace(base, latency_s=latency)
        if isinstance(exc, TimeoutError):
            return replace(failed, status=TIMEOUT, detail="no answer in time")
        failure = classify(exc, now=time.time(), redact=self.redact)
        if failure is None:
            return replace(failed, status=ERROR, detail=self.redact(f"{type(exc).__name__}: {exc}"))
        if failure.kind is K.NOT_FOUND:  # no /models endpoint: reachable, the key is not proven
            return replace(
                failed, detail="reachable; no /models to check the key with (use --probe)"
            )
        status = {K.AUTH: REJECTED, K.TIMEOUT: TIMEOUT}.get(failure.kind, ERROR)
        if failure.kind is K.UNAVAILABLE and failure.status is None:
            status = UNREACHABLE
        return replace(failed, status=status, detail=str(failure))

    async def _probes(self, provider: str, key: ApiKey, models: Sequence[str]) -> dict[str, str]:
        """A 1-token completion per model: proves the model, spends one request each."""
        base_url = self.config.providers[provider].base_url

        async def one(model: str) -> str:
            candidate = Candidate(provider, key, model)
            ping = [{"role": "user", "content": "ping"}]
            try:
                async with asyncio.timeout(self.timeout):
                    await self.upstream.chat(
                        candidate, base_url, ping, {"max_tokens": 1}, self.timeout,
                        SendStamp(time.time),
                    )  # fmt: skip
                return OK
            except UPSTREAM_FAILURES as exc:  # a failed probe is a result
                if isinstance(exc, TimeoutError):
                    return TIMEOUT
                failure = classify(exc, now=time.time(), redact=self.redact)
                return str(failure.kind) if failure else ERROR

        results = await asyncio.gather(*(one(m) for m in models))
        return dict(zip(models, results, strict=True))

    async def _key_info(self, provider: str, key: ApiKey) -> str:
        """What a provider says about the key itself (OpenRouter: tier, credit used, limit)."""
        config: ProviderConfig = self.config.providers[provider]
        path = key_info_path(config)
        if path is None:
            return ""
        try:
            async with asyncio.timeout(self.timeout):
                body = await self.upstream.get_json(
                    provider, key, config.base_url, path, self.timeout
                )
        except UPSTREAM_FAILURES:  # extra information only: its absence is not a failure
            return ""
        return _describe_key(body)


def _describe_key(body: object) -> str:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return ""
    tier = "free tier" if data.get("is_free_tier") else "paid"
    limit = data.get("limit")
    spent = f"credit used {data.get('usage', 0):g}" + (f" of {limit:g}" if limit else "")
    return f"{tier}, {spent}"


def _headroom(headers: Mapping[str, str]) -> tuple[str, ...]:
    now = time.time()
    return tuple(
        f"{name} {w.remaining:g}" + (f"/{w.limit:g}" if w.limit is not None else "")
        for name, w in sorted(learned_windows(headers, now).items())
    )
