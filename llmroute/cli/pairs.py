"""`-o KEY VALUE` options, which Typer cannot declare (a list of tuples)."""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand

PAIR_OPTIONS = frozenset({"option"})


class PairOptionsCommand(TyperCommand):
    """A command whose `option` parameter takes two values each time: `-o top_p 0.9`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name in PAIR_OPTIONS:
                param.nargs = 2
