"""`-o KEY VALUE`: the option's declaration, the command class that gives it two values each
time (Typer cannot declare a list of pairs), and the request parameters it makes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from llmroute import jsontext

PAIR_OPTIONS = frozenset({"option"})

PairsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-o", "--option", metavar="KEY VALUE", help="Extra request parameter (repeatable)."
    ),
]


class PairOptionsCommand(TyperCommand):
    """A command whose `option` parameter takes two values each time: `-o top_p 0.9`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name in PAIR_OPTIONS:
                param.nargs = 2


def parse_options(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`-o KEY VALUE`: VALUE is read as JSON when it is JSON (numbers, true, lists), else text;
    JSON no provider accepts (NaN, Infinity, 1e400) is a usage error, not a crash at send."""
    options: dict[str, Any] = {}
    for key, value in pairs:
        try:
            options[key] = jsontext.loads(value)
        except json.JSONDecodeError:
            options[key] = value
        except ValueError as exc:
            raise typer.BadParameter(f"-o {key} {value[:40]}: {exc}") from None
    return options


def request_params(
    temperature: float | None, max_tokens: int | None, pairs: Iterable[Iterable[str]] | None
) -> dict[str, Any]:
    """The request parameters of the command line: `-o` pairs, then the named options."""
    params = parse_options((key, value) for key, value in pairs or ())
    if temperature is not None and not math.isfinite(temperature):
        raise typer.BadParameter(f"--temperature must be a finite number, not {temperature}")
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return params
