"""Token counting: a deterministic stand-in for a tokenizer, so tests can predict usage exactly.

One token is 4 characters, rounded up. Only text counts (roles, names, images are free).
"""

from __future__ import annotations

import math
from typing import Any


def text_tokens(text: str) -> int:
    """Tokens of a completion text: ceil(len / 4), 0 for an empty text."""
    return math.ceil(len(text) / 4)


def pieces(text: str) -> list[str]:
    """The text cut into the tokens text_tokens counts (4 characters, the last maybe fewer)."""
    return [text[i : i + 4] for i in range(0, len(text), 4)]


def content_text(content: object) -> str:
    """The text of a message's content, which is a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multimodal format: [{"type": "text", "text": "..."}, {"type": "image_url", ...}]
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _messages(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    messages = (body or {}).get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def prompt_tokens(body: dict[str, Any] | None) -> int:
    """ceil(characters of all message contents / 4), at least 1 (real APIs never report 0)."""
    chars = sum(len(content_text(m.get("content"))) for m in _messages(body))
    return max(1, math.ceil(chars / 4))


def last_user_text(body: dict[str, Any] | None) -> str:
    """Content of the last user message ('' if none): the default reply echoes it."""
    for message in reversed(_messages(body)):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def max_tokens(body: dict[str, Any] | None) -> int | None:
    """The completion budget the request asked for, under either of its two names."""
    for name in ("max_tokens", "max_completion_tokens"):
        value = (body or {}).get(name)
        # bool is an int subclass; a JSON true is not a budget
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def choice_count(body: dict[str, Any] | None) -> int:
    """How many choices the answer has: the request's n, honoured only when not streamed."""
    n = (body or {}).get("n")
    if (body or {}).get("stream") is True or not isinstance(n, int) or isinstance(n, bool):
        return 1
    return max(1, n)


def request_cost(body: dict[str, Any] | None, completion: str) -> int:
    """Tokens a request charges to a token window.

    Like real providers, the budget (max_tokens) is reserved up front when given; otherwise the
    actual completion is charged. Either counts once per choice (n).
    """
    budget = max_tokens(body)
    spent = budget if budget is not None else text_tokens(completion)
    return prompt_tokens(body) + spent * choice_count(body)
