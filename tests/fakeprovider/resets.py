"""Reset times in the formats providers use: Go durations, whole or float seconds, epoch ms."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String() at millisecond precision: 460ms, 1s, 2m59.56s."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    text = f"{secs}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def ceil_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds))


def epoch_ms(now: float, reset: float) -> int:
    return int((now + reset) * 1000)


def until_utc_midnight(now: float) -> float:
    """Seconds until the next UTC midnight, when daily quotas refill."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp() - now


def until_next_minute(now: float) -> float:
    return 60.0 - now % 60.0
