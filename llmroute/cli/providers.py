"""`llmroute providers`: which keys work right now, and can each task be served?"""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.options import ConfigOpt, TaskOpt


def providers(
    task: TaskOpt = None,
    probe: Annotated[
        bool,
        typer.Option("--probe", help="Also send a 1-token completion per model (spends quota)."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per check.")] = 5.0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Check every provider and key now: reachable, key accepted, models listed, cooldowns.

    Exit code 0 when every task (or the one given with -t) has a healthy candidate, else 1:
    usable as a health check in scripts and cron.
    """
    from llmroute.cli.providers_run import run_providers

    code = run_providers(
        config=config, task=task, probe=probe, timeout=timeout, json_output=json_output
    )
    raise typer.Exit(code)
