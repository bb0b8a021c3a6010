"""Opening the SQLite state file when the file itself is the trouble.

The state is cooldowns, cursors and budgets: losing it costs at most a few 429s. So a corrupt
file is moved aside and started afresh (with a warning), and a location that cannot be used
(read-only, a directory in the way) is a sentence naming the file and what to do, never
"internal error". Errors are told apart by SQLite's result code, not by message.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from llmroute.errors import StateFileError
from llmroute.state.sqlite import SQLiteStore

log = logging.getLogger("llmroute")
CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
SIDE_FILES = ("-wal", "-shm")


def open_sqlite(path: Path) -> SQLiteStore:
    try:
        return SQLiteStore(path)
    except sqlite3.DatabaseError as exc:
        if _code(exc) not in CORRUPT_CODES:
            raise unusable(path, exc) from None
    moved = set_aside(path)
    log.warning("the state file %s was corrupt: moved to %s, starting afresh", path, moved.name)
    try:
        return SQLiteStore(path)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise unusable(path, exc) from None


def set_aside(path: Path) -> Path:
    """Move the state file (and its WAL files) to `<name>.corrupt-<time>`; return the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", *SIDE_FILES):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.replace(target.with_name(target.name + suffix))
    return target


def unusable(path: Path, exc: Exception) -> StateFileError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StateFileError(
        f"cannot use the state file {path} ({reason}); make its directory writable, or put "
        "the state elsewhere: LLMROUTE_STATE=sqlite:///path/to/state.sqlite3 (or memory)"
    )


def _code(exc: sqlite3.DatabaseError) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF  # the primary code of an extended one
