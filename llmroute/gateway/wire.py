"""What travels over the gateway's HTTP: the chat request as a client sends it, and the
headers, SSE events and report that go back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from llmroute.attempt import Attempt, Candidate
from llmroute.gateway.errors import HTTPError, bad_request
from llmroute.sse import Chunk

MAX_BODY_BYTES = 20 * 1024 * 1024  # images as base64 make bodies large; this is not a DoS guard
# Asked for by a client that wants llmroute's own account (attempts, exit code), as `ask` does;
# other clients get the provider's answer and the x-llmroute-* headers, nothing more.
REPORT_HEADER = "x-llmroute-report"
# Per-request overrides of the config's settings, as `ask --deadline/--timeout/--ttft-timeout`.
SETTING_HEADERS = {
    "deadline": "x-llmroute-deadline",
    "timeout": "x-llmroute-timeout",
    "ttft_timeout": "x-llmroute-ttft-timeout",
}


class WireError(Exception):
    """The request cannot be served as sent; carries the answer to give."""

    def __init__(self, error: HTTPError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    task: str | None  # the client's `model`: a task, a pinned provider:model, or the default
    messages: Sequence[Mapping[str, Any]]
    params: Mapping[str, Any]  # every other field, passed through
    stream: bool
    include_usage: bool  # the client asked for the final usage chunk
    settings: Mapping[str, float]  # deadline / timeout / ttft_timeout overrides
    report: bool


async def read_chat_request(request: Request, max_body: int) -> ChatRequest:
    body = _decode(await read_body(request, max_body))
    model, messages = body.pop("model", None), body.pop("messages", None)
    stream = body.pop("stream", False)
    if model is not None and not isinstance(model, str):
        raise WireError(bad_request("`model` must be a string: a task or provider:model"))
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) for m in messages)
    ):
        raise WireError(bad_request("`messages` must be a non-empty list of message objects"))
    if not isinstance(stream, bool):
        raise WireError(bad_request("`stream` must be true or false"))
    # llmroute sets the stream's options itself (it always wants usage, to settle budgets)
    options = body.pop("stream_options", None) if stream else None
    return ChatRequest(
        task=model or None, messages=messages, params=body, stream=stream,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        settings=_settings(request), report=request.headers.get(REPORT_HEADER) == "1",
    )  # fmt: skip


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise WireError(_too_large(limit))
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise WireError(_too_large(limit))
        parts.append(part)
    return b"".join(parts)


def _too_large(limit: int) -> HTTPError:
    return bad_request(
        f"the request body is larger than {limit // (1024 * 1024)} MiB",
        status=413, code="request_too_large",
    )  # fmt: skip


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:  # also bad UTF-8
        raise WireError(bad_request(f"the body is not valid JSON ({exc})")) from None
    if not isinstance(body, dict):
        raise WireError(bad_request("the body must be a JSON object (a chat request)"))
    return body


def _settings(request: Request) -> dict[str, float]:
    settings = {}
    for name, header in SETTING_HEADERS.items():
        text = request.headers.get(header)
        if text is None:
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise WireError(bad_request(f"{header} must be a positive number of seconds"))
        settings[name] = value
    return settings


def answer_headers(candidate: Candidate | None, fallbacks: Sequence[Attempt]) -> dict[str, str]:
    """Who answered (the key by alias only), how many upstream calls it took, and how many
    candidates were passed over (skipped or failed) before the one that answered."""
    headers = {
        "x-llmroute-attempts": str(1 + sum(1 for a in fallbacks if a.called)),
        "x-llmroute-fallbacks": str(len(fallbacks)),
    }
    if candidate is not None:
        headers["x-llmroute-provider"] = candidate.provider
        headers["x-llmroute-key"] = candidate.key.alias
        headers["x-llmroute-model"] = candidate.model
    return headers


def wanted(chunk: Chunk, include_usage: bool) -> bool:
    """The usage-only last chunk goes only to a client that asked for it: llmroute always asks
    the provider for it, to settle its token budgets."""
    return include_usage or bool(chunk.data.get("choices")) or "usage" not in chunk.data


def sse_event(data: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def sse_chunk(chunk: Chunk) -> bytes:
    """The provider's chunk as it sent it (not decoded and encoded again)."""
    return b"data: " + chunk.raw.encode() + b"\n\n" if chunk.raw else sse_event(chunk.data)


def sse_comment(name: str, data: Mapping[str, Any]) -> bytes:
    """A comment line: SSE clients skip it; `llmroute ask` reads its report from it."""
    return f": {name} ".encode() + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
