"""`llmroute`: the Typer app, and the boundary where errors become sentences and exit codes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from llmroute.cli import ask, batch, bench, chat, providers, serve, usage
from llmroute.cli.logs import logs_app
from llmroute.cli.pairs import PairOptionsCommand
from llmroute.cli.state import state_app

app = typer.Typer(
    name="llmroute",
    help="Send chat requests through a chain of LLM providers and key pools, with fallback.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich's help renderer alone costs ~80 ms of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(name="ask", cls=PairOptionsCommand)(ask.ask)
app.command(name="chat", cls=PairOptionsCommand)(chat.chat)
app.command(name="providers")(providers.providers)
app.command(name="bench")(bench.bench)
app.command(name="batch")(batch.batch)
app.command(name="serve")(serve.serve)
app.add_typer(state_app, name="state")
app.add_typer(logs_app, name="logs")
app.command(name="usage")(usage.usage)


def _version(value: bool) -> None:
    if value:
        from llmroute import __version__

        sys.stdout.write(f"llmroute {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Send chat requests through a chain of LLM providers and key pools, with fallback."""
