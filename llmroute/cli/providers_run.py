"""Running `llmroute providers`: check every key now, and say whether each task can be served."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from llmroute.checkup import KeyCheck, check_providers, task_ready
from llmroute.cli.boundary import guarded
from llmroute.cli.report import Report, make_console
from llmroute.config import Config
from llmroute.setup import open_setup
from llmroute.status import key_statuses


def run_providers(
    *, config: Path | None, task: str | None, probe: bool, timeout: float, json_output: bool
) -> int:
    report = Report.for_stderr()
    return guarded(
        lambda: _check(config, task=task, probe=probe, timeout=timeout, json_output=json_output),
        report,
    )


def _check(
    config_path: Path | None, *, task: str | None, probe: bool, timeout: float, json_output: bool
) -> int:
    setup = open_setup(config_path)
    try:
        config, pools = setup.config, setup.pools
        tasks = [task] if task else [t for t in config.tasks if t != "fallback"]
        models = _models_of(config, tasks)
        states = key_statuses(config, pools, setup.store.snapshot(time.time()), time.time())
    finally:
        setup.close()
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

    console = make_console(stderr=False)
    console.print(providers_table(checks))
    console.print(tasks_line(ready))
