"""Spans of time as users write them: durations (`30d`, `2h`) and starting points (`today`,
`2026-12-01`), for `--since` and `[settings] log_retention`. Pure: `now` is given."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")
SINCE_FORMS = "a duration (30m, 2h, 7d), today, yesterday, or a date (2026-12-01)"


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h`, `7d`, `2w` → seconds; raises ValueError with the accepted forms."""
    match = _DURATION.match(text.lower())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"{text!r} is not a duration: write e.g. 30m, 2h, 7d or 2w")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds < math.inf:
        raise ValueError(f"{text!r} is an empty or endless duration")
    return seconds


def parse_since(text: str, now: float) -> float:
    """The epoch time `text` names, as seen from `now`: a duration ago, the start of today or
    yesterday (local time), or a date or date and time (local unless it says its zone)."""
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - timedelta(days=1 if word == "yesterday" else 0)).timestamp()
    if word[:1].isdigit() and "-" in word:
        return _moment(text.strip())
    try:
        return now - parse_duration(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {SINCE_FORMS}") from None


def _moment(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: write it as 2026-12-01 or 2026-12-01T14:00"
        ) from None
    if moment.tzinfo is None:
        return moment.astimezone().timestamp()  # a naive time is local
    return moment.timestamp()


def utc_midnight_after(now: float) -> float:
    """When a daily quota counted by the UTC day starts afresh."""
    today = datetime.fromtimestamp(now, UTC).date()
    return _utc(today + timedelta(days=1))


def utc_midnight_before(now: float) -> float:
    return _utc(datetime.fromtimestamp(now, UTC).date())


def _utc(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
