"""`llmroute chat`: a conversation over the router, in a terminal or from a script."""

from __future__ import annotations

from typing import Annotated

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


def chat(
    task: TaskOpt = None,
    model: ModelOpt = None,
    system: SystemOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    option: PairsOpt = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No note after each reply on stderr.")
    ] = False,
    config: ConfigOpt = None,
    timeout: TimeoutOpt = None,
    deadline: DeadlineOpt = None,
    ttft_timeout: TtftOpt = None,
    verbose: VerboseOpt = 0,
    no_log: NoLogOpt = False,
    log_content: LogContentOpt = None,
) -> None:
    """Chat: each turn sends the whole conversation to whichever candidate is available, so a
    conversation survives fallbacks between providers. Replies stream to stdout; a one-line
    note on stderr says who answered, how fast, the tokens and the fallbacks (-q hides it).

    Type /help for the commands: /task NAME, /model [PROVIDER:MODEL], /system [TEXT], /retry,
    /undo, /clear, /save PATH, /exit. A line that starts with \"\"\" opens a multi-line message,
    a line of only \"\"\" ends it. Ctrl-C stops a reply; at an empty prompt it leaves, as does
    Ctrl-D. Input history is kept in the user state directory.

    When stdin is not a terminal, each line is one message (or a command, as typed); the
    replies go to stdout one after another, each ending with a newline, and nothing else does.
    The first turn that fails ends the session with the exit code `ask` would give.
    """
    from llmroute.cli.chat_run import run_chat

    options = RequestOptions(
        task=task, model=model, system=system, quiet=quiet, config=config, timeout=timeout,
        deadline=deadline, ttft_timeout=ttft_timeout, verbose=verbose,
        log=LogOptions(off=no_log, content=log_content),
        params=request_params(temperature, max_tokens, option),
    )  # fmt: skip
    raise typer.Exit(run_chat(options))
