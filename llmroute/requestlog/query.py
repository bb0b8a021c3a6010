"""Reading the request log: the records `logs` shows, and those `usage` sums."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmroute.errors import LogFileError
from llmroute.requestlog.logfile import connect
from llmroute.requestlog.record import ANSWERED, COLUMNS, LogRecord, from_row

TEXT = ("system", "prompt", "answer")
# Either the answering candidate or one tried first: every attempt is in `attempts`.
ANY_ATTEMPT = (
    "EXISTS (SELECT 1 FROM json_each(requests.attempts) WHERE json_extract(value, '$.{}') = ?)"
)


@dataclass(frozen=True, kw_only=True)
class Filters:
    limit: int = 10  # the newest N; 0 for all
    route: str | None = None  # the task, or the pinned provider:model
    provider: str | None = None  # answered or tried
    key: str | None = None  # alias, answered or tried
    failed: bool = False  # only requests without a whole answer
    since: float | None = None  # epoch seconds
    text: str | None = None  # words in the prompt or answer (all of them, full-text)
    with_answer: bool = False  # only records whose answer text was kept


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection | None]:
    """The log, open for reading (None when nothing was ever logged there); a file that
    cannot be read is a sentence naming it."""
    try:
        db = connect(path, create=False) if path.is_file() else None
        try:
            yield db
        finally:
            if db is not None:
                db.close()
    except sqlite3.Error as exc:
        raise LogFileError(
            f"cannot read the request log {path} ({exc}); move it aside to start afresh"
        ) from None


def find(db: sqlite3.Connection, filters: Filters) -> list[LogRecord]:
    """The newest records that match, oldest first (as they happened)."""
    where, args = _where(filters)
    limit = f" LIMIT {int(filters.limit)}" if filters.limit else ""
    rows = db.execute(
        f"SELECT * FROM (SELECT * FROM requests{where} ORDER BY id DESC{limit}) ORDER BY id",
        args,
    ).fetchall()
    return [from_row(r) for r in rows]


def since(db: sqlite3.Connection, start: float) -> list[LogRecord]:
    """Every record from `start` on, without its text (what `usage` sums)."""
    columns = ", ".join(c for c in ("id", *COLUMNS) if c not in TEXT)
    rows = db.execute(f"SELECT {columns} FROM requests WHERE at >= ? ORDER BY id", (start,))
    return [from_row(r) for r in rows.fetchall()]


def _where(f: Filters) -> tuple[str, list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    for clause, value in (
        ("route = ?", f.route),
        (ANY_ATTEMPT.format("provider"), f.provider),
        (ANY_ATTEMPT.format("key"), f.key),
        ("at >= ?", f.since),
        ("id IN (SELECT rowid FROM requests_text WHERE requests_text MATCH ?)",
         match_words(f.text) if f.text else None),
    ):  # fmt: skip
        if value is not None:
            clauses.append(clause)
            args.append(value)
    if f.failed:
        clauses.append(f"outcome != '{ANSWERED}'")
    if f.with_answer:
        clauses.append("answer IS NOT NULL")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def match_words(text: str) -> str:
    """An FTS5 query for all of `text`'s words, each quoted: what a user types is never FTS5
    syntax (a quote, `AND`, a `-` or `*` would be)."""
    words = text.split()
    return " ".join('"' + w.replace('"', '""') + '"' for w in words) or '""'
