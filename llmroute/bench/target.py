"""What a bench measures: route entries pinned through the router, or a whole task's route."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmroute.config import Config, RouteEntry, parse_entry
from llmroute.errors import ConfigError, UsageError
from llmroute.pools import Pool, missing_key_hint


@dataclass(frozen=True)
class Target:
    """`provider:model` measured alone (its pool's keys in turn), or, with `route`, the task
    `name` measured as a user gets it: fallbacks, waits and all."""

    name: str
    route: bool = False

    @property
    def label(self) -> str:
        return f"route {self.name}" if self.route else self.name


@dataclass(frozen=True)
class Selection:
    targets: tuple[Target, ...]
    tasks: tuple[str, ...]  # tasks whose route order the results can advise on
    skipped: tuple[tuple[str, str], ...] = ()  # (what, why) could not be measured


def select(
    config: Config,
    pools: Mapping[str, Pool],
    *,
    task: str | None = None,
    models: Sequence[str] = (),
    all_tasks: bool = False,
    route: str | None = None,
) -> Selection:
    """The entries of `task` (with the fallback task), of every task with `all_tasks`, and the
    `-m` entries, without repeats; plus the router on `route`. With none of these: the default
    task's entries. Entries of a provider without a usable key are skipped, with the reason."""
    tasks = list(config.tasks) if all_tasks else [task] if task else []
    if not tasks and not models and route is None:
        tasks = [config.settings.default_task]
    entries = [e for t in tasks for e in config.route(t)]
    entries += [_pinned(config, text) for text in models]
    targets: list[Target] = []
    skipped: list[tuple[str, str]] = []
    for entry in dict.fromkeys(entries):
        if pools[entry.provider].usable:
            targets.append(Target(str(entry)))
        else:
            skipped.append((str(entry), _why_unusable([entry], pools)))
    if route is not None:
        if any(pools[e.provider].usable for e in config.route(route)):
            targets.append(Target(route, route=True))
        else:
            skipped.append((f"route {route}", _why_unusable(config.route(route), pools)))
    if not targets:
        raise UsageError(
            "nothing to measure: no selected entry has a usable key; "
            + "; ".join(f"{what}: {why}" for what, why in skipped)
        )
    return Selection(tuple(targets), tuple(tasks), tuple(skipped))


def entry_of(config: Config, pools: Mapping[str, Pool], target: Target) -> RouteEntry:
    """The entry a target spends on first: itself, or its route's first usable entry."""
    if not target.route:
        return parse_entry(target.name, "target")
    return next(e for e in config.route(target.name) if pools[e.provider].usable)


def _pinned(config: Config, text: str) -> RouteEntry:
    entry = parse_entry(text, "-m/--model")
    if entry.provider not in config.providers:
        known = ", ".join(sorted(config.providers))
        raise ConfigError(
            f"{config.source}: no provider {entry.provider!r} for {text!r}; "
            f"known providers: {known}"
        )
    return entry


def _why_unusable(entries: Sequence[RouteEntry], pools: Mapping[str, Pool]) -> str:
    hint = missing_key_hint(entries, pools)
    return f"set {hint}" if hint else "its provider is disabled"
