"""`llmroute ask`: one prompt in, one answer on stdout, the story on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmroute.cli.options import (
    ConfigOpt,
    DeadlineOpt,
    LogContentOpt,
    LogOptions,
    MaxTokensOpt,
    ModelOpt,
    NoLogOpt,
    RequestOptions,
    SystemOpt,
    TaskOpt,
    TemperatureOpt,
    TimeoutOpt,
    TtftOpt,
    VerboseOpt,
)
from llmroute.cli.pairs import PairsOpt, request_params

if TYPE_CHECKING:
    from llmroute.cli.ask_run import AskOptions


def ask(
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt. Piped stdin comes first, then this.")
    ] = None,
    task: TaskOpt = None,
    model: ModelOpt = None,
    system: SystemOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    option: PairsOpt = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (answer and attempts).")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer at once, when it is complete.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No report on stderr.")] = False,
    direct: Annotated[
        bool, typer.Option("--direct", help="Route in this process, even with a gateway running.")
    ] = False,
    config: ConfigOpt = None,
    timeout: TimeoutOpt = None,
    deadline: DeadlineOpt = None,
    ttft_timeout: TtftOpt = None,
    verbose: VerboseOpt = 0,
    no_log: NoLogOpt = False,
    log_content: LogContentOpt = None,
) -> None:
    """Ask once: the answer streams to stdout, the report (who answered, fallbacks) to stderr.

    Until the first token arrives, a failing provider is replaced by the next one unseen. If
    the answer breaks after that, the text so far stays, the break is reported, exit code 1.

    With LLMROUTE_URL set (and LLMROUTE_SERVER_TOKEN if it wants one), or a local `llmroute
    serve` running on the same config, the request goes through that gateway: the same
    answer and report, without this process loading the router (a fraction of the start-up).
    """
    from llmroute.cli.ask_run import run_ask

    options = ask_options(
        prompt=prompt, task=task, model=model, system=system, temperature=temperature,
        max_tokens=max_tokens, option=option, json_output=json_output, no_stream=no_stream,
        quiet=quiet, direct=direct, config=config, timeout=timeout, deadline=deadline,
        ttft_timeout=ttft_timeout, verbose=verbose, no_log=no_log, log_content=log_content,
    )  # fmt: skip
    raise typer.Exit(run_ask(options))


def ask_options(
    *,
    prompt: str | None,
    task: str | None,
    model: str | None,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    option: list[str] | None,
    json_output: bool,
    no_stream: bool,
    quiet: bool,
    direct: bool,
    config: Path | None,
    timeout: float | None,
    deadline: float | None,
    ttft_timeout: float | None,
    verbose: int,
    no_log: bool,
    log_content: bool | None,
) -> AskOptions:
    """`ask`'s parameters as the command line gave them (to Typer, or to the fast path in
    `quick_ask`, which gives the same names and values) -> what `run_ask` takes."""
    from llmroute.cli.ask_run import AskOptions

    request = RequestOptions(
        task=task, model=model, system=system, quiet=quiet, config=config, timeout=timeout,
        deadline=deadline, ttft_timeout=ttft_timeout, verbose=verbose,
        log=LogOptions(off=no_log, content=log_content),
        params=request_params(temperature, max_tokens, option),
    )  # fmt: skip
    return AskOptions(
        request=request, prompt=prompt, json_output=json_output,
        stream=not (no_stream or json_output), direct=direct,
    )  # fmt: skip
