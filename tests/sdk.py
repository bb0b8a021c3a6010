"""Real openai SDK exceptions, built the way the SDK builds them from an HTTP response."""

from __future__ import annotations

import json
from typing import Any

import openai
import openai._base_client as sdk_base

# The SDK's HTTP library: httpx in openai 1.x/2.x, httpx2 in 3.x.
http: Any = getattr(sdk_base, "httpx2", None) or getattr(sdk_base, "httpx")  # noqa: B009

REQUEST = http.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
_CLIENT = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)


def status_error(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> openai.APIStatusError:
    response = http.Response(
        status, headers=headers or {}, content=json.dumps(body).encode(), request=REQUEST
    )
    return _CLIENT._make_status_error(f"Error code: {status}", body=body, response=response)


def connection_error(cause: BaseException) -> openai.APIConnectionError:
    try:
        raise openai.APIConnectionError(request=REQUEST) from cause
    except openai.APIConnectionError as exc:
        return exc


def timeout_error() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=REQUEST)
