"""Running `llmroute batch`: read the jobs, skip what is done, run the rest, report."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from llmroute.batch.jobs import BadLine, Job, key_of, read_jobs, split_lines
from llmroute.batch.output import Done, ResultWriter, read_done
from llmroute.batch.runner import Sequencer, Tally, run_batch
from llmroute.cli.boundary import guarded
from llmroute.cli.options import LogOptions
from llmroute.cli.report import Report
from llmroute.errors import UsageError


@dataclass(frozen=True, kw_only=True)
class BatchArgs:
    input_path: str
    output: str
    task: str | None
    concurrency: int
    text: bool
    ordered: bool
    retry_failed: bool
    strict: bool
    quiet: bool
    config: Path | None
    timeout: float | None
    deadline: float | None
    verbose: int
    log: LogOptions = field(default_factory=LogOptions)


def run_batch_command(args: BatchArgs) -> int:
    report = Report.for_stderr(quiet=args.quiet, verbose=args.verbose)
    return guarded(lambda: _run(args, report), report)


def _run(args: BatchArgs, report: Report) -> int:
    items = unique_ids(list(read_jobs(_input_lines(args.input_path), text=args.text)))
    bad = next((i for i in items if isinstance(i, BadLine)), None)
    if args.strict and bad is not None:
        raise UsageError(f"{bad.message}; fix the line, or run without --strict to go on")
    done = Done() if args.output == "-" else read_done(Path(args.output))
    todo = [i for i in items if not _finished(i, done, args.retry_failed)]
    options = {k: v for k, v in (("timeout", args.timeout), ("deadline", args.deadline)) if v}
    with OutputFile(args.output) as stream:
        sequencer = Sequencer(ResultWriter(stream, sync=args.output != "-"), args.ordered)
        tally = _go(args, report, todo, sequencer, options)
    tally.skipped = len(items) - len(todo)
    if not args.quiet:
        from llmroute.cli.batch_view import summary_line, summary_table

        report.console.print(summary_line(tally), soft_wrap=True)
        if tally.answered:
            report.console.print(summary_table(tally))
        if not args.log.off:
            report.usage_hint()
    return 1 if sum(tally.failed.values()) else 0


def _go(
    args: BatchArgs,
    report: Report,
    todo: Sequence[Job | BadLine],
    sequencer: Sequencer,
    options: dict[str, float],
) -> Tally:
    from llmroute.cli.batch_view import BatchProgress
    from llmroute.router import Router

    async def main() -> Tally:
        async with Router.from_path(args.config, log=args.log.policy("batch")) as router:
            with BatchProgress(report, total=len(todo)) as progress:
                return await run_batch(
                    router, todo, sequencer, concurrency=args.concurrency, task=args.task,
                    request_options=dict(options), on_progress=progress.update,
                )  # fmt: skip

    return asyncio.run(main())


def unique_ids(items: list[Job | BadLine]) -> list[Job | BadLine]:
    """A repeated id is a bad line: its answer could not be told from the first one's."""
    seen: dict[str, int] = {}
    out: list[Job | BadLine] = []
    for item in items:
        key = key_of(item.id) if isinstance(item, Job) else ""
        if isinstance(item, Job) and key in seen:
            message = f"line {item.line} repeats the id {item.id!r} of line {seen[key]}"
            out.append(BadLine(item.line, item.id, message))
            continue
        if isinstance(item, Job):
            seen[key] = item.line
        out.append(item)
    return out


def _finished(item: Job | BadLine, done: Done, retry_failed: bool) -> bool:
    if isinstance(item, BadLine):
        return item.line in done.bad_lines  # reported by an earlier run already
    return done.skip(item.id, retry_failed)


def _input_lines(path: str) -> list[bytes]:
    if path == "-":
        return split_lines(sys.stdin.buffer.read() if sys.stdin is not None else b"")
    try:
        return split_lines(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}; check the path") from None


class OutputFile:
    """stdout for `-`, else the file, appended to (a re-run resumes it)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self._path == "-":
            return sys.stdout
        try:
            self._file = Path(self._path).open("a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {self._path}: {exc.strerror}") from None
        return self._file

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
