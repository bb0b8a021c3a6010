"""Running `llmroute usage`: the report from the request log, as a table, JSON or CSV."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llmroute.cli.boundary import guarded
from llmroute.cli.options import since_option
from llmroute.cli.report import Report
from llmroute.cli.stdout import emit
from llmroute.config import Config
from llmroute.errors import LLMRouteError, UsageError
from llmroute.pools import build_pools
from llmroute.requestlog.logfile import locate
from llmroute.requestlog.report import usage_report
from llmroute.requestlog.usage import GROUPINGS
from llmroute.state import Snapshot, open_store, state_url


@dataclass(frozen=True, kw_only=True)
class UsageOptions:
    since: str = "today"
    by: str = "provider"
    json_output: bool = False
    csv_output: bool = False
    config: Path | None = None


def run_usage(options: UsageOptions) -> int:
    return guarded(lambda: _usage(options), Report.for_stderr(), json_output=options.json_output)


def _state(config: Config, env: Mapping[str, str], now: float) -> Snapshot | None:
    """What the state store learned (daily limits from headers); None if it cannot be read,
    as the log's own figures do not need it."""
    try:
        store = open_store(state_url(config, env))
    except (LLMRouteError, OSError, sqlite3.Error):
        return None
    try:
        return store.snapshot(now)
    except (LLMRouteError, OSError, sqlite3.Error):
        return None
    finally:
        store.close()


def _usage(o: UsageOptions) -> int:
    if o.json_output and o.csv_output:
        raise UsageError("--json and --csv both print to stdout: choose one")
    if o.by not in GROUPINGS:
        raise UsageError(f"--by {o.by!r} is not one of: {', '.join(GROUPINGS)}")
    now = time.time()
    since = since_option(o.since, now)
    assert since is not None  # --since has a default
    config, env, path = locate(o.config)
    pools = build_pools(config, env)
    report = usage_report(
        path, config, pools, since=since, by=o.by, now=now, snapshot=_state(config, env, now)
    )
    if o.json_output:
        emit(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
    elif o.csv_output:
        emit(report.to_csv())
    else:
        from llmroute.cli.report import make_console
        from llmroute.cli.usage_view import print_usage

        if not report.rows:
            sys.stderr.write(f"no requests in the log {path} since {o.since}\n")
        print_usage(make_console(stderr=False), report, o.since)
    return 0
