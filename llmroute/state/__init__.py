"""Where cooldowns, cursors, usage and learned limits live: `memory`, `sqlite` or `redis://`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from llmroute.config import Config
from llmroute.errors import ConfigError
from llmroute.state.base import Reservation, Snapshot, StateStore
from llmroute.state.memory import MemoryStore

STATE_FILE = "state.sqlite3"

__all__ = ["MemoryStore", "Reservation", "Snapshot", "StateStore", "open_store", "state_url"]
STATE_ENV = "LLMROUTE_STATE"


def state_url(config: Config, env: Mapping[str, str]) -> str:
    """LLMROUTE_STATE wins over the config's `[settings] state`."""
    return env.get(STATE_ENV) or config.settings.state


def open_store(url: str | None, default_dir: Path | None = None) -> StateStore:
    """`memory`; `sqlite` (the user state directory), `sqlite:///abs/path`; `redis://host:port/db`."""
    url = (url or "sqlite").strip()
    if url == "memory":
        return MemoryStore()
    if url == "sqlite" or url.startswith("sqlite://"):
        from llmroute.state.sqlite_file import open_sqlite

        return open_sqlite(sqlite_path(url, default_dir))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _redis(url)
    raise ConfigError(
        f"state store {url!r} is not one of: memory, sqlite, sqlite:///path, redis://host:port/db"
    )


def sqlite_path(url: str, default_dir: Path | None) -> Path:
    rest = url[len("sqlite://") :] if url != "sqlite" else ""
    if not rest.strip("/"):
        if default_dir is None:
            from llmroute.environment import state_dir

            default_dir = state_dir()
        return default_dir / STATE_FILE
    if rest.startswith("//"):  # SQLAlchemy's form for an absolute path: sqlite:////tmp/x
        rest = rest[1:]
    return Path(rest).expanduser()


def _redis(url: str) -> StateStore:
    try:
        import redis

        from llmroute.state.redis import RedisStore
    except ModuleNotFoundError:
        raise ConfigError(
            "the redis state store needs the redis package: pip install 'llmroute[redis]'"
        ) from None
    try:
        return RedisStore(url)
    except (redis.RedisError, OSError, ValueError) as exc:  # unreachable, refused, bad URL
        raise ConfigError(f"cannot reach the state store at {_safe(url)}: {exc}") from None


def _safe(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":…@")
