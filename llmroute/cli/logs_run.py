"""Running `llmroute logs` and `logs prune`: find the log, query it, print what was asked for."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from llmroute.cli.boundary import guarded
from llmroute.cli.options import since_option
from llmroute.cli.report import Report
from llmroute.cli.stdout import emit
from llmroute.errors import UsageError
from llmroute.requestlog.logfile import locate, prune
from llmroute.requestlog.query import Filters, find, reading
from llmroute.requestlog.record import LogRecord
from llmroute.timespan import parse_duration


@dataclass(frozen=True, kw_only=True)
class LogsOptions:
    count: int = 10
    task: str | None = None
    provider: str | None = None
    key: str | None = None
    failed: bool = False
    since: str | None = None
    query: str | None = None
    json_output: bool = False
    jsonl: bool = False
    table: bool = False
    last: bool = False
    config: Path | None = None


def run_logs(options: LogsOptions) -> int:
    return guarded(lambda: _logs(options), Report.for_stderr())


def run_prune(*, older_than: str | None, config: Path | None) -> int:
    return guarded(lambda: _prune(older_than, config), Report.for_stderr())


def _logs(o: LogsOptions) -> int:
    formats = [o.json_output, o.jsonl, o.table, o.last]
    if sum(formats) > 1:
        raise UsageError("--json, --jsonl, --table and --last each choose the output: pick one")
    filters = Filters(
        limit=1 if o.last else o.count, route=o.task, provider=o.provider, key=o.key,
        failed=o.failed, since=since_option(o.since, time.time()), text=o.query,
        with_answer=o.last,
    )  # fmt: skip
    _, _, path = locate(o.config)
    with reading(path) as db:
        records = [] if db is None else find(db, filters)
    if o.last:
        return _last(records, path)
    if o.json_output:
        emit(json.dumps([r.to_dict() for r in records], ensure_ascii=False, indent=2) + "\n")
    elif o.jsonl:
        emit("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records))
    else:
        _readable(records, path, table=o.table)
    return 0


def _last(records: list[LogRecord], path: Path) -> int:
    if not records:
        raise UsageError(
            f"no answer in the request log {path} matches (answers are kept only when the "
            "text is logged: not for `serve`, --no-log-content or log_content = false)"
        )
    answer = records[-1].answer or ""
    emit(answer if answer.endswith("\n") else answer + "\n")
    return 0


def _readable(records: list[LogRecord], path: Path, *, table: bool) -> None:
    from llmroute.cli.logs_view import blocks, records_table
    from llmroute.cli.report import make_console

    if not records:
        sys.stderr.write(f"no requests in the log {path} match\n")
        return
    if table:
        make_console(stderr=False).print(records_table(records))
    else:
        emit(blocks(records))


def _prune(older_than: str | None, config_path: Path | None) -> int:
    config, _, path = locate(config_path)
    if older_than is not None:
        try:
            keep = parse_duration(older_than)
        except ValueError as exc:
            raise UsageError(f"--older-than {exc}") from None
    elif config.settings.log_retention is None:
        raise UsageError('log_retention is "forever": say how much to keep with --older-than')
    else:
        keep = config.settings.log_retention
    now = time.time()
    with reading(path) as db:
        removed = 0 if db is None else prune(db, now - keep, now)
    sys.stderr.write(f"removed {removed} request(s) older than {older_than or 'log_retention'}\n")
    return 0
