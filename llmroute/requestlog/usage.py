"""Usage figures from logged requests, grouped by provider, key, model, task, day or hour.

Pure. Each attempt counts where its group is: by provider, key or model, the candidate it
went to (a 429 counts against the key that sent it); by task, day or hour, its request's. So
every column adds up across the rows to the total, whatever the grouping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmroute.attempt import OK
from llmroute.percentiles import percentile
from llmroute.requestlog.record import ANSWERED, LogRecord

GROUPINGS = ("provider", "key", "model", "task", "day", "hour")
NOBODY = "-"  # a request that ended before any candidate was called
Attempt = Mapping[str, Any]


@dataclass(kw_only=True)
class UsageRow:
    group: str
    answered: int = 0
    failed: int = 0  # requests without a whole answer: failed, rejected, broken, interrupted
    fallbacks: int = 0  # attempts that failed, after which the request went on to another
    rate_limited: int = 0  # 429s met
    tokens_in: int = 0
    tokens_out: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)  # answered requests
    ttfts: list[float] = field(default_factory=list, repr=False)  # answered streams

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "answered": self.answered, "failed": self.failed,
            "fallbacks": self.fallbacks, "429s": self.rate_limited,
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "p50_s": _round(percentile(self.latencies, 50)),
            "p95_s": _round(percentile(self.latencies, 95)),
            "ttft_p50_s": _round(percentile(self.ttfts, 50)),
        }  # fmt: skip

    def add(self, other: UsageRow) -> None:
        for name in ("answered", "failed", "fallbacks", "rate_limited", "tokens_in", "tokens_out"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies += other.latencies
        self.ttfts += other.ttfts


def summarize(records: Iterable[LogRecord], by: str) -> tuple[list[UsageRow], UsageRow]:
    """The rows, by their group's name, and their total."""
    group = _grouping(by)
    rows: dict[str, UsageRow] = {}

    def row(name: str) -> UsageRow:
        return rows.setdefault(name, UsageRow(group=name))

    for record in records:
        called = record.called
        for index, attempt in enumerate(called):
            target = row(group(record, attempt))
            target.rate_limited += attempt.get("status") == 429
            if attempt["outcome"] == OK:
                _answered(target, record)
            elif index < len(called) - 1:
                target.fallbacks += 1
        if record.outcome != ANSWERED:
            row(group(record, called[-1] if called else None)).failed += 1
    total = UsageRow(group="total")
    for each in rows.values():
        total.add(each)
    return sorted(rows.values(), key=lambda r: r.group), total


def _answered(row: UsageRow, record: LogRecord) -> None:
    row.answered += 1
    row.tokens_in += record.tokens_in or 0
    row.tokens_out += record.tokens_out or 0
    row.latencies.append(record.latency_s)
    if record.ttft_s is not None:
        row.ttfts.append(record.ttft_s)


def _grouping(by: str) -> Callable[[LogRecord, Attempt | None], str]:
    def candidate(name: Callable[[Attempt], str]) -> Callable[[LogRecord, Attempt | None], str]:
        return lambda record, attempt: NOBODY if attempt is None else name(attempt)

    groupings: dict[str, Callable[[LogRecord, Attempt | None], str]] = {
        "provider": candidate(lambda a: str(a["provider"])),
        "key": candidate(lambda a: str(a["key"])),
        "model": candidate(lambda a: f"{a['provider']}:{a['model']}"),
        "task": lambda record, _: record.route,
        "day": lambda record, _: _local(record.at, "%Y-%m-%d"),
        "hour": lambda record, _: _local(record.at, "%Y-%m-%d %H:00"),
    }
    if by not in groupings:
        raise ValueError(f"--by {by!r} is not one of: {', '.join(GROUPINGS)}")
    return groupings[by]


def _local(at: float, form: str) -> str:
    return datetime.fromtimestamp(at).strftime(form)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
