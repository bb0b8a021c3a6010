"""The request log: every routed request remembered in SQLite, for `logs` and `usage`.

`RequestLog` is what the engine holds: when a request ends, the engine builds its record
(`record.ended`) and `put`s it, for the background writer. `LogPolicy` is what each caller
says: its source, and whether the text of prompts and answers is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmroute.config import Settings
from llmroute.keys import Redactor
from llmroute.requestlog.record import LogRecord
from llmroute.requestlog.writer import LogWriter

__all__ = ["LIBRARY", "LogPolicy", "LogRecord", "RequestLog"]


@dataclass(frozen=True)
class LogPolicy:
    """`source`: the command or client (ask, batch, serve, library). `content`: keep the text
    (None: `[settings] log_content`, and without it `content_default`)."""

    source: str = "library"
    content: bool | None = None
    content_default: bool = True

    def keeps_content(self, setting: bool | None) -> bool:
        for choice in (self.content, setting):
            if choice is not None:
                return choice
        return self.content_default


# A library user's requests are logged, but their text only when asked (`[settings]
# log_content = true` or `LogPolicy(content=True)`): an application embedding llmroute may
# carry its own users' prompts, which a log file in the user's state directory should not keep
# unasked. The CLI keeps the text by default, as `llm` does; `serve` does not.
LIBRARY = LogPolicy(content_default=False)


class RequestLog:
    def __init__(self, policy: LogPolicy, settings: Settings, path: Path, redact: Redactor) -> None:
        self.source = policy.source
        self.content = policy.keeps_content(settings.log_content)
        self.writer = LogWriter(path, retention_s=settings.log_retention, redact=redact)

    @property
    def path(self) -> Path:
        return self.writer.path

    def put(self, record: LogRecord) -> None:
        self.writer.put(record)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
