"""`llmroute chat`: a conversation over the router, in a terminal or from a script."""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.ask import ConfigOpt, ModelOpt, TaskOpt


def chat(
    task: TaskOpt = None,
    model: ModelOpt = None,
    system: Annotated[str | None, typer.Option("-s", "--system", help="System prompt.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0.0)] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1)] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "-o", "--option", metavar="KEY VALUE", help="Extra request parameter (repeatable)."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No note after each reply on stderr.")
    ] = False,
    config: ConfigOpt = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="Seconds per upstream attempt.")
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option("--deadline", min=0.1, help="Seconds for each turn (default 60)."),
    ] = None,
    ttft_timeout: Annotated[
        float | None,
        typer.Option(
            "--ttft-timeout", min=0.1, help="Seconds to the first token before falling back."
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="Log every attempt (-vv: debug).")
    ] = 0,
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
    from llmroute.chat.repl import ChatOptions, run_chat

    options = ChatOptions(
        task=task,
        model=model,
        system=system,
        params={
            **({"temperature": temperature} if temperature is not None else {}),
            **({"max_tokens": max_tokens} if max_tokens is not None else {}),
        },
        options=[tuple(pair) for pair in option or []],  # type: ignore[misc]
        quiet=quiet,
        config=config,
        timeout=timeout,
        deadline=deadline,
        ttft_timeout=ttft_timeout,
        verbose=verbose,
    )
    raise typer.Exit(run_chat(options))
