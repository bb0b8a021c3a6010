"""Which keys work right now? A concurrent check of every provider and key (`llmroute providers`).

Each key is proven with the cheapest call that needs it: `GET /models`, which spends no quota.
With `probe`, a 1-token completion per routed model proves the model itself (and spends a
request). Every check has a short timeout of its own, so a dead provider never holds up the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmroute.classify import UPSTREAM_FAILURES
from llmroute.config import Config, ProviderConfig, RouteEntry
from llmroute.failures import FailureKind
from llmroute.keys import ApiKey, Redactor
from llmroute.pools import Pool
from llmroute.quirks import key_info_path
from llmroute.signals import learned_windows
from llmroute.status import READY, KeyStatus

OK, REJECTED, UNREACHABLE, TIMEOUT, ERROR = "ok", "rejected", "unreachable", "timeout", "error"
NOT_SET, DISABLED = "not set", "disabled"
K = FailureKind


@dataclass(frozen=True)
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
) -> list[KeyCheck]:
    """One row per provider and key, all checked at once. `models`: for each provider to
    check, the models the checked tasks route to it."""
    redact = Redactor([k.secret for p in pools.values() for k in p.keys])
    jobs, rows = [], []
    for name, routed in models.items():
        pool = pools[name]
        for index, var in enumerate(pool.provider.key_vars, start=1):
            if var in pool.missing_vars:
                detail = f"not configured: set {var} (in the environment or a .env file)"
                rows.append(KeyCheck(name, f"{name}#{index}", NOT_SET, detail))
        if not pool.keys and not pool.missing_vars:
            hint = f"set {pool.provider.enable_env}=1 or " if pool.provider.enable_env else ""
            rows.append(KeyCheck(name, None, DISABLED, f"{hint}enabled = true in the config"))
            continue
        for key in pool.keys:
            check = _check(config, name, routed, key, states, timeout, probe, redact)
            jobs.append(_masked(key, check))
    return [*await asyncio.gather(*jobs), *rows]


def task_ready(config: Config, task: str, checks: Sequence[KeyCheck]) -> bool:
    """At least one candidate of the task can answer now."""
    return any(_entry_served(e, checks) for e in config.route(task))


def _entry_served(entry: RouteEntry, checks: Sequence[KeyCheck]) -> bool:
    return any(c.provider == entry.provider and c.serves(entry.model) for c in checks)


async def _masked(key: ApiKey, check: Awaitable[KeyCheck]) -> KeyCheck:
    return replace(await check, masked=key.masked)


async def _check(
    config: Config,
    provider: str,
    routed: Sequence[str],
    key: ApiKey,
    states: Sequence[KeyStatus],
    timeout: float,
    probe: bool,
    redact: Redactor,
) -> KeyCheck:
    import openai

    state = {
        s.model: s
        for s in states
        if s.provider == provider and s.key == key.alias and s.model in routed
    }
    client = openai.AsyncOpenAI(
        api_key=key.secret, base_url=config.providers[provider].base_url, max_retries=0
    )
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            raw = await client.models.with_raw_response.list(timeout=timeout)
        latency = time.perf_counter() - started
        listed = tuple(m.id for m in raw.parse().data)
        headroom = _headroom(raw.headers)
        about = await _key_info(client, config.providers[provider], timeout)
        probes = await _probes(client, routed, timeout, redact) if probe else {}
    except UPSTREAM_FAILURES as exc:  # every failure of the provider becomes a row
        await client.close()
        return _failed_check(provider, key, exc, time.perf_counter() - started, state, redact)
    await client.close()
    missing = tuple(m for m in routed if listed and m not in listed)
    detail = f"{len(listed)} models listed" if listed else "no model list"
    if about:
        detail += f"; {about}"
    if missing:
        detail += f"; not listed: {', '.join(missing)}"
    return KeyCheck(
        provider, key.alias, OK, detail, latency, listed or None, missing, headroom, probes, state
    )


def _failed_check(
    provider: str,
    key: ApiKey,
    exc: Exception,
    latency: float,
    state: Mapping[str, KeyStatus],
    redact: Redactor,
) -> KeyCheck:
    from llmroute.classify import classify

    if isinstance(exc, TimeoutError):
        return KeyCheck(provider, key.alias, TIMEOUT, "no answer in time", latency, state=state)
    failure = classify(exc, now=time.time(), redact=redact)
    if failure is None:
        detail = redact(f"{type(exc).__name__}: {exc}")
        return KeyCheck(provider, key.alias, ERROR, detail, latency, state=state)
    if failure.kind is K.NOT_FOUND:  # no /models endpoint: reachable, the key is not proven
        detail = "reachable; no /models to check the key with (use --probe)"
        return KeyCheck(provider, key.alias, OK, detail, latency, state=state)
    status = {K.AUTH: REJECTED, K.TIMEOUT: TIMEOUT}.get(failure.kind, ERROR)
    if failure.kind is K.UNAVAILABLE and failure.status is None:
        status = UNREACHABLE
    return KeyCheck(provider, key.alias, status, str(failure), latency, state=state)


async def _probes(
    client: Any, models: Sequence[str], timeout: float, redact: Redactor
) -> dict[str, str]:
    """A 1-token completion per model: proves the model, spends one request each."""
    from llmroute.classify import classify

    async def one(model: str) -> str:
        try:
            async with asyncio.timeout(timeout):
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1,
                    timeout=timeout,
                )  # fmt: skip
            return OK
        except UPSTREAM_FAILURES as exc:  # a failed probe is a result
            if isinstance(exc, TimeoutError):
                return TIMEOUT
            failure = classify(exc, now=time.time(), redact=redact)
            return str(failure.kind) if failure else ERROR

    results = await asyncio.gather(*(one(m) for m in models))
    return dict(zip(models, results, strict=True))


async def _key_info(client: Any, provider: ProviderConfig, timeout: float) -> str:
    """What a provider says about the key itself (OpenRouter: tier, credit used and limit)."""
    path = key_info_path(provider)
    if path is None:
        return ""
    try:
        async with asyncio.timeout(timeout):
            body = await client.get(path, cast_to=object)
    except UPSTREAM_FAILURES:  # extra information only: its absence is not a failure
        return ""
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
