"""`llmroute batch`: a JSONL file of prompts through the whole pool, resumable."""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.options import (
    ConfigOpt,
    DeadlineOpt,
    LogContentOpt,
    LogOptions,
    NoLogOpt,
    TaskOpt,
    TimeoutOpt,
    VerboseOpt,
)


def batch(
    input_path: Annotated[
        str, typer.Argument(metavar="INPUT", help="JSONL (or text with --text); - for stdin.")
    ],
    output: Annotated[
        str, typer.Option("-o", "--output", help="JSONL results, appended; - for stdout.")
    ],
    task: TaskOpt = None,
    concurrency: Annotated[
        int, typer.Option("-c", "--concurrency", min=1, help="Requests in flight at most.")
    ] = 8,
    text: Annotated[
        bool, typer.Option("--text", help="Input is plain text: one prompt per line.")
    ] = False,
    ordered: Annotated[
        bool, typer.Option("--ordered", help="Write results in input order.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Resuming: run failed ids again.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first bad input line (exit 2).")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No progress or summary on stderr.")
    ] = False,
    config: ConfigOpt = None,
    timeout: TimeoutOpt = None,
    deadline: DeadlineOpt = None,
    verbose: VerboseOpt = 0,
    no_log: NoLogOpt = False,
    log_content: LogContentOpt = None,
) -> None:
    """Send many prompts through the pool as fast as its limits allow, and no faster.

    Each input line is a JSON object with an "id" and a "prompt" (and optional "system") or
    "messages", and optional "task", "model", "max_tokens", "temperature". Each output line
    has the id and either the answer (content, provider, key alias, model, latency_s, usage,
    attempts) or an "error" with its kind and message. Bad input lines are reported in the
    output with their line number, and the batch goes on (unless --strict).

    Resumable: run it again with the same output file and the ids already answered are
    skipped (failed ones too, unless --retry-failed). Every line is written whole and
    flushed as soon as its answer is in, so an interrupted run loses no finished answer.

    Exit code 0 when every job is answered, 1 when some failed, 2 for usage errors, 130 when
    interrupted.
    """
    from llmroute.cli.batch_run import BatchArgs, run_batch_command

    args = BatchArgs(
        input_path=input_path, output=output, task=task, concurrency=concurrency, text=text,
        ordered=ordered, retry_failed=retry_failed, strict=strict, quiet=quiet, config=config,
        timeout=timeout, deadline=deadline, verbose=verbose,
        log=LogOptions(off=no_log, content=log_content),
    )  # fmt: skip
    raise typer.Exit(run_batch_command(args))
