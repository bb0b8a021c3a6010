"""Provider quirks as data: request parameters an endpoint rejects, by host.

A provider's `drop_params` in routes.toml adds to what is known here. Dropping a parameter a
provider rejects is better than a 400 that would fail the whole request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from llmroute.config import ProviderConfig

UNSUPPORTED_PARAMS: Mapping[str, frozenset[str]] = {
    # Gemini's OpenAI-compatible endpoint: structured output differs from OpenAI's.
    "generativelanguage.googleapis.com": frozenset({"response_format"}),
    # Cerebras: https://inference-docs.cerebras.ai/resources/openai
    "api.cerebras.ai": frozenset(
        {"frequency_penalty", "presence_penalty", "logit_bias", "service_tier"}
    ),
    # Groq: https://console.groq.com/docs/openai
    "api.groq.com": frozenset({"logprobs", "logit_bias", "top_logprobs"}),
}


def dropped_params(provider: ProviderConfig) -> frozenset[str]:
    host = urlparse(provider.base_url).hostname or ""
    return UNSUPPORTED_PARAMS.get(host, frozenset()) | provider.drop_params


def adapt_params(provider: ProviderConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters this provider accepts."""
    dropped = dropped_params(provider)
    return {k: v for k, v in params.items() if k not in dropped}


# Endpoints that describe the key itself (usage, credit limit, tier), by host: a health check
# reads them because they tell more than a model listing does.
KEY_INFO_PATHS: Mapping[str, str] = {"openrouter.ai": "/key"}


def key_info_path(provider: ProviderConfig) -> str | None:
    return KEY_INFO_PATHS.get(urlparse(provider.base_url).hostname or "")
