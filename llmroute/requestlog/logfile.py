"""The request log's SQLite file: where it is, its schema, and opening it.

Beside the state file when the state store is SQLite, else in the user state directory;
`LLMROUTE_LOG` names another file. WAL and a busy timeout let many processes append at once
(a shell loop of `ask`, a batch, a gateway) while `logs` and `usage` read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from llmroute.config import Config
from llmroute.state import sqlite_path, state_url

LOG_FILE = "requests.sqlite3"
LOG_ENV = "LLMROUTE_LOG"
BUSY_TIMEOUT_S = 30.0
SCHEMA_VERSION = 1

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, route TEXT NOT NULL,
    outcome TEXT NOT NULL, latency_s REAL NOT NULL, attempts TEXT NOT NULL,
    provider TEXT, key TEXT, model TEXT, ttft_s REAL, waited_s REAL NOT NULL,
    tokens_in INTEGER, tokens_out INTEGER, error TEXT, system TEXT, prompt TEXT, answer TEXT,
    exit_code INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS requests_at ON requests (at);
-- full text over prompts and answers; rows without text (log_content off) stay out of it
CREATE VIRTUAL TABLE IF NOT EXISTS requests_text USING fts5(
    prompt, answer, content='requests', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS requests_text_add AFTER INSERT ON requests
WHEN new.prompt IS NOT NULL OR new.answer IS NOT NULL BEGIN
    INSERT INTO requests_text (rowid, prompt, answer) VALUES (new.id, new.prompt, new.answer);
END;
CREATE TRIGGER IF NOT EXISTS requests_text_drop AFTER DELETE ON requests
WHEN old.prompt IS NOT NULL OR old.answer IS NOT NULL BEGIN
    INSERT INTO requests_text (requests_text, rowid, prompt, answer)
    VALUES ('delete', old.id, old.prompt, old.answer);
END;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value REAL NOT NULL);
PRAGMA user_version = %d;
COMMIT;
"""


def log_path(config: Config, env: Mapping[str, str]) -> Path:
    if env.get(LOG_ENV):
        return Path(env[LOG_ENV]).expanduser()
    url = state_url(config, env).strip()
    if url == "sqlite" or url.startswith("sqlite://"):
        return sqlite_path(url, None).with_name(LOG_FILE)
    from llmroute.environment import state_dir

    return state_dir() / LOG_FILE


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), rows by column name;
    `create` makes the directory and the schema. Raises sqlite3.Error or OSError."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                         check_same_thread=False)  # fmt: skip
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if create:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never torn
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            db.executescript(SCHEMA % SCHEMA_VERSION)  # one transaction; idempotent
    return db


def prune(db: sqlite3.Connection, before: float, now: float) -> int:
    """Forget the requests that started before `before`; how many went."""
    with transaction(db):
        removed = db.execute("DELETE FROM requests WHERE at < ?", (before,)).rowcount
        db.execute("INSERT OR REPLACE INTO meta VALUES ('pruned_at', ?)", (now,))
    return int(removed)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, its lock taken up front (no deadlock upgrading a read lock)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def pruned_at(db: sqlite3.Connection) -> float:
    row = db.execute("SELECT value FROM meta WHERE name = 'pruned_at'").fetchone()
    return float(row[0]) if row else 0.0


def locate(config_path: str | Path | None) -> tuple[Config, Mapping[str, str], Path]:
    """The config, environment and log file a command would use (found as the CLI does)."""
    from llmroute.environment import load_environment, locate_config

    env = load_environment()
    config = locate_config(config_path, env)
    return config, env, log_path(config, env)
