"""State in one SQLite file, shared by every llmroute process on the machine.

WAL lets readers run beside the one writer; every read-modify-write is one `BEGIN IMMEDIATE`
transaction, which takes the write lock up front, so two processes never deadlock upgrading a
read lock (the path to "database is locked"), and the busy timeout queues them instead.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from llmroute.budget import Cost, Finished, Learned, UsageEntry
from llmroute.config import Limits
from llmroute.cooldowns import Cooldown, provider_of
from llmroute.errors import StateFileError
from llmroute.state.base import (
    Reservation,
    Snapshot,
    decide_reservation,
    decode_learned,
    encode_learned,
)

BUSY_TIMEOUT_MS = 60_000


SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (pool TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cooldowns (
    scope TEXT PRIMARY KEY, until REAL NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (scope TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, at REAL NOT NULL,
    requests INTEGER NOT NULL, tokens INTEGER NOT NULL);
DROP INDEX IF EXISTS usage_scope_at;
-- covering: the per-reservation sums read the index alone, not one table row per entry
CREATE INDEX IF NOT EXISTS usage_window ON usage (scope, at, requests, tokens);
CREATE TABLE IF NOT EXISTS learned (scope TEXT PRIMARY KEY, windows TEXT NOT NULL);
"""


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, or no permission
            raise sqlite3.OperationalError(f"cannot create {path.parent}: {exc.strerror}") from exc
        self.path = path
        self._lock = threading.Lock()  # one connection, shared by the threads of a process
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, not torn
        with self._write(opening=True) as db:  # its errors are open_sqlite's to judge
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def _write(self, *, opening: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock, contextlib.nullcontext() if opening else self._trouble():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _trouble(self) -> Iterator[None]:
        """A state file that stops working while in use (its disk full, made read-only,
        removed) is a sentence about that file, not a crash."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise
            raise StateFileError(
                f"the state file {self.path} failed ({exc}); check the disk and its "
                "permissions, or run `llmroute state reset --hard`"
            ) from None

    def _read(self, sql: str, args: Iterable[object] = ()) -> list[tuple[object, ...]]:
        with self._lock, self._trouble():
            return self._db.execute(sql, tuple(args)).fetchall()

    def advance_cursor(self, pool: str) -> int:
        with self._write() as db:
            row = db.execute(
                "INSERT INTO cursors VALUES (?, 1) ON CONFLICT(pool) DO UPDATE "
                "SET value = value + 1 RETURNING value",
                (pool,),
            ).fetchone()
        return int(row[0]) - 1

    def cooldowns(self, scopes: Iterable[str], now: float) -> dict[str, Cooldown]:
        wanted = list(scopes)
        marks = ",".join("?" * len(wanted))
        rows = self._read(
            "SELECT scope, until, kind, reason FROM cooldowns "
            f"WHERE until > ? AND scope IN ({marks})",
            [now, *wanted],
        )
        return {str(r[0]): _cooldown(r) for r in rows}

    def extend_cooldown(self, cooldown: Cooldown) -> Cooldown:
        c = cooldown
        with self._write() as db:
            db.execute(
                "INSERT INTO cooldowns VALUES (?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET "
                "until = excluded.until, kind = excluded.kind, reason = excluded.reason "
                "WHERE excluded.until > cooldowns.until",
                (c.scope, c.until, c.kind, c.reason),
            )
            row = db.execute(
                "SELECT scope, until, kind, reason FROM cooldowns WHERE scope = ?", (c.scope,)
            ).fetchone()
        return _cooldown(row)

    def note_failure(self, scope: str) -> int:
        with self._write() as db:
            row = db.execute(
                "INSERT INTO failures VALUES (?, 1) ON CONFLICT(scope) DO UPDATE "
                "SET count = count + 1 RETURNING count",
                (scope,),
            ).fetchone()
        return int(row[0])

    def note_success(self, scope: str) -> None:
        # A read first: the common case (no open circuit) then costs no write lock.
        if self._read("SELECT 1 FROM failures WHERE scope = ?", (scope,)):
            with self._write() as db:
                db.execute("DELETE FROM failures WHERE scope = ?", (scope,))

    def reserve(self, scope: str, limits: Limits, cost: Cost, now: float) -> Reservation:
        with self._write() as db:
            learned = _load_learned(db, scope)
            decision = decide_reservation(_SQLLog(db, scope), learned, limits, cost, now)
            db.execute(
                "DELETE FROM usage WHERE scope = ? AND at <= ?", (scope, decision.keep_after)
            )
            if decision.entry is not None:
                e = decision.entry
                db.execute(
                    "INSERT INTO usage VALUES (?, ?, ?, ?, ?)",
                    (e.id, scope, e.at, e.requests, e.tokens),
                )
            if decision.learned != learned:
                _store_learned(db, scope, decision.learned)
        return decision.reservation

    def finish(self, scope: str, done: Finished, now: float) -> None:
        with self._write() as db:
            learned = _load_learned(db, scope)
            _store_learned(
                db, scope, learned.heard(done.windows, done.entry_id, now, answered=done.heard)
            )
            db.execute(
                "UPDATE usage SET at = max(at, ?), tokens = coalesce(?, tokens) WHERE id = ?",
                (done.sent_at, done.tokens, done.entry_id),
            )

    def snapshot(self, now: float) -> Snapshot:
        usage: dict[str, list[UsageEntry]] = {}
        for row in self._read("SELECT id, at, requests, tokens, scope FROM usage ORDER BY at"):
            usage.setdefault(str(row[4]), []).append(_entry(row))
        return Snapshot(
            cooldowns=[
                _cooldown(r)
                for r in self._read(
                    "SELECT scope, until, kind, reason FROM cooldowns WHERE until > ?", (now,)
                )
            ],
            failures={str(s): int(str(n)) for s, n in self._read("SELECT * FROM failures")},
            learned={
                str(s): decode_learned(str(w)) for s, w in self._read("SELECT * FROM learned")
            },
            usage=usage,
            cursors={str(p): int(str(v)) for p, v in self._read("SELECT * FROM cursors")},
        )

    def clear(self, provider: str | None = None) -> int:
        cleared = 0
        with self._write() as db:
            for table, column in (("cooldowns", "scope"), ("failures", "scope"),
                                  ("usage", "scope"), ("learned", "scope"),
                                  ("cursors", "pool")):  # fmt: skip
                keys = {str(k) for (k,) in db.execute(f"SELECT DISTINCT {column} FROM {table}")}
                doomed = [k for k in keys if provider is None or provider_of(k) == provider]
                for key in doomed:
                    db.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
                cleared += len(doomed) if table == "cooldowns" else 0
        return cleared

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _SQLLog:
    """A scope's usage, summed by SQLite over the (scope, at) index."""

    def __init__(self, db: sqlite3.Connection, scope: str) -> None:
        self.db, self.scope = db, scope

    def used(self, dimension: str, since: float) -> int:
        column = "requests" if dimension == "requests" else "tokens"
        (total,) = self.db.execute(
            f"SELECT coalesce(sum({column}), 0) FROM usage WHERE scope = ? AND at > ?",
            (self.scope, since),
        ).fetchone()
        return int(total)

    def oldest_first(self, since: float) -> list[UsageEntry]:
        rows = self.db.execute(
            "SELECT id, at, requests, tokens FROM usage WHERE scope = ? AND at > ? ORDER BY at",
            (self.scope, since),
        ).fetchall()
        return [_entry(r) for r in rows]


def _cooldown(row: tuple[object, ...]) -> Cooldown:
    scope, until, kind, reason = row
    return Cooldown(str(scope), float(str(until)), str(kind), str(reason))


def _entry(row: tuple[object, ...]) -> UsageEntry:
    return UsageEntry(str(row[0]), float(str(row[1])), int(str(row[2])), int(str(row[3])))


def _load_learned(db: sqlite3.Connection, scope: str) -> Learned:
    row = db.execute("SELECT windows FROM learned WHERE scope = ?", (scope,)).fetchone()
    return decode_learned(row[0] if row else None)


def _store_learned(db: sqlite3.Connection, scope: str, learned: Learned) -> None:
    db.execute(
        "INSERT INTO learned VALUES (?, ?) "
        "ON CONFLICT(scope) DO UPDATE SET windows = excluded.windows",
        (scope, encode_learned(learned)),
    )
