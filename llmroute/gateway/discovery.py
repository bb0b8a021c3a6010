"""How a local `llmroute ask` finds a running `llmroute serve`: a small file in the user state
directory saying where it listens and which config it serves. Standard library only: the
client side of this must start fast."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "gateway.json"


@dataclass(frozen=True, kw_only=True)
class Announcement:
    url: str  # http://host:port, without /v1
    pid: int
    config: str | None  # the config file it serves, resolved; None: the built-in registry


def announcement_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def announce(path: Path, announcement: Announcement) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(asdict(announcement)))
    partial.replace(path)  # atomic: a reader never sees half a file


def withdraw(path: Path, pid: int) -> None:
    """Remove the announcement if it is still this process's (another gateway may have
    started since and announced itself)."""
    found = read_announcement(path)
    if found is not None and found.pid == pid:
        path.unlink(missing_ok=True)


def read_announcement(path: Path) -> Announcement | None:
    try:
        data = json.loads(path.read_text())
        return Announcement(url=str(data["url"]), pid=int(data["pid"]), config=data["config"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
