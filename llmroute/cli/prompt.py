"""What the user asks: the prompt from stdin and/or the argument, and `-o KEY VALUE` options."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from llmroute.errors import UsageError


def read_prompt(argument: str | None, stdin: TextIO) -> str:
    """Stdin first, then the argument, separated by a blank line; either may be absent."""
    piped = "" if stdin.isatty() else stdin.read()
    parts = [p for p in (piped.strip("\n"), (argument or "").strip("\n")) if p.strip()]
    if not parts:
        raise UsageError(
            'nothing to ask: give a prompt, e.g. llmroute ask "hello", or pipe text in'
        )
    return "\n\n".join(parts)


def build_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def parse_options(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`-o KEY VALUE`: VALUE is read as JSON when it is JSON (numbers, true, lists), else text."""
    options: dict[str, Any] = {}
    for key, value in pairs:
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def request_params(
    temperature: float | None, max_tokens: int | None, pairs: Iterable[Iterable[str]] | None
) -> dict[str, Any]:
    """The request parameters of the command line: `-o` pairs, then the named options."""
    params = parse_options((key, value) for key, value in pairs or ())
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return params
