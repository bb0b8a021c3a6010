"""routes.toml → frozen, validated values. Errors name the file, the table and the key."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmroute.errors import ConfigError, UnknownRouteError
from llmroute.rate import Rate, parse_rate
from llmroute.timespan import parse_duration

FALLBACK_TASK = "fallback"
# What one budget (and a 429's cooldown) covers: each key's each model; each key, its models
# together; the provider's keys together, per model; or all of it together.
LIMITS_PER = ("key-model", "key", "account-model", "account")
LEGACY_LIMIT_SCOPE = {"key": "key-model", "account": "account-model"}


def shares_keys(limits_per: str) -> bool:
    """Do a provider's keys draw on one budget (`account…`)?"""
    return limits_per in ("account-model", "account")


def shares_models(limits_per: str) -> bool:
    """Do a key's models draw on one budget (`key`, `account`)?"""
    return limits_per in ("key", "account")


MIN_SECONDS = 0.1  # the shortest timeout or deadline a config may set
TRUTHY = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Limits:
    """Configured budgets: every rate must hold at once (e.g. 30/minute and 1000/day)."""

    requests: tuple[Rate, ...] = ()
    tokens: tuple[Rate, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    context_window: int | None = None
    limits: Limits = Limits()


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    base_url: str
    key_vars: tuple[str, ...] = ()
    timeout: float | None = None
    enabled: bool = True
    enable_env: str | None = None
    drop_params: frozenset[str] = frozenset()
    limits_per: str = "key-model"  # what one budget covers: see LIMITS_PER
    limits: Limits = Limits()
    models: Mapping[str, ModelConfig] = field(default_factory=dict)

    def is_enabled(self, env: Mapping[str, str]) -> bool:
        if self.enable_env and env.get(self.enable_env, "").strip().lower() in TRUTHY:
            return True
        return self.enabled

    def context_window(self, model: str) -> int | None:
        found = self.models.get(model)
        return found.context_window if found else None


@dataclass(frozen=True)
class RouteEntry:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True)
class Settings:
    default_task: str = "fast_small"
    deadline: float = 60.0
    timeout: float = 30.0
    ttft_timeout: float = 20.0  # streaming: seconds to the first token before falling back
    state: str = "sqlite"  # memory | sqlite | sqlite:///path | redis://host:port/db
    pacing: bool = True  # reserve budget before each attempt; off = only react to 429s
    log_content: bool | None = None  # the request log keeps the text (None: the caller's default)
    log_retention: float | None = 30 * 86400.0  # seconds the request log keeps (None: forever)


@dataclass(frozen=True)
class Config:
    providers: Mapping[str, ProviderConfig]
    tasks: Mapping[str, tuple[RouteEntry, ...]]
    settings: Settings = Settings()
    source: str = "<memory>"

    def route(self, task: str) -> tuple[RouteEntry, ...]:
        """The task's entries with the `fallback` task appended (without repeats)."""
        if task not in self.tasks:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UnknownRouteError(
                f"{self.source}: there is no task {task!r} (known tasks: {known}); "
                f"pick one with -t or add [tasks.{task}] to the config"
            )
        entries = list(self.tasks[task])
        if task != FALLBACK_TASK:
            entries += [e for e in self.tasks.get(FALLBACK_TASK, ()) if e not in entries]
        return tuple(entries)


def parse_entry(text: str, where: str) -> RouteEntry:
    """`provider:model`, split at the first colon: model ids contain colons (`llama3:8b`)."""
    provider, sep, model = text.partition(":")
    if not sep or not provider.strip() or not model.strip():
        raise ConfigError(
            f'{where}: {text!r} is not provider:model (e.g. "groq:llama-3.1-8b-instant")'
        )
    return RouteEntry(provider.strip(), model.strip())


def load_config(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # an editor's BOM is fine
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and retry"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}; fix the file and retry") from None
    return parse_config(data, str(path))


def parse_config(data: Mapping[str, Any], source: str = "<memory>") -> Config:
    _only(data, {"settings", "providers", "tasks"}, source, "the top level")
    providers = {
        name: _provider(name, table, source)
        for name, table in _table(data, "providers", source, "").items()
    }
    if not providers:
        raise ConfigError(f"{source}: no [providers.NAME] table; add at least one provider")
    tasks = {
        name: _task(name, table, providers, source)
        for name, table in _table(data, "tasks", source, "").items()
    }
    settings = _settings(_table(data, "settings", source, ""), source)
    if tasks and settings.default_task not in tasks:
        raise ConfigError(
            f"{source}: [settings] default_task = {settings.default_task!r} is not a task; "
            f"use one of {', '.join(sorted(tasks))}"
        )
    return Config(providers=providers, tasks=tasks, settings=settings, source=source)


def _limits_per(table: Mapping[str, Any], where: str) -> str:
    """`limits_per`, or the older `limit_scope` ("key" / "account": whether keys share)."""
    choices = ", ".join(f'"{v}"' for v in LIMITS_PER)
    if "limit_scope" in table:
        if "limits_per" in table:
            raise ConfigError(f"{where} has limits_per and limit_scope: keep limits_per alone")
        legacy = table["limit_scope"]
        if legacy not in LEGACY_LIMIT_SCOPE:
            raise ConfigError(
                f'{where} limit_scope must be "key" or "account", not {legacy!r} '
                f"(or write limits_per, one of {choices})"
            )
        return LEGACY_LIMIT_SCOPE[legacy]
    value = table.get("limits_per", "key-model")
    if value not in LIMITS_PER:
        raise ConfigError(f"{where} limits_per must be one of {choices}, not {value!r}")
    return str(value)


def _provider(name: str, table: Any, source: str) -> ProviderConfig:
    where = f"{source}: [providers.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    allowed = {"base_url", "keys", "timeout", "enabled", "enable_env", "drop_params",
               "limits_per", "limit_scope", "limits", "models"}  # fmt: skip
    _only(table, allowed, source, f"[providers.{name}]")
    base_url = table.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigError(f'{where} base_url is missing: add base_url = "https://…/v1"')
    problem = url_problem(base_url.strip())
    if problem:
        raise ConfigError(f"{where} base_url {base_url!r} {problem}")
    limits_per = _limits_per(table, where)
    models = {
        model: _model(model, spec, f"{where} models.{model!r}")
        for model, spec in _sub(table, "models", where).items()
    }
    return ProviderConfig(
        name=name,
        base_url=base_url.strip().rstrip("/"),
        key_vars=tuple(_strings(table, "keys", where)),
        timeout=_positive(table, "timeout", where),
        enabled=_bool(table, "enabled", where, default=True),
        enable_env=_string(table, "enable_env", where),
        drop_params=frozenset(_strings(table, "drop_params", where)),
        limits_per=limits_per,
        limits=_provider_limits(_sub(table, "limits", where), f"{where} limits"),
        models=models,
    )


def _model(model: str, spec: Any, where: str) -> ModelConfig:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table")
    _only(spec, {"context_window", "requests", "tokens"}, where, "")
    window = spec.get("context_window")
    if window is not None and (not isinstance(window, int) or window <= 0):
        raise ConfigError(f"{where} context_window must be a positive whole number of tokens")
    return ModelConfig(context_window=window, limits=_limits(spec, where))


def _provider_limits(spec: Mapping[str, Any], where: str) -> Limits:
    _only(spec, {"requests", "tokens"}, where, "")
    return _limits(spec, where)


def _limits(spec: Mapping[str, Any], where: str) -> Limits:
    return Limits(requests=_rates(spec, "requests", where), tokens=_rates(spec, "tokens", where))


def _rates(spec: Mapping[str, Any], key: str, where: str) -> tuple[Rate, ...]:
    raw = spec.get(key, [])
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f'{where} {key} must be "N/window" or a list of them')
    try:
        return tuple(parse_rate(i) for i in items)
    except ValueError as exc:
        raise ConfigError(f"{where} {key}: {exc}") from None


def _task(
    name: str, table: Any, providers: Mapping[str, ProviderConfig], source: str
) -> tuple[RouteEntry, ...]:
    where = f"{source}: [tasks.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f'{where} must be a table with route = ["provider:model", …]')
    _only(table, {"route"}, source, f"[tasks.{name}]")
    route = table.get("route")
    if not isinstance(route, list) or not route:
        raise ConfigError(f'{where} route is missing or empty: add route = ["provider:model", …]')
    entries = []
    for item in route:
        if not isinstance(item, str):
            raise ConfigError(f'{where} route items must be "provider:model" strings')
        entry = parse_entry(item, f"{where} route")
        if entry.provider not in providers:
            raise ConfigError(
                f"{where} route names provider {entry.provider!r}, which has no "
                f"[providers.{entry.provider}] table; add it or fix the name"
            )
        entries.append(entry)
    return tuple(entries)


def _settings(table: Mapping[str, Any], source: str) -> Settings:
    where = f"{source}: [settings]"
    allowed = {"default_task", "deadline", "timeout", "ttft_timeout", "state", "pacing",
               "log_content", "log_retention"}  # fmt: skip
    _only(table, allowed, source, "[settings]")
    defaults = Settings()
    return Settings(
        default_task=_string(table, "default_task", where) or defaults.default_task,
        deadline=_positive(table, "deadline", where) or defaults.deadline,
        timeout=_positive(table, "timeout", where) or defaults.timeout,
        ttft_timeout=_positive(table, "ttft_timeout", where) or defaults.ttft_timeout,
        state=_state(table, where) or defaults.state,
        pacing=_bool(table, "pacing", where, default=defaults.pacing),
        log_content=_bool(table, "log_content", where, default=False)
        if "log_content" in table
        else None,
        log_retention=_retention(table, where, defaults.log_retention),
    )


# -- small validators: each names the table and key it rejects ---------------------------------


STATE_FORMS = ("memory", "sqlite", "sqlite://", "redis://", "rediss://", "unix://")


def _state(table: Mapping[str, Any], where: str) -> str | None:
    value = _string(table, "state", where)
    if value is not None and not (value in STATE_FORMS[:2] or value.startswith(STATE_FORMS[2:])):
        raise ConfigError(
            f"{where} state = {value[:40]!r} is not one of: memory, sqlite, "
            "sqlite:///path, redis://host:port/db"
        )
    return value


def _retention(table: Mapping[str, Any], where: str, default: float | None) -> float | None:
    value = table.get("log_retention")
    if value is None:
        return default
    if value == "forever":
        return None
    try:
        return parse_duration(value if isinstance(value, str) else "")
    except ValueError:
        raise ConfigError(
            f'{where} log_retention must be a duration like "30d" or "12h", or "forever" '
            f"(got {repr(value)[:40]})"
        ) from None


def _only(table: Mapping[str, Any], allowed: set[str], source: str, name: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        where = f"{source}: {name}" if name else source
        raise ConfigError(
            f"{where} has unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}"
        )


def _table(data: Mapping[str, Any], key: str, source: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where}{key} must be a table ([{key}])")
    return value


def _sub(table: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where} {key} must be a table")
    return value


def _strings(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'{where} {key} must be a list of names, e.g. {key} = ["GROQ_API_KEY"]')
    return list(value)


def _string(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where} {key} must be a non-empty string")
    return value


def _bool(table: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key} must be true or false")
    return value


def _positive(table: Mapping[str, Any], key: str, where: str) -> float | None:
    """Seconds: a finite number, and at least MIN_SECONDS (a limit nobody can meet would only
    fail every attempt and blame the providers for it)."""
    value = table.get(key)
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is None or seconds < MIN_SECONDS:
        raise ConfigError(
            f"{where} {key} must be a number of seconds, at least {MIN_SECONDS:g} "
            f"(got {repr(value)[:40]})"
        )
    return seconds


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def url_problem(url: str) -> str:
    """What is wrong with a base_url ("" when nothing): it must be http(s) with a host, a port
    in range, and a valid address when the host is one."""
    try:
        split = urlsplit(url)
        port = split.port  # raises for a port out of range or not a number
    except ValueError as exc:
        return f"cannot be parsed ({exc}); write it as https://host[:port]/path"
    if split.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    host = split.hostname or ""
    if not host or any(c.isspace() for c in url):
        return "needs a host name, without spaces: https://host[:port]/path"
    if port == 0:
        return "has port 0; give the server's port"
    if host.replace(".", "").isdigit():
        import ipaddress  # rarely needed: not at start-up

        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"has {host!r}, which is not an IPv4 address"
    return ""
