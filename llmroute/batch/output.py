"""Result lines: written whole and flushed one by one, so a killed run loses no finished
answer and leaves no half line; read back to resume."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from llmroute.batch.jobs import key_of


@dataclass
class Done:
    """What an existing output file already holds."""

    answered: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    bad_lines: set[int] = field(default_factory=set)  # input lines already reported as bad

    def skip(self, job_id: str | int, retry_failed: bool) -> bool:
        key = key_of(job_id)
        return key in self.answered or (key in self.failed and not retry_failed)


def read_done(path: Path) -> Done:
    """Ids already answered or failed in `path`; a torn last line (a kill mid-write on a
    filesystem that allowed it) is cut off so that appending starts on a line of its own."""
    done = Done()
    if not path.exists():
        return done
    _cut_torn_tail(path)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = _record(line)
            if record is None:
                continue
            if isinstance(record.get("line"), int):
                done.bad_lines.add(record["line"])
                continue
            if record.get("id") is None:
                continue
            job_id = key_of(record["id"])
            if record.get("error") is None:
                done.answered.add(job_id)
                done.failed.discard(job_id)
            elif job_id not in done.answered:
                done.failed.add(job_id)
    return done


class ResultWriter:
    """Appends one JSON object per line; each line is one write, flushed at once."""

    def __init__(self, stream: IO[str], *, sync: bool = False) -> None:
        self._stream = stream
        self._sync = sync  # fsync each line (files): a power cut loses nothing finished

    def write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()
        if self._sync:
            os.fsync(self._stream.fileno())


def _record(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _cut_torn_tail(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
