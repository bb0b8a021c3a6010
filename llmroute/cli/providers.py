"""`llmroute providers`: which keys work right now, and can each task be served?"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmroute.cli.options import ConfigOpt, TaskOpt

if TYPE_CHECKING:
    from llmroute.checkup import KeyCheck
    from llmroute.config import Config


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
    from llmroute.cli.boundary import guarded
    from llmroute.cli.report import Report

    report = Report.for_stderr()
    raise typer.Exit(guarded(lambda: _run(config, task, probe, timeout, json_output), report))


def _run(
    config_path: Path | None, task: str | None, probe: bool, timeout: float, json_output: bool
) -> int:
    import asyncio

    from llmroute.checkup import check_providers, task_ready
    from llmroute.environment import load_environment, locate_config
    from llmroute.pools import build_pools
    from llmroute.state import open_store, state_url
    from llmroute.status import key_statuses

    env = load_environment()
    config = locate_config(config_path, env)
    tasks = [task] if task else [t for t in config.tasks if t != "fallback"]
    models = _models_of(config, tasks)
    pools = build_pools(config, env)
    store = open_store(state_url(config, env))
    try:
        states = key_statuses(config, pools, store.snapshot(time.time()), time.time())
    finally:
        store.close()
    checks = asyncio.run(
        check_providers(config, pools, states, models=models, timeout=timeout, probe=probe)
    )
    ready = {t: task_ready(config, t, checks) for t in tasks}
    if json_output:
        payload = {"tasks": ready, "keys": [c.to_dict() for c in checks]}
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        _print(checks, ready)
    return 0 if all(ready.values()) else 1


def _models_of(config: Config, tasks: list[str]) -> dict[str, list[str]]:
    """For each provider the tasks route to, the models they ask of it."""
    models: dict[str, list[str]] = {}
    for entry in (e for t in tasks for e in config.route(t)):
        wanted = models.setdefault(entry.provider, [])
        if entry.model not in wanted:
            wanted.append(entry.model)
    return models


def _print(checks: list[KeyCheck], ready: dict[str, bool]) -> None:
    from llmroute.cli.providers_view import providers_table, tasks_line
    from llmroute.cli.report import make_console

    console = make_console(stderr=False)
    console.print(providers_table(checks))
    console.print(tasks_line(ready))
