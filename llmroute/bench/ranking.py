"""Ranking candidates by speed, and the route order that ranking suggests for a task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmroute.bench.stats import Summary

LATENCY, TTFT = "latency", "ttft"
MIN_SUCCESS = 0.9  # a candidate that answered fewer of its requests is not ranked


@dataclass(frozen=True)
class Ranked:
    summary: Summary
    rank: int | None  # None: not ranked (too many failures, or a whole route)


def metric(summary: Summary, by: str) -> float | None:
    """The median a candidate is ranked by: total latency, or time to first token."""
    return summary.ttft.p50 if by == TTFT else summary.latency.p50


def rank(
    summaries: Sequence[Summary], by: str = LATENCY, min_success: float = MIN_SUCCESS
) -> list[Ranked]:
    """Candidates that answered at least `min_success` of their requests, fastest median
    first (ties: the lower p95); then the others as given; then the routes."""
    candidates = [s for s in summaries if not s.target.route]
    good = [s for s in candidates if s.success_rate >= min_success and metric(s, by) is not None]
    good.sort(key=lambda s: (metric(s, by), s.latency.p95 or math.inf))
    rest = [s for s in summaries if all(s is not g for g in good)]
    rest.sort(key=lambda s: s.target.route)  # stable: candidates first, in the order given
    return [Ranked(s, i) for i, s in enumerate(good, start=1)] + [Ranked(s, None) for s in rest]


@dataclass(frozen=True)
class Recommendation:
    """A task's own route entries as configured, and in the order the bench found fastest:
    ranked entries by rank, then the unranked ones in their configured order."""

    task: str
    configured: tuple[str, ...]
    suggested: tuple[str, ...]
    unranked: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.suggested != self.configured

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "configured": list(self.configured),
            "suggested": list(self.suggested),
            "unranked": list(self.unranked),
            "changed": self.changed,
        }


def recommend(task: str, configured: Sequence[str], ranked: Sequence[Ranked]) -> Recommendation:
    ranks = {r.summary.target.name: r.rank for r in ranked if r.rank and not r.summary.target.route}
    fast = sorted((e for e in configured if e in ranks), key=lambda e: ranks[e])
    slow = tuple(e for e in configured if e not in ranks)
    return Recommendation(task, tuple(configured), (*fast, *slow), slow)
