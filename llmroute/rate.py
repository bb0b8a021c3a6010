"""`N/window` rate expressions: "30/minute", "1000/day", "6000/minute", "5/2s"."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

_UNITS = {
    "ms": 0.001,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """At most `count` units (requests or tokens) in any window of `window_s` seconds."""

    count: int
    window_s: float

    def __str__(self) -> str:
        return f"{self.count}/{self.window_s:g}s"


def parse_rate(text: str) -> Rate:
    """Parse `N/window`; raises ValueError with the accepted forms."""
    match = _RATE.match(text.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(
            f'{text!r} is not a rate: write N/window, e.g. "30/minute", "1000/day", "5/2s"'
        )
    count, multiple, unit = match.groups()
    window = float(multiple or 1) * _UNITS[unit]
    if not 0 < window < math.inf:
        raise ValueError(f"{text!r} has an empty or endless window")
    if int(count) == 0:
        raise ValueError(f"{text!r} allows nothing: a limit is at least 1 (leave it out for none)")
    return Rate(int(count), window)


_NAMED_WINDOWS = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}


def window_name(window_s: float) -> str:
    """`min` for 60 s, `day` for 86400 s, else seconds: `2s`."""
    return _NAMED_WINDOWS.get(window_s, f"{window_s:g}s")


DAY_S = 86400.0


def daily_budget(rates: Iterable[Rate]) -> Rate | None:
    """The smallest budget over a day or longer, if one is configured."""
    return min((r for r in rates if r.window_s >= DAY_S), key=lambda r: r.count, default=None)
