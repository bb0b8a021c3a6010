"""A small world of fake providers and the routes.toml that points llmroute at them."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakeprovider import FakeKey, FakeProvider, FakeServer

GROQ_KEYS = ["gsk_fake_key_one_AAAAAAAAAAAA1", "gsk_fake_key_two_BBBBBBBBBBBB2",
             "gsk_fake_key_three_CCCCCCCCCC3"]  # fmt: skip
BACKUP_KEY = "sk-or-fake-backup-DDDDDDDDDDDD4"
DEAD_KEYS = ["dead-key-one-EEEEEEEEEEEEEE5", "dead-key-two-FFFFFFFFFFFFFF6"]
ALL_SECRETS = [*GROQ_KEYS, BACKUP_KEY, *DEAD_KEYS]


@dataclass
class World:
    server: FakeServer
    groq: FakeProvider
    backup: FakeProvider
    config: dict[str, Any]
    env: dict[str, str]
    groq_keys: list[FakeKey] = field(default_factory=list)

    def write_config(self, path: Path) -> Path:
        path.write_text(to_toml(self.config))
        return path


def make_world(server: FakeServer, **settings: Any) -> World:
    groq = server.provider("groq", dialect="groq", models=["small", "large"])
    keys = [groq.key(k) for k in GROQ_KEYS]
    backup = server.provider("backup", dialect="openrouter")
    backup.key(BACKUP_KEY)
    config = {
        "settings": {"default_task": "fast", "deadline": 10, "timeout": 5, **settings},
        "providers": {
            "groq": {"base_url": groq.base_url,
                     "keys": ["GROQ_API_KEY", "GROQ_API_KEY_2", "GROQ_API_KEY_3"],
                     "models": {"small": {"context_window": 8192}}},
            "backup": {"base_url": backup.base_url, "keys": ["BACKUP_KEY"],
                       "models": {"big": {"context_window": 131072}}},
            "dead": {"base_url": server.refused_base_url(), "keys": ["DEAD_1", "DEAD_2"]},
        },
        "tasks": {
            "fast": {"route": ["groq:small", "backup:big"]},
            "other": {"route": ["groq:small"]},
            "deadfirst": {"route": ["dead:m", "groq:small"]},
            "fallback": {"route": ["backup:big"]},
        },
    }  # fmt: skip
    env = {"GROQ_API_KEY": GROQ_KEYS[0], "GROQ_API_KEY_2": GROQ_KEYS[1],
           "GROQ_API_KEY_3": GROQ_KEYS[2], "BACKUP_KEY": BACKUP_KEY,
           "DEAD_1": DEAD_KEYS[0], "DEAD_2": DEAD_KEYS[1]}  # fmt: skip
    return World(server, groq, backup, config, env, keys)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML for our configs: tables of scalars, lists and sub-tables."""
    lines, tables = [], []
    for key, value in data.items():
        name = f'"{key}"' if not key.replace("_", "").isalnum() else key
        if isinstance(value, dict):
            tables.append((f"{prefix}{name}", value))
        else:
            lines.append(f"{name} = {json.dumps(value)}")
    out = ([f"[{prefix[:-1]}]"] if prefix and lines else []) + lines
    for table_name, table in tables:
        out.append(to_toml(table, f"{table_name}."))
    return "\n".join(out) + "\n"


class ShiftedClock:
    """Real time plus an offset a test can move forward: cooldowns expire without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> asyncio.Timeout:
        return asyncio.timeout(seconds)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in ALL_SECRETS:
            assert secret not in text, "an API key leaked into output"
