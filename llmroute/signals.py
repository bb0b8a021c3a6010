"""What providers say about their limits, read from headers and error bodies. Pure functions.

Reset times come from, in order: `retry-after-ms`, `retry-after` (seconds or HTTP date),
`x-ratelimit-reset-requests|tokens` (Go durations), Cerebras `x-ratelimit-reset-*-minute|day`
(float seconds), OpenRouter `X-RateLimit-Reset` (epoch ms, also in the error body's
`metadata.headers`), Gemini `RetryInfo.retryDelay`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from llmroute.learned import LearnedWindow

_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_EPOCH_MS_FLOOR = 1e12  # values this large are epoch milliseconds, not durations


def parse_go_duration(text: str) -> float | None:
    """`2m59.56s`, `460ms`, `1h2m`, `7.66s` → seconds; None when it is not a duration."""
    text = text.strip()
    if not text:
        return None
    pos, total = 0, 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        return _float(text)  # a bare number: seconds
    return total


def parse_retry_after(text: str, now: float) -> float | None:
    """`Retry-After` as seconds or as an HTTP date."""
    seconds = _float(text)
    if seconds is not None:
        return seconds
    try:
        return parsedate_to_datetime(text).timestamp() - now
    except (TypeError, ValueError):
        return None


def retry_after(
    headers: Mapping[str, str], body: object, now: float, *, exhausted_only: bool = False
) -> float | None:
    """Seconds until a retry can succeed, from the first signal present; None if none is.

    Window headers name the window that is spent (`remaining` 0). When none is, a 429 still
    means one is about to be: take the longest reset of the per-minute windows — unless
    `exhausted_only`, for a daily cap, which such headers do not describe.
    """
    for value in _reset_signals(headers, body, now, exhausted_only):
        if value is not None:
            return max(0.0, value)
    return None


def _reset_signals(
    headers: Mapping[str, str], body: object, now: float, exhausted_only: bool
) -> Iterator[float | None]:
    """Each dialect's reset, lazily, in the order of precedence."""
    yield _scaled(headers.get("retry-after-ms"), 0.001)
    raw = headers.get("retry-after")
    yield parse_retry_after(raw, now) if raw else None
    yield _window_resets(headers, exhausted_only)
    yield _epoch_ms_reset(headers, now)
    yield _epoch_ms_reset(openrouter_headers(body), now)
    yield gemini_retry_delay(body)


def daily_cap_hit(headers: Mapping[str, str], body: object) -> bool:
    """A structured sign that a per-day budget is spent (Cerebras headers, Gemini quota id)."""
    for dimension in ("requests", "tokens"):
        if _float(headers.get(f"x-ratelimit-remaining-{dimension}-day")) == 0:
            return True
    return any("PerDay" in str(v.get("quotaId", "")) for v in gemini_violations(body))


# -- rate-limit windows in headers -------------------------------------------------------------

_WINDOW_SUFFIXES = (("", parse_go_duration), ("-minute", None), ("-day", None))
_NAMED_SPANS = {"-minute": 60.0, "-day": 86400.0}


def learned_windows(
    headers: Mapping[str, str], now: float, elapsed: float = 0.0
) -> dict[str, LearnedWindow]:
    """Every window a response's headers describe (OpenAI/Groq, Cerebras, OpenRouter). `now`
    is about when the provider counted the request; `elapsed` how long its answer took, which
    the provider's reset does not include. A 429's retry-after measures the window it spent
    as well as that window's reset does."""
    windows: dict[str, LearnedWindow] = {}
    retry = _scaled(headers.get("retry-after-ms"), 0.001) or _float(headers.get("retry-after"))
    for dimension in ("requests", "tokens"):
        for suffix, parse in _WINDOW_SUFFIXES:
            name = f"{dimension}{suffix}"
            left = _float(headers.get(f"x-ratelimit-remaining-{name}"))
            raw = headers.get(f"x-ratelimit-reset-{name}")
            reset = (parse or _float)(raw) if raw else None
            if left is not None and reset is not None:
                lasted = max(reset, retry or 0.0) if left == 0 else reset
                windows[name] = LearnedWindow(
                    dimension=dimension, remaining=left, reset_at=now + reset,
                    limit=_float(headers.get(f"x-ratelimit-limit-{name}")),
                    span_s=_NAMED_SPANS.get(suffix), lasted_s=lasted + elapsed,
                    header=f"x-ratelimit-limit-{name}", refused=retry is not None,
                )  # fmt: skip
    left = _float(headers.get("x-ratelimit-remaining"))
    reset = _epoch_ms_reset(headers, now)
    if left is not None and reset is not None:  # OpenRouter: epoch-ms reset, per account
        windows["requests-account"] = LearnedWindow(  # a moment, not a duration: no `elapsed`
            dimension="requests", remaining=left, reset_at=now + reset,
            limit=_float(headers.get("x-ratelimit-limit")), lasted_s=reset,
            header="x-ratelimit-limit", moment=True,
        )  # fmt: skip
    return windows


def _window_resets(headers: Mapping[str, str], exhausted_only: bool) -> float | None:
    windows = list(_windows(headers))
    exhausted = [reset for _, reset, remaining in windows if remaining == 0]
    if exhausted:
        return max(exhausted)
    if exhausted_only:
        return None
    short = [reset for suffix, reset, _ in windows if suffix != "-day"]
    return max(short) if short else None


def _windows(headers: Mapping[str, str]) -> Iterator[tuple[str, float, float | None]]:
    """(suffix, reset seconds, remaining) per window of the OpenAI/Groq and Cerebras dialects."""
    for dimension in ("requests", "tokens"):
        for suffix, parse in _WINDOW_SUFFIXES:
            raw = headers.get(f"x-ratelimit-reset-{dimension}{suffix}")
            reset = (parse or _float)(raw) if raw else None
            if reset is not None:
                remaining = _float(headers.get(f"x-ratelimit-remaining-{dimension}{suffix}"))
                yield suffix, reset, remaining


def _epoch_ms_reset(headers: Mapping[str, str], now: float) -> float | None:
    value = _float(headers.get("x-ratelimit-reset") or headers.get("X-RateLimit-Reset"))
    if value is None or value < _EPOCH_MS_FLOOR:
        return None
    return value / 1000.0 - now


# -- provider error bodies ---------------------------------------------------------------------


def openrouter_headers(body: object) -> Mapping[str, str]:
    """OpenRouter repeats its rate-limit headers inside the error body (`metadata.headers`)."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    headers = metadata.get("headers") if isinstance(metadata, dict) else None
    if not isinstance(headers, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def gemini_details(body: object) -> list[dict[str, Any]]:
    """Gemini's `details` list, from its error object or the list it wraps it in."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0].get("error", body[0])
    details = body.get("details") if isinstance(body, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def gemini_violations(body: object) -> list[dict[str, Any]]:
    return [
        violation
        for detail in gemini_details(body)
        if str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure")
        for violation in detail.get("violations", [])
        if isinstance(violation, dict)
    ]


def gemini_reasons(body: object) -> set[str]:
    return {
        str(detail.get("reason"))
        for detail in gemini_details(body)
        if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo")
    }


def gemini_retry_delay(body: object) -> float | None:
    for detail in gemini_details(body):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_go_duration(str(detail.get("retryDelay", "")))
    return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _scaled(text: str | None, factor: float) -> float | None:
    value = _float(text)
    return None if value is None else value * factor
