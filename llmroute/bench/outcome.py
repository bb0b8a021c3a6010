"""A finished bench as data: one JSON object, or CSV with one row per target."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmroute.bench.plan import Plan
from llmroute.bench.ranking import Ranked, Recommendation

CSV_COLUMNS = (
    "rank", "target", "mode", "requests", "ok", "failed", "success_rate", "failures",
    "rate_limited_429", "latency_p50_s", "latency_p95_s", "latency_max_s", "ttft_p50_s",
    "ttft_p95_s", "output_tokens_per_s", "waited_s",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Outcome:
    requests: int  # per target
    concurrency: int
    prompt_chars: int
    rank_by: str
    min_success: float
    ranked: Sequence[Ranked]
    recommendations: Sequence[Recommendation]
    plan: Plan
    skipped: Sequence[tuple[str, str]] = ()
    elapsed_s: float = 0.0

    @property
    def answered(self) -> int:
        return sum(r.summary.ok for r in self.ranked)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests_per_target": self.requests,
            "concurrency": self.concurrency,
            "prompt_chars": self.prompt_chars,
            "rank_by": self.rank_by,
            "min_success": self.min_success,
            "elapsed_s": round(self.elapsed_s, 3),
            "targets": [{"rank": r.rank, **r.summary.to_dict()} for r in self.ranked],
            "recommendations": [r.to_dict() for r in self.recommendations],
            "spend": [s.to_dict() for s in self.plan.spends],
            "skipped": [{"target": what, "reason": why} for what, why in self.skipped],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.ranked:
            row = r.summary.to_dict()
            lat, ttft = row["latency_s"], row["ttft_s"]
            failures = ";".join(f"{kind}={n}" for kind, n in row["failures"].items())
            writer.writerow(
                _blank(v) for v in (
                    r.rank, row["target"], row["mode"], row["requests"], row["ok"],
                    row["failed"], row["success_rate"], failures, row["rate_limited_429"],
                    lat["p50"], lat["p95"], lat["max"], ttft["p50"], ttft["p95"],
                    row["output_tokens_per_s"], row["waited_s"],
                )
            )  # fmt: skip
        return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value
