"""Where llmroute looks for its config and its environment (.env files, XDG directories).

Finding things imports little: `ask` through a gateway only needs to know which file it would
load, not to parse it, so the config module and python-dotenv load only when they are used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from llmroute.errors import ConfigError

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from collections.abc import Mapping

    from llmroute.config import Config

APP = "llmroute"
CONFIG_NAME = "routes.toml"
CONFIG_ENV = "LLMROUTE_CONFIG"


def config_dir() -> Path:
    xdg = _xdg("XDG_CONFIG_HOME", ".config")
    if xdg is not None:
        return Path(xdg)
    from platformdirs import user_config_path

    return user_config_path(APP)


def state_dir() -> Path:
    xdg = _xdg("XDG_STATE_HOME", ".local/state")
    if xdg is not None:
        return Path(xdg)
    from platformdirs import user_state_path

    return user_state_path(APP)


def _xdg(variable: str, default: str) -> str | None:
    """What platformdirs says on Linux in the plain cases (an absolute $XDG_… or $HOME), without
    importing it (a tenth of `ask`'s start-up through a gateway); None: ask platformdirs."""
    if sys.platform != "linux":
        return None
    base = os.environ.get(variable, "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, default)
    return os.path.join(base, APP)


def load_environment(cwd: Path | None = None) -> dict[str, str]:
    """os.environ over ./.env over the config directory's .env: an explicit variable wins."""
    merged: dict[str, str] = {}
    for dotenv in (config_dir() / ".env", (cwd or Path.cwd()) / ".env"):
        if dotenv.is_file():
            from dotenv import dotenv_values

            merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ)
    return merged


def config_candidates(explicit: str | Path | None, env: Mapping[str, str]) -> list[Path]:
    """In order: --config, LLMROUTE_CONFIG, ./routes.toml, the user config directory."""
    if explicit:
        return [Path(explicit).expanduser()]
    if env.get(CONFIG_ENV):
        return [Path(env[CONFIG_ENV]).expanduser()]
    return [Path.cwd() / CONFIG_NAME, config_dir() / CONFIG_NAME]


def config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file llmroute would load (None: the built-in registry); an explicitly named
    file must exist."""
    paths = config_candidates(explicit, env)
    for path in paths:
        if path.is_file():
            return path
    if explicit or env.get(CONFIG_ENV):
        raise ConfigError(f"config file {paths[0]} does not exist; check the path")
    return None


def locate_config(explicit: str | Path | None, env: Mapping[str, str]) -> Config:
    """The first config found. With none anywhere, the built-in registry (routes.example.toml)
    serves, so that setting one API key is enough."""
    from llmroute.config import load_config

    path = config_file(explicit, env)
    return builtin_config() if path is None else load_config(path)


def builtin_config() -> Config:
    import tomllib
    from importlib import resources

    from llmroute.config import parse_config

    text = resources.files(APP).joinpath("routes.example.toml").read_text(encoding="utf-8")
    return parse_config(tomllib.loads(text), "built-in routes.example.toml")
