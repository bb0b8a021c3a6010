"""A batch run: jobs through `router.map`, each result written as soon as it is known."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmroute.batch.jobs import BadLine, Job, key_of
from llmroute.batch.output import ResultWriter
from llmroute.batch.records import answer_record, bad_line_record, error_kind, error_record
from llmroute.router import Router


@dataclass
class Tally:
    """What the run did, for the progress line and the summary table."""

    answered: Counter[str] = field(default_factory=Counter)  # per provider/key alias
    tokens: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # per error kind
    skipped: int = 0

    @property
    def done(self) -> int:
        return sum(self.answered.values()) + sum(self.failed.values())


class Sequencer:
    """Writes records in input order (`--ordered`) or as they come."""

    def __init__(self, writer: ResultWriter, ordered: bool) -> None:
        self._writer, self._ordered = writer, ordered
        self._held: dict[int, dict[str, Any]] = {}
        self._next = 0

    def put(self, position: int, record: dict[str, Any]) -> None:
        if not self._ordered:
            self._writer.write(record)
            return
        self._held[position] = record
        while self._next in self._held:
            self._writer.write(self._held.pop(self._next))
            self._next += 1


async def run_batch(
    router: Router,
    items: Sequence[Job | BadLine],
    sequencer: Sequencer,
    *,
    concurrency: int,
    task: str | None,
    request_options: dict[str, Any],
    on_progress: Callable[[Tally, str | None], None] = lambda tally, who: None,
) -> Tally:
    """`items` are what is left to do, in input order (bad lines included, to be reported)."""
    tally = Tally()
    positions: dict[str, int] = {}
    for where, item in enumerate(items):
        if isinstance(item, BadLine):
            sequencer.put(where, bad_line_record(item))
            tally.failed["bad_input"] += 1
        else:
            positions[key_of(item.id)] = where  # ids are unique: duplicates are bad lines
    jobs = [_with_options(job, request_options) for job in items if isinstance(job, Job)]
    async for outcome in router.map(jobs, concurrency=concurrency, task=task):
        job = outcome.request
        if outcome.result is not None:
            who = outcome.result.candidate.key.alias
            tally.answered[who] += 1
            tally.tokens[who] += outcome.result.usage.total_tokens if outcome.result.usage else 0
            sequencer.put(positions[key_of(job.id)], answer_record(job, outcome.result))
            on_progress(tally, who)
        elif outcome.error is not None:
            tally.failed[error_kind(outcome.error)] += 1
            sequencer.put(positions[key_of(job.id)], error_record(job, outcome.error))
            on_progress(tally, None)
    return tally


def _with_options(job: Job, options: dict[str, Any]) -> Job:
    if not options:
        return job
    return Job(job.id, job.line, job.messages, job.task, {**options, **job.params})
