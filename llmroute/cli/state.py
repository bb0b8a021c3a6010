"""`llmroute state`: what every process sharing the state store knows, and how to forget it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmroute.cli.options import ConfigOpt

if TYPE_CHECKING:
    from llmroute.config import Config
    from llmroute.pools import Pool
    from llmroute.state import StateStore

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
    from llmroute.cli.boundary import guarded
    from llmroute.cli.report import Report

    report = Report.for_stderr()
    raise typer.Exit(guarded(lambda: _show(config, json_output), report))


@state_app.command()
def reset(
    provider: Annotated[
        str | None, typer.Argument(help="Only this provider (default: everything).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Forget cooldowns, disabled keys, budgets and learned limits (of one provider)."""
    from llmroute.cli.boundary import guarded
    from llmroute.cli.report import Report

    report = Report.for_stderr()
    raise typer.Exit(guarded(lambda: _reset(config, provider), report))


def _show(config_path: Path | None, json_output: bool) -> int:
    from llmroute.cli.state_view import state_table
    from llmroute.status import key_statuses

    config, pools, store = _open(config_path)
    try:
        rows = key_statuses(config, pools, store.snapshot(time.time()), time.time())
    finally:
        store.close()
    if json_output:
        sys.stdout.write(json.dumps({"keys": [r.to_dict() for r in rows]}) + "\n")
    else:
        from llmroute.cli.report import make_console

        make_console(stderr=False).print(state_table(rows, time.time()))
    return 0


def _reset(config_path: Path | None, provider: str | None) -> int:
    from llmroute.errors import UsageError

    config, _, store = _open(config_path)
    try:
        if provider is not None and provider not in config.providers:
            known = ", ".join(sorted(config.providers))
            raise UsageError(f"no provider {provider!r} in {config.source}; known: {known}")
        cleared = store.clear(provider)
    finally:
        store.close()
    sys.stderr.write(
        f"cleared {cleared} cooldown(s) and the budgets of {provider or 'every provider'}\n"
    )
    return 0


def _open(config_path: Path | None) -> tuple[Config, dict[str, Pool], StateStore]:
    from llmroute.environment import load_environment, locate_config
    from llmroute.pools import build_pools
    from llmroute.state import open_store, state_url

    env = load_environment()
    config = locate_config(config_path, env)
    return config, build_pools(config, env), open_store(state_url(config, env))
