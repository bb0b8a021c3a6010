"""Writing the answer: at once, and a reader of stdout that went away (`| head`) is not an
error. Standard library only: `ask`'s fast path writes with it."""

from __future__ import annotations

import os
import sys


def emit(text: str) -> bool:
    """Write to stdout at once; False when its reader has gone away (`| head`)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so that later writes and the last flush do not fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return False
    return True
