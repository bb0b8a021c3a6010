"""Appending records off the answer path: a queue, and one thread that writes them in batches.

A request only puts its record on a queue (a few microseconds); the thread opens the file,
prunes it when due and writes whatever has queued up in one transaction, so a burst of
answers costs one commit, not one each. `close` (the router's, or at exit) writes what is
left. A log that cannot be written (read-only, disk full) is said once, on the `llmroute`
logger, and the process goes on without it: a request never fails for its log.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from llmroute.requestlog.logfile import BUSY_TIMEOUT_S, connect, prune, pruned_at, transaction
from llmroute.requestlog.record import COLUMNS, LogRecord, to_row

log = logging.getLogger("llmroute")
BATCH = 512
LINGER_S = 0.05  # how long a batch waits for more records before it is written
PRUNE_EVERY_S = 3600.0  # across processes: the time of the last pruning is in the file
INSERT = (
    f"INSERT INTO requests ({', '.join(COLUMNS)}, exit_code) "
    f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
)
_STOP = object()
_reported: set[Path] = set()  # logs already said to be unwritable: once per process


class LogWriter:
    def __init__(
        self,
        path: Path,
        *,
        retention_s: float | None,
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._retention_s, self._redact, self._clock = retention_s, redact, clock
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._broken = False
        self._stopping = False  # the stop was taken off the queue
        self._hurry = threading.Event()  # a flush or the stop waits: write without lingering
        self._backlog = False  # the last batch was full

    def put(self, record: LogRecord) -> None:
        """Queue `record` for the writer thread; never blocks, never raises."""
        if self._broken:
            return
        if self._thread is None:
            self._start()
        self._queue.put(record)

    def flush(self, timeout: float = BUSY_TIMEOUT_S) -> None:
        """Wait until what was queued before this call is written (or dropped, the log being
        unwritable): for a reader in this process that must see its own requests."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        done.wait(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._starting:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        atexit.unregister(self.close)
        self._queue.put(_STOP)
        self._hurry.set()
        thread.join(BUSY_TIMEOUT_S + 5)

    def _start(self) -> None:
        with self._starting:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="llmroute-log", daemon=True)
            thread.start()
            self._thread = thread
        atexit.register(self.close)  # a router never closed still writes its records

    def _run(self) -> None:
        try:
            db = connect(self.path, create=True)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            return
        try:
            while True:
                self._prune_if_due(db)  # at most hourly: a long-running `serve` prunes too
                if not self._write_batch(db):
                    break
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
        finally:
            db.close()

    def _write_batch(self, db: sqlite3.Connection) -> bool:
        """Wait for a record, let those that follow gather for a moment (one commit for many
        answers), write them; False once told to stop. While they gather, a `put` wakes
        nobody: a thread woken per record would take the GIL from the answering one each
        time. A flush or the stop ends the gathering at once: `close` never waits for it."""
        batch = [self._queue.get()]
        if isinstance(batch[0], LogRecord) and not self._backlog:
            self._hurry.wait(LINGER_S)
        self._hurry.clear()  # what a flush queued before this is taken below
        while len(batch) < BATCH and isinstance(batch[-1], LogRecord):
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._backlog = len(batch) >= BATCH  # more are waiting: no lingering for them
        rows = [self._row(r) for r in batch if isinstance(r, LogRecord)]
        self._stopping = _STOP in batch  # taken off the queue: a failure must not wait for it
        try:
            if rows:
                with transaction(db):
                    db.executemany(INSERT, rows)
        finally:
            _wake(batch)  # written, or failed: whoever waits for it may go on
        return _STOP not in batch

    def _row(self, record: LogRecord) -> tuple[object, ...]:
        # Keys never reach the file: every text passes the redactor (provider messages that
        # echo a key are redacted already; this also covers a prompt that quotes one).
        return tuple(self._redact(v) if isinstance(v, str) else v for v in to_row(record))

    def _prune_if_due(self, db: sqlite3.Connection) -> None:
        now = self._clock()
        if self._retention_s is not None and now - pruned_at(db) >= PRUNE_EVERY_S:
            prune(db, now - self._retention_s, now)

    def _failed(self, exc: Exception) -> None:
        self._broken = True
        if self.path not in _reported:
            _reported.add(self.path)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning(
                "the request log %s cannot be written (%s); requests go on without it. Make "
                "its directory writable, set LLMROUTE_LOG to another file, or pass --no-log",
                self.path, reason,
            )  # fmt: skip
        while not self._stopping:  # drop what comes until told to stop; `close` returns
            item = self._queue.get()
            self._stopping = item is _STOP
            _wake([item])


def _wake(batch: list[object]) -> None:
    for item in batch:
        if isinstance(item, threading.Event):
            item.set()
