"""JSON as users write it, read strictly: no NaN, no Infinity, no number that overflows.

Python's json module accepts `NaN`, `Infinity` and `1e400` (as inf), which no provider does
and which cannot even be encoded again to send; reading them strictly turns a crash at send
time into a sentence about the input.
"""

from __future__ import annotations

import json
import math
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`, but NaN, Infinity, an overflowing float, an integer too long to convert
    and nesting too deep raise ValueError with what is wrong."""
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; write a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large for a number")
    return value
