"""How a local `llmroute ask` finds a running `llmroute serve`: a small file in the user state
directory saying where it listens and which config it serves. Standard library only, and
little of it: the client side of this must start fast."""

from __future__ import annotations

import contextlib
import json
import os

FILE_NAME = "gateway.json"


class Announcement:
    def __init__(self, *, url: str, pid: int, config: str | None) -> None:
        self.url = url  # http://host:port, without /v1
        self.pid = pid
        self.config = config  # the config file it serves, resolved; None: the built-in registry


def announcement_path(state_dir: str | os.PathLike[str]) -> str:
    return os.path.join(state_dir, FILE_NAME)


def announce(path: str, announcement: Announcement) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{os.path.splitext(path)[0]}.{os.getpid()}.tmp"
    with open(partial, "w") as file:
        json.dump(vars(announcement), file)
    os.replace(partial, path)  # atomic: a reader never sees half a file


def withdraw(path: str, pid: int) -> None:
    """Remove the announcement if it is still this process's (another gateway may have
    started since and announced itself)."""
    found = read_announcement(path)
    if found is not None and found.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def read_announcement(path: str) -> Announcement | None:
    try:
        with open(path) as file:
            data = json.load(file)
        return Announcement(url=str(data["url"]), pid=int(data["pid"]), config=data["config"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
