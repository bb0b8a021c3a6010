"""Running `llmroute state`: show what the shared state store knows, or forget it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from llmroute.cli.boundary import guarded
from llmroute.cli.report import Report, make_console
from llmroute.errors import UsageError
from llmroute.setup import open_setup
from llmroute.status import key_statuses


def run_show(*, config: Path | None, json_output: bool) -> int:
    return guarded(lambda: _show(config, json_output), Report.for_stderr())


def run_reset(*, config: Path | None, provider: str | None, hard: bool = False) -> int:
    if hard:
        if provider is not None:
            return guarded(_whole_state_only, Report.for_stderr())
        return guarded(lambda: _reset_hard(config), Report.for_stderr())
    return guarded(lambda: _reset(config, provider), Report.for_stderr())


def _whole_state_only() -> int:
    raise UsageError("--hard resets the whole state: leave out the provider")


def _reset_hard(config_path: Path | None) -> int:
    """Without opening the store (its file may be what fails): move a SQLite file aside, or
    clear another store."""
    from llmroute.environment import load_environment, locate_config
    from llmroute.state import open_store, sqlite_path, state_url
    from llmroute.state.sqlite_file import set_aside

    env = load_environment()
    url = state_url(locate_config(config_path, env), env)
    if url.strip() == "sqlite" or url.startswith("sqlite://"):
        path = sqlite_path(url.strip(), None)
        if path.exists() or path.is_symlink():
            moved = set_aside(path)
            sys.stderr.write(f"moved the state file {path} to {moved.name}; starting afresh\n")
        else:
            sys.stderr.write(f"no state file at {path}: nothing to reset\n")
        return 0
    store = open_store(url)
    try:
        store.clear()
    finally:
        store.close()
    sys.stderr.write("cleared the whole state\n")
    return 0


def _show(config_path: Path | None, json_output: bool) -> int:
    from llmroute.cli.state_view import state_table

    setup = open_setup(config_path)
    try:
        snapshot = setup.store.snapshot(time.time())
        rows = key_statuses(setup.config, setup.pools, snapshot, time.time())
    finally:
        setup.close()
    if json_output:
        sys.stdout.write(json.dumps({"keys": [r.to_dict() for r in rows]}) + "\n")
    else:
        make_console(stderr=False).print(state_table(rows, time.time()))
    return 0


def _reset(config_path: Path | None, provider: str | None) -> int:
    setup = open_setup(config_path)
    config = setup.config
    try:
        if provider is not None and provider not in config.providers:
            known = ", ".join(sorted(config.providers))
            raise UsageError(f"no provider {provider!r} in {config.source}; known: {known}")
        cleared = setup.store.clear(provider)
    finally:
        setup.close()
    sys.stderr.write(
        f"cleared {cleared} cooldown(s) and the budgets of {provider or 'every provider'}\n"
    )
    return 0
