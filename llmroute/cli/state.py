"""`llmroute state`: what every process sharing the state store knows, and how to forget it."""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.options import ConfigOpt

state_app = typer.Typer(
    help="Show cooldowns, disabled keys, budgets left and learned limits; or reset them.",
    invoke_without_command=True,
)


@state_app.callback()
def show(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show cooldowns, disabled keys, budgets left and learned limits per key and model."""
    if ctx.invoked_subcommand is not None:
        return
    from llmroute.cli.state_run import run_show

    raise typer.Exit(run_show(config=config, json_output=json_output))


@state_app.command()
def reset(
    provider: Annotated[
        str | None, typer.Argument(help="Only this provider (default: everything).")
    ] = None,
    config: ConfigOpt = None,
    hard: Annotated[
        bool,
        typer.Option(
            "--hard",
            help="Move the state file aside and start afresh (for a state file that fails).",
        ),
    ] = False,
) -> None:
    """Forget cooldowns, disabled keys, budgets and learned limits (of one provider)."""
    from llmroute.cli.state_run import run_reset

    raise typer.Exit(run_reset(config=config, provider=provider, hard=hard))
