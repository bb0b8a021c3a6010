"""`llmroute`: the Typer app, and the boundary where errors become sentences and exit codes."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from llmroute.cli import ask

app = typer.Typer(
    name="llmroute",
    help="Send chat requests through a chain of LLM providers and key pools, with fallback.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich's help renderer alone costs ~80 ms of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(name="ask", no_args_is_help=False)(ask.ask)


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

# Options that take a KEY VALUE pair (`-o temperature 0.2`), which Typer cannot declare.
PAIR_OPTIONS = {("ask", "option")}


def build_command() -> Any:
    import click

    command = typer.main.get_command(app)
    for name, sub in getattr(command, "commands", {}).items():
        for param in sub.params:
            if (name, param.name) in PAIR_OPTIONS:
                param.nargs = 2  # each value becomes a (KEY, VALUE) tuple
                param.type = click.Tuple([str, str])
    return command


def main() -> None:
    command = build_command()
    try:
        command.main(prog_name="llmroute", standalone_mode=True)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
