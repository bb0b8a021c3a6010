"""`usage`'s report, the same for the command line and the gateway: the window's figures by
the grouping asked for, their total, and the daily headroom of every limited key and model."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmroute.config import Config
from llmroute.pools import Pool
from llmroute.requestlog import query
from llmroute.requestlog.headroom import DailyLimit, Headroom, daily_limits, headroom
from llmroute.requestlog.usage import UsageRow, summarize
from llmroute.state.base import Snapshot
from llmroute.timespan import utc_midnight_before


@dataclass(frozen=True, kw_only=True)
class UsageReport:
    since: float
    until: float
    by: str
    rows: list[UsageRow]
    total: UsageRow
    headroom: list[Headroom]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since), "until": _iso(self.until), "by": self.by,
            "rows": [r.to_dict() for r in self.rows], "total": self.total.to_dict(),
            "headroom": [
                {**h.to_dict(), "resets_at": _iso(h.resets_at)} for h in self.headroom
            ],
        }  # fmt: skip

    def to_csv(self) -> str:
        """The rows and their total, one line each, the grouping's name in the first column."""
        out = io.StringIO()
        lines = [r.to_dict() for r in (*self.rows, self.total)]
        writer = csv.DictWriter(out, fieldnames=list(self.total.to_dict()), lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        return out.getvalue().replace("group,", f"{self.by},", 1)


def usage_report(
    path: Path,
    config: Config,
    pools: Mapping[str, Pool],
    *,
    since: float,
    by: str,
    now: float,
    limits: Iterable[DailyLimit] | None = None,
    snapshot: Snapshot | None = None,
) -> UsageReport:
    """From the log at `path`; `limits` defaults to the configured daily ones and those learned
    in the state store's `snapshot`."""
    today = utc_midnight_before(now)
    with query.reading(path) as db:
        records = [] if db is None else query.since(db, min(since, today))
    rows, total = summarize((r for r in records if r.at >= since), by)
    limits = daily_limits(config, pools, snapshot, now) if limits is None else limits
    spent_today = [r for r in records if r.at >= today]
    return UsageReport(
        since=since, until=now, by=by, rows=rows, total=total,
        headroom=headroom(limits, spent_today, now),
    )  # fmt: skip


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
