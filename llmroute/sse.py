"""A streamed chat completion, read from the raw server-sent events.

The SDK's own stream iterator swallows `data: [DONE]`, so it cannot tell a finished answer from
one whose connection ended cleanly in the middle; reading the events ourselves can. Transport
errors of the SDK's HTTP library are turned into the SDK's own exception types here, so that
`classify` keeps mapping one family of exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import openai

from llmroute.attempt import Usage
from llmroute.failures import UpstreamProtocolError, UpstreamStreamError

DRAIN_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class StreamEnd:
    usage: Usage | None
    finish_reason: str | None


StreamEvent = TextDelta | StreamEnd


class EventStream:
    """An open streamed answer: its headers at once, its events as they come."""

    def __init__(self, context: Any, response: Any) -> None:
        self._context = context  # the SDK's response context manager, to close it
        self._response = response
        self.headers: Mapping[str, str] = response.headers

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        http = sys.modules[type(self._response.http_response).__module__.split(".")[0]]
        try:
            async for event in self._parse():
                yield event
        except http.TimeoutException as exc:
            raise openai.APITimeoutError(request=exc.request) from exc
        except http.TransportError as exc:
            raise openai.APIConnectionError(message=str(exc), request=exc.request) from exc

    async def _parse(self) -> AsyncGenerator[StreamEvent, None]:
        usage: Usage | None = None
        finish: str | None = None
        lines = aiter(self._response.iter_lines())
        async for line in lines:
            if not line.startswith("data:"):
                continue  # comments (": keep-alive"), event names, blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                await _drain(lines)
                yield StreamEnd(usage, finish)
                return
            chunk = _decode(data)
            if "error" in chunk:
                raise UpstreamStreamError(f"error event in the stream: {_message(chunk['error'])}")
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield TextDelta(text)
                finish = choice.get("finish_reason") or finish
            usage = _usage(chunk) or usage
        raise UpstreamProtocolError("the stream ended without [DONE]: the answer may be cut")

    async def aclose(self) -> None:
        await self._context.__aexit__(None, None, None)


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read the body to its end, so the connection goes back to the pool for the next request
    (a response closed unread is dropped); a server that keeps it open is not waited for."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in lines:
                pass


def _decode(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise UpstreamProtocolError(f"malformed event in the stream ({exc})") from exc
    if not isinstance(chunk, dict):
        raise UpstreamProtocolError("malformed event in the stream (not an object)")
    return chunk


def _usage(chunk: Mapping[str, Any]) -> Usage | None:
    """`usage` on the last chunk (stream_options.include_usage), or Groq's `x_groq.usage`."""
    raw = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
    if not isinstance(raw, dict):
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


def _message(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "unknown error")
    return str(error)
