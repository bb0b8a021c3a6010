"""A streamed chat completion, read from the raw server-sent events.

The SDK's own stream iterator swallows `data: [DONE]`, so it cannot tell a finished answer from
one whose connection ended cleanly in the middle; reading the events ourselves can. Every chunk
is kept as the provider sent it (a gateway passes it through), beside the text it carries.
Transport errors of the SDK's HTTP library are turned into the SDK's own exception types here,
so that `classify` keeps mapping one family of exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from llmroute import http1
from llmroute.attempt import Usage
from llmroute.failures import UpstreamProtocolError, UpstreamStreamError

DRAIN_TIMEOUT_S = 0.5
# The SDK's HTTP library (httpx in openai 1.x/2.x, httpx2 in 3.x).
HTTP = sys.modules[openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]]
# Delta fields that are part of the answer: the first chunk carrying one commits the stream
# to its candidate (a role-only or usage-only chunk does not).
CONTENT_FIELDS = ("content", "tool_calls", "function_call", "refusal", "reasoning_content")


@dataclass(frozen=True)
class Chunk:
    """One `data:` event: the provider's chunk as sent, and the answer text it adds."""

    data: Mapping[str, Any]
    text: str = ""
    raw: str = ""  # the event's JSON as the provider sent it ("" for a chunk made here)

    @property
    def has_content(self) -> bool:
        return any(
            (choice.get("delta") or {}).get(name)
            for choice in self.data.get("choices") or ()
            if isinstance(choice, dict)
            for name in CONTENT_FIELDS
        )


@dataclass(frozen=True, kw_only=True)
class StreamEnd:
    """`data: [DONE]`: the answer is complete."""

    usage: Usage | None = None
    finish_reason: str | None = None


StreamEvent = Chunk | StreamEnd


class EventStream(Protocol):
    """An open streamed answer: its headers at once, its events as they come."""

    headers: Mapping[str, str]

    def events(self) -> AsyncGenerator[StreamEvent, None]: ...

    async def aclose(self) -> None: ...


class HTTPEventStream:
    """The events of a streamed response (http1's, or httpx's through a proxy)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self.headers: Mapping[str, str] = response.headers

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        with sdk_errors():
            async for event in parse_events(aiter(self._response.aiter_lines())):
                yield event

    async def aclose(self) -> None:
        await self._response.aclose()


@contextmanager
def sdk_errors() -> Iterator[None]:
    """The HTTP clients' transport errors (http1's, and httpx's through a proxy) as the SDK's
    own exception types, so that `classify` keeps mapping one family of exceptions."""
    try:
        yield
    except http1.ReadTimeout as exc:
        raise openai.APITimeoutError(request=HTTP.Request("POST", exc.url)) from exc
    except http1.InvalidURL:
        raise  # not a transport failure: upstream.unsendable says what it is
    except http1.HTTPClientError as exc:
        request = HTTP.Request("POST", exc.url)
        raise openai.APIConnectionError(message=str(exc), request=request) from exc
    except HTTP.TimeoutException as exc:
        raise openai.APITimeoutError(request=exc.request) from exc
    except (HTTP.InvalidURL, HTTP.UnsupportedProtocol):
        raise  # not a transport failure: upstream.unsendable says what it is
    except HTTP.TransportError as exc:
        raise openai.APIConnectionError(message=str(exc), request=exc.request) from exc


async def parse_events(lines: AsyncIterator[str]) -> AsyncGenerator[StreamEvent, None]:
    """Chunks until `[DONE]`; an error event or an end without `[DONE]` raises."""
    usage: Usage | None = None
    finish: str | None = None
    async for line in lines:
        if not line.startswith("data:"):
            continue  # comments (": keep-alive"), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            await _drain(lines)
            yield StreamEnd(usage=usage, finish_reason=finish)
            return
        chunk = _decode(data)
        if "error" in chunk:
            raise UpstreamStreamError(f"error event in the stream: {_message(chunk['error'])}")
        text = ""
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict):
                text += (choice.get("delta") or {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
        usage = usage_of(chunk) or usage
        yield Chunk(chunk, text, data)
    raise UpstreamProtocolError("the stream ended without [DONE]: the answer may be cut")


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


def usage_of(body: Mapping[str, Any]) -> Usage | None:
    """`usage` of an answer or of the last chunk (stream_options.include_usage), or Groq's
    `x_groq.usage`."""
    raw = body.get("usage") or (body.get("x_groq") or {}).get("usage")
    if not isinstance(raw, dict):
        return None
    return Usage(
        prompt_tokens=_count(raw.get("prompt_tokens")),
        completion_tokens=_count(raw.get("completion_tokens")),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _message(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "unknown error")
    return str(error)
