"""Key pools: a provider's keys as found in the environment, and the candidates of a route."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from llmroute.attempt import Candidate
from llmroute.config import Config, ProviderConfig, RouteEntry
from llmroute.keys import KEYLESS_SECRET, ApiKey


@dataclass(frozen=True)
class Pool:
    provider: ProviderConfig
    keys: tuple[ApiKey, ...]
    missing_vars: tuple[str, ...] = ()
    # Variables whose value cannot be a key (it could not be sent in a header), with why.
    unusable: Mapping[str, str] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return bool(self.keys)

    def rotated(self, start: int) -> tuple[ApiKey, ...]:
        if not self.keys:
            return ()
        offset = start % len(self.keys)
        return self.keys[offset:] + self.keys[:offset]


def build_pool(provider: ProviderConfig, env: Mapping[str, str]) -> Pool:
    """Keys are named by their position in `keys` (`groq#2` is always the second variable)."""
    if not provider.is_enabled(env):
        return Pool(provider, ())
    if not provider.key_vars:
        return Pool(provider, (ApiKey(provider.name, None, KEYLESS_SECRET),))
    keys, missing, unusable = [], [], {}
    for index, var in enumerate(provider.key_vars, start=1):
        secret = env.get(var, "").strip()
        problem = header_problem(secret)
        if not secret:
            missing.append(var)
        elif problem:
            unusable[var] = problem  # that key's problem: the pool goes on without it
        else:
            keys.append(ApiKey(f"{provider.name}#{index}", var, secret))
    return Pool(provider, tuple(keys), tuple(missing), unusable)


def header_problem(secret: str) -> str:
    """Why `secret` cannot be sent as `Authorization: Bearer …` ("" when it can): a paste
    accident such as a curly quote, a non-breaking space or a line break. Says where, never
    what."""
    for position, char in enumerate(secret, start=1):
        if not (" " <= char <= "~"):
            kind = (
                "a control character" if char < " " or char == "\x7f" else "a non-ASCII character"
            )
            return f"it has {kind} at position {position} (a paste accident?); set it again"
    return ""


def build_pools(config: Config, env: Mapping[str, str]) -> dict[str, Pool]:
    return {name: build_pool(p, env) for name, p in config.providers.items()}


def candidates(
    entries: Sequence[RouteEntry],
    pools: Mapping[str, Pool],
    advance_cursor: Callable[[str], int],
) -> Iterator[Candidate]:
    """The candidates of a route, in order. A pool's cursor steps only when the walk reaches it,
    so a request answered early does not disturb the rotation of pools further down."""
    for entry in entries:
        pool = pools[entry.provider]
        start = advance_cursor(entry.provider) if len(pool.keys) > 1 else 0
        window = pool.provider.context_window(entry.model)
        for key in pool.rotated(start):
            yield Candidate(entry.provider, key, entry.model, window)


def missing_key_hint(entries: Sequence[RouteEntry], pools: Mapping[str, Pool]) -> str:
    """What to set so that a route has at least one candidate."""
    hints = []
    for name in dict.fromkeys(e.provider for e in entries):
        pool = pools[name]
        if pool.missing_vars or pool.unusable:
            named = [*pool.missing_vars, *(f"{v} ({why})" for v, why in pool.unusable.items())]
            hints.append(f"{' or '.join(named)} ({name})")
        elif not pool.provider.is_enabled({}) and pool.provider.enable_env:
            hints.append(f"{pool.provider.enable_env}=1 ({name})")
    return ", ".join(hints)
