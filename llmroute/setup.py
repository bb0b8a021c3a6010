"""Opening llmroute: environment, then config, then key pools, then the state store, once.

Every command and the library open these four in the same order; this is the one place that
does it. It imports nothing heavy (no openai SDK), so commands that never call a provider
(`state`) keep their start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llmroute.config import Config
from llmroute.pools import Pool, build_pools
from llmroute.state import StateStore, open_store, state_url


@dataclass(frozen=True, kw_only=True)
class Setup:
    """What a request needs before any provider is called."""

    env: Mapping[str, str]
    config: Config
    pools: Mapping[str, Pool]
    store: StateStore

    @classmethod
    def build(
        cls, config: Config, env: Mapping[str, str], store: StateStore | None = None
    ) -> Setup:
        """From a config already in hand; the store from the config (or the one given)."""
        pools = build_pools(config, env)
        return cls(
            env=env, config=config, pools=pools, store=store or open_store(state_url(config, env))
        )

    def close(self) -> None:
        self.store.close()


def open_setup(
    config_path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    store: StateStore | None = None,
) -> Setup:
    """Find the config as the CLI does (argument, LLMROUTE_CONFIG, ./routes.toml, XDG, the
    built-in registry) and open everything it names."""
    from llmroute.environment import load_environment, locate_config

    env = load_environment() if env is None else env
    return Setup.build(locate_config(config_path, env), env, store)
