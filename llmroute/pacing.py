"""Pacing: which budget an attempt draws on, and how much it costs. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmroute.attempt import Candidate
from llmroute.budget import Cost
from llmroute.config import Limits, ProviderConfig

CHARS_PER_TOKEN = 4  # a rough, tokenizer-free estimate; settled with the provider's count
DEFAULT_COMPLETION_TOKENS = 256  # reserved when the request sets no max_tokens


def budget_scope(candidate: Candidate, provider: ProviderConfig) -> str:
    """Per key and model; with `limit_scope = "account"`, the keys of a provider share it."""
    c = candidate
    owner = "*" if provider.limit_scope == "account" else f"{c.key.alias}:{c.key.fingerprint}"
    return f"budget:{c.provider}:{owner}:{c.model}"


def limits_for(provider: ProviderConfig, model: str) -> Limits:
    """A model's own rates replace the provider's, dimension by dimension."""
    own = provider.models.get(model)
    if own is None:
        return provider.limits
    return Limits(
        requests=own.limits.requests or provider.limits.requests,
        tokens=own.limits.tokens or provider.limits.tokens,
    )


def estimate_cost(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Cost:
    """One request, and the prompt's tokens plus the completion it may produce."""
    chars = sum(len(_text(m.get("content"))) for m in messages)
    prompt = max(1, math.ceil(chars / CHARS_PER_TOKEN))
    completion = params.get("max_tokens") or params.get("max_completion_tokens")
    if not isinstance(completion, int) or completion <= 0:
        completion = DEFAULT_COMPLETION_TOKENS
    return Cost(requests=1, tokens=prompt + completion)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part messages: count the text parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
