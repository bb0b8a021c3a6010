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
from dataclasses import replace
from pathlib import Path

from llmroute.budget import Cost, Finished, Learned, UsageEntry
from llmroute.config import Limits
from llmroute.cooldowns import Cooldown, provider_of
from llmroute.errors import StateFileError
from llmroute.state.base import (
    LearnedChange,
    Reservation,
    Snapshot,
    decide_reservation,
    decode_learned,
    encode_learned,
    keep_after,
    learned_change,
)

BUSY_TIMEOUT_MS = 60_000
CHECKPOINT_EVERY_S = 1.0  # a long-running process's WAL checkpoints (upkeep_in_background)


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cursors (pool TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS cooldowns (
        scope TEXT PRIMARY KEY, until REAL NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS failures (scope TEXT PRIMARY KEY, count INTEGER NOT NULL)",
    # A scope's log in time order, one B-tree: a window's sums read a range of it, and every
    # page a commit touches is written to the WAL (a table with a rowid and indexes is three).
    """CREATE TABLE IF NOT EXISTS usage_log (
        scope TEXT NOT NULL, at REAL NOT NULL, id TEXT NOT NULL,
        requests INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (scope, at, id)
    ) WITHOUT ROWID""",
    # The whole log's sums, kept as it changes: the widest window's sum costs one row.
    """CREATE TABLE IF NOT EXISTS usage_totals (
        scope TEXT PRIMARY KEY, requests INTEGER NOT NULL, tokens INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TRIGGER IF NOT EXISTS usage_added AFTER INSERT ON usage_log BEGIN
        INSERT INTO usage_totals VALUES (new.scope, new.requests, new.tokens)
        ON CONFLICT(scope) DO UPDATE SET requests = requests + excluded.requests,
                                         tokens = tokens + excluded.tokens;
    END""",
    """CREATE TRIGGER IF NOT EXISTS usage_removed AFTER DELETE ON usage_log BEGIN
        UPDATE usage_totals SET requests = requests - old.requests, tokens = tokens - old.tokens
        WHERE scope = old.scope;
    END""",
    """CREATE TRIGGER IF NOT EXISTS usage_settled AFTER UPDATE ON usage_log BEGIN
        UPDATE usage_totals SET requests = requests - old.requests, tokens = tokens - old.tokens
        WHERE scope = old.scope;
        UPDATE usage_totals SET requests = requests + new.requests, tokens = tokens + new.tokens
        WHERE scope = new.scope;
    END""",
    "CREATE TABLE IF NOT EXISTS learned (scope TEXT PRIMARY KEY, windows TEXT NOT NULL)",
    # The holds in flight, apart from the learned record that rarely changes. Tables without
    # rowids are one B-tree each: every page a commit touches is written to the WAL.
    """CREATE TABLE IF NOT EXISTS pending (
        scope TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL,
        requests INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (scope, id)
    ) WITHOUT ROWID""",
)
# 1: the log in `usage_log` with running totals, holds in `pending` (before: a `usage` table,
# and holds inside the learned record)
SCHEMA_VERSION = 1


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, or no permission
            raise sqlite3.OperationalError(f"cannot create {path.parent}: {exc.strerror}") from exc
        self.path = path
        self._checkpointer: Checkpointer | None = None
        self._lock = threading.Lock()  # one connection, shared by the threads of a process
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, not torn
        with self._write(opening=True) as db:  # its errors are open_sqlite's to judge
            for statement in SCHEMA:
                db.execute(statement)
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                _migrate(db)

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
            db.execute(
                "DELETE FROM usage_log WHERE scope = ? AND at <= ?",
                (scope, keep_after(limits, learned, now)),
            )
            decision = decide_reservation(_SQLLog(db, scope), learned, limits, cost, now)
            if decision.entry is not None:
                db.execute(
                    "INSERT INTO usage_log VALUES (?, ?, ?, ?, ?)", _row(scope, decision.entry)
                )
            _store_learned(db, scope, learned_change(learned, decision.learned))
        return decision.reservation

    def finish(self, scope: str, done: Finished, now: float) -> None:
        with self._write() as db:
            learned = _load_learned(db, scope)
            heard = learned.heard(done.windows, done.entry_id, now, answered=done.heard)
            _store_learned(db, scope, learned_change(learned, heard))
            _settle(db, scope, done, learned.pending.get(done.entry_id))

    def snapshot(self, now: float) -> Snapshot:
        usage: dict[str, list[UsageEntry]] = {}
        rows = self._read("SELECT id, at, requests, tokens, scope FROM usage_log ORDER BY at")
        for row in rows:
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
                str(s): _with_pending(decode_learned(str(w)), self._read(PENDING_OF, (s,)))
                for s, w in self._read("SELECT * FROM learned")
            },
            usage=usage,
            cursors={str(p): int(str(v)) for p, v in self._read("SELECT * FROM cursors")},
        )

    def clear(self, provider: str | None = None) -> int:
        cleared = 0
        with self._write() as db:
            for table, column in (("cooldowns", "scope"), ("failures", "scope"),
                                  ("usage_log", "scope"), ("usage_totals", "scope"),
                                  ("learned", "scope"), ("pending", "scope"),
                                  ("cursors", "pool")):  # fmt: skip
                keys = {str(k) for (k,) in db.execute(f"SELECT DISTINCT {column} FROM {table}")}
                doomed = [k for k in keys if provider is None or provider_of(k) == provider]
                for key in doomed:
                    db.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
                cleared += len(doomed) if table == "cooldowns" else 0
        return cleared

    def upkeep_in_background(self) -> None:
        """Copy the WAL back into the file from a thread of its own, instead of inside
        whichever commit crosses SQLite's 1000 pages and then waits for the disk: that is about
        half of what a commit costs on average. Other processes keep checkpointing as usual."""
        if self._checkpointer is not None:
            return
        try:
            self._checkpointer = Checkpointer(self.path)
        except sqlite3.Error:
            return  # the commits go on checkpointing, as in any other process
        with self._lock:
            self._db.execute("PRAGMA wal_autocheckpoint = 0")

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()


class Checkpointer:
    """A thread that checkpoints the WAL every CHECKPOINT_EVERY_S on a connection of its own
    (PASSIVE: it never waits for, nor blocks, a writer)."""

    def __init__(self, path: Path) -> None:
        self._every_s = CHECKPOINT_EVERY_S
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmroute-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self._every_s):
                self._checkpoint(self._db)
            self._checkpoint(self._db)  # what the last second wrote
        finally:
            self._db.close()

    @staticmethod
    def _checkpoint(db: sqlite3.Connection) -> None:
        # A file in trouble is the store's to report, on its next write; not this thread's.
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class _SQLLog:
    """A scope's usage: the whole log's sums from its running totals, a narrower window's
    summed by SQLite over the (scope, at) index."""

    def __init__(self, db: sqlite3.Connection, scope: str) -> None:
        self.db, self.scope = db, scope
        self._whole: tuple[float | None, int, int] | None = None

    def used(self, dimension: str, since: float) -> int:
        oldest, requests, tokens = self._totals()
        if oldest is None or since < oldest:  # the window holds the whole log
            return requests if dimension == "requests" else tokens
        column = "requests" if dimension == "requests" else "tokens"
        (total,) = self.db.execute(
            f"SELECT coalesce(sum({column}), 0) FROM usage_log WHERE scope = ? AND at > ?",
            (self.scope, since),
        ).fetchone()
        return int(total)

    def oldest_first(self, since: float) -> list[UsageEntry]:
        rows = self.db.execute(
            "SELECT id, at, requests, tokens FROM usage_log WHERE scope = ? AND at > ? ORDER BY at",
            (self.scope, since),
        ).fetchall()
        return [_entry(r) for r in rows]

    def _totals(self) -> tuple[float | None, int, int]:
        """The oldest entry's time and the log's sums."""
        if self._whole is None:
            row = self.db.execute(
                "SELECT (SELECT at FROM usage_log WHERE scope = ?1 ORDER BY at LIMIT 1), "
                "requests, tokens FROM usage_totals WHERE scope = ?1",
                (self.scope,),
            ).fetchone()
            self._whole = (row[0], int(row[1]), int(row[2])) if row else (None, 0, 0)
        return self._whole


def _cooldown(row: tuple[object, ...]) -> Cooldown:
    scope, until, kind, reason = row
    return Cooldown(str(scope), float(str(until)), str(kind), str(reason))


def _entry(row: tuple[object, ...]) -> UsageEntry:
    return UsageEntry(str(row[0]), float(str(row[1])), int(str(row[2])), int(str(row[3])))


PENDING_OF = "SELECT id, at, requests, tokens FROM pending WHERE scope = ?"


def _row(scope: str, e: UsageEntry) -> tuple[object, ...]:
    return (scope, e.at, e.id, e.requests, e.tokens)


def _held(scope: str, e: UsageEntry) -> tuple[object, ...]:
    return (scope, e.id, e.at, e.requests, e.tokens)


def _settle(db: sqlite3.Connection, scope: str, done: Finished, held: UsageEntry | None) -> None:
    """Stamp the entry when it was sent, with the tokens counted. Its hold tells where it is
    in the log; without one (held past its time, or the state was reset) it is looked for."""
    where = "scope = ? AND id = ?" if held is None else "scope = ? AND at = ? AND id = ?"
    key = (scope, done.entry_id) if held is None else (scope, held.at, done.entry_id)
    db.execute(
        f"UPDATE usage_log SET at = max(at, ?), tokens = coalesce(?, tokens) WHERE {where}",
        (done.sent_at, done.tokens, *key),
    )


def _load_learned(db: sqlite3.Connection, scope: str) -> Learned:
    """The scope's learned record with its holds in flight."""
    row = db.execute("SELECT windows FROM learned WHERE scope = ?", (scope,)).fetchone()
    return _with_pending(
        decode_learned(row[0] if row else None), db.execute(PENDING_OF, (scope,)).fetchall()
    )


def _with_pending(learned: Learned, rows: list[tuple[object, ...]]) -> Learned:
    if not rows:
        return learned
    return replace(learned, pending={**learned.pending, **{str(r[0]): _entry(r) for r in rows}})


def _store_learned(db: sqlite3.Connection, scope: str, change: LearnedChange) -> None:
    if change.record is not None:
        db.execute(
            "INSERT INTO learned VALUES (?, ?) "
            "ON CONFLICT(scope) DO UPDATE SET windows = excluded.windows",
            (scope, encode_learned(change.record)),
        )
    if change.released:
        db.executemany(
            "DELETE FROM pending WHERE scope = ? AND id = ?", [(scope, k) for k in change.released]
        )
    if change.held:
        db.executemany(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?)",
            [_held(scope, e) for e in change.held],
        )


# What a process of the previous version still running on the file finds under the name it
# uses: `usage`, a view of `usage_log` that its reads, inserts, settles and prunes go through,
# so that both versions count one log. (One started after the upgrade stops at its first
# `CREATE INDEX … ON usage`: views take no index. Its message names the state file.)
FORMER_NAMES = (
    "CREATE VIEW IF NOT EXISTS usage AS SELECT id, scope, at, requests, tokens FROM usage_log",
    """CREATE TRIGGER IF NOT EXISTS usage_view_insert INSTEAD OF INSERT ON usage BEGIN
        INSERT INTO usage_log VALUES (new.scope, new.at, new.id, new.requests, new.tokens);
    END""",
    """CREATE TRIGGER IF NOT EXISTS usage_view_update INSTEAD OF UPDATE ON usage BEGIN
        UPDATE usage_log SET at = new.at, requests = new.requests, tokens = new.tokens
        WHERE scope = old.scope AND at = old.at AND id = old.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS usage_view_delete INSTEAD OF DELETE ON usage BEGIN
        DELETE FROM usage_log WHERE scope = old.scope AND at = old.at AND id = old.id;
    END""",
)


def _migrate(db: sqlite3.Connection) -> None:
    """A file of an older version (or a new one): its log moves to `usage_log`, the old names
    become FORMER_NAMES for processes of that version, and holds leave the learned records."""
    row = db.execute("SELECT type FROM sqlite_master WHERE name = 'usage'").fetchone()
    if row is not None and row[0] == "table":
        db.execute(
            "INSERT OR IGNORE INTO usage_log SELECT scope, at, id, requests, tokens FROM usage"
        )
        db.execute("DROP TABLE usage")  # its indexes go with it
    for statement in FORMER_NAMES:
        db.execute(statement)
    for scope, text in db.execute("SELECT scope, windows FROM learned").fetchall():
        learned = decode_learned(text)
        if learned.pending:  # the record is written again without them
            held = tuple(learned.pending.values())
            _store_learned(db, scope, LearnedChange(record=learned, held=held, released=()))
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
