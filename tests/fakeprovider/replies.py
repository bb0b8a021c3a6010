"""Scripted reply types and their builders.

Replies are plain frozen data: they say *what* a key answers, not how the bytes are produced.
Anything that depends on the request or the provider (the echoed content, the model name, the
dialect's error shape, the key's limits) is filled in when the reply is rendered (render.py).
Build them with the static methods on `Reply`, e.g. `Reply.rate_limited(reset=30.0)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

JsonBody = dict[str, Any] | list[Any] | str


def _frozen_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    # A read-only copy, so a shared reply cannot be changed behind a running test's back.
    return MappingProxyType(dict(headers or {}))


@dataclass(frozen=True)
class Stream:
    """How an SSE reply is chunked and where it breaks (counts are content chunks)."""

    chunks: Sequence[str] = ("Hel", "lo", " world")
    delay: float = 0.0  # pause before each content chunk
    cut_after: int | None = None  # close the connection mid-body after N content chunks
    error_after: int | None = None  # send an in-stream error event after N content chunks
    no_done: bool = False  # end the body cleanly but without `data: [DONE]`
    stall_after: int | None = None  # after N content chunks, send nothing for stall_seconds
    stall_seconds: float = 0.0
    usage: bool = True  # honour stream_options.include_usage (and Groq's x_groq.usage)

    def __post_init__(self) -> None:
        # Accept lists from callers but keep the dataclass hashable and immutable.
        object.__setattr__(self, "chunks", tuple(self.chunks))

    @property
    def content(self) -> str:
        return "".join(self.chunks)


@dataclass(frozen=True)
class ToolCall:
    """A scripted function call; None fields are taken from the request's tools (tools.py)."""

    name: str | None = None
    arguments: str | None = None  # the JSON text, exactly as it goes into the reply


@dataclass(frozen=True)
class Reply:
    """Base of all replies. Use the builders below rather than the subclasses."""

    @property
    def outcome(self) -> str:
        """The name logged in LoggedRequest.outcome."""
        raise NotImplementedError

    # -- success ---------------------------------------------------------------------------

    @staticmethod
    def ok(
        content: str | None = None,
        *,
        usage: Mapping[str, Any] | None = None,
        latency: float = 0.0,
        headers: Mapping[str, str] | None = None,
        finish_reason: str = "stop",
        stream: Stream | None = None,
    ) -> OkReply:
        """A chat.completion (SSE when the request streams).

        content=None echoes the prompt, or, when the request offers tools (and tool_choice is
        not "none"), answers like Reply.tool_calls() does.
        """
        if stream is not None and content is None:
            content = stream.content
        return OkReply(
            content=content,
            usage=None if usage is None else MappingProxyType(dict(usage)),
            latency=latency,
            headers=_frozen_headers(headers),
            finish_reason=finish_reason,
            sse=stream,
        )

    @staticmethod
    def stream(
        chunks: Sequence[str] = ("Hel", "lo", " world"),
        delay: float = 0.0,
        cut_after: int | None = None,
        error_after: int | None = None,
        no_done: bool = False,
        stall_after: int | None = None,
        stall_seconds: float = 0.0,
        usage: bool = True,
    ) -> OkReply:
        """An explicitly chunked SSE reply (sent as one JSON body if the request doesn't stream)."""
        return Reply.ok(
            stream=Stream(
                chunks=chunks,
                delay=delay,
                cut_after=cut_after,
                error_after=error_after,
                no_done=no_done,
                stall_after=stall_after,
                stall_seconds=stall_seconds,
                usage=usage,
            )
        )

    @staticmethod
    def tool_calls(
        name: str | None = None,
        arguments: str | Mapping[str, Any] | None = None,
        *,
        usage: Mapping[str, Any] | None = None,
        latency: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> OkReply:
        """An assistant message with one function call and finish_reason "tool_calls".

        name=None calls the tool the request forces by tool_choice, else its first tool;
        arguments=None builds them from that tool's parameters; a mapping is sent as JSON.
        Streamed as OpenAI does: the call's name first, then its arguments in pieces.
        """
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(dict(arguments))
        return OkReply(
            usage=None if usage is None else MappingProxyType(dict(usage)),
            latency=latency,
            headers=_frozen_headers(headers),
            tool_call=ToolCall(name=name, arguments=arguments),
        )

    # -- raw HTTP --------------------------------------------------------------------------

    @staticmethod
    def error(status: int, body: JsonBody, headers: Mapping[str, str] | None = None) -> RawReply:
        """Exactly this status and body (a str body is sent as text/plain)."""
        return RawReply(status=status, body=body, headers=_frozen_headers(headers))

    @staticmethod
    def error_in_200() -> RawReply:
        """HTTP 200 whose body is an error object, as OpenRouter sends upstream failures."""
        body = {"error": {"message": "Upstream error from provider", "code": 502}}
        return RawReply(status=200, body=body, kind="error_in_200")

    @staticmethod
    def malformed() -> RawReply:
        """HTTP 200 declared as JSON whose body is truncated, invalid JSON."""
        return RawReply(
            status=200,
            body=b'{"id": "chatcmpl-x", "choices": [',
            headers=_frozen_headers({"content-type": "application/json"}),
            kind="malformed",
        )

    # -- errors shaped by the provider's dialect -------------------------------------------

    @staticmethod
    def rate_limited(reset: float | None = None, *, headers_only: bool = False) -> DialectReply:
        """429 in the dialect's shape; reset = seconds from now.

        reset=None: the reply says nothing about when to retry (no retry-after, no reset
        header, no "try again in" text, no RetryInfo), so the router must fall back.

        headers_only=True sends an empty body, so the reset is only in the headers
        (plus a `retry-after` for dialects that have no rate-limit headers).
        """
        return DialectReply(
            kind="rate_limited", status=429, reset_after=reset, headers_only=headers_only
        )

    @staticmethod
    def quota_exhausted(reset: float | None = None) -> DialectReply:
        """The daily cap (429) in the dialect's shape; reset=None means the next UTC midnight."""
        return DialectReply(kind="quota_exhausted", status=429, reset_after=reset)

    @staticmethod
    def too_large() -> DialectReply:
        """Groq's 413 for a request above the tokens-per-minute limit."""
        return DialectReply(kind="too_large", status=413)

    @staticmethod
    def unauthorized() -> DialectReply:
        """401; the message contains the key as sent, like real providers' (partial) echo."""
        return DialectReply(kind="unauthorized", status=401)

    @staticmethod
    def forbidden() -> DialectReply:
        return DialectReply(kind="forbidden", status=403)

    @staticmethod
    def not_found() -> DialectReply:
        """404 model_not_found for the requested model."""
        return DialectReply(kind="not_found", status=404)

    @staticmethod
    def gone() -> DialectReply:
        """410 for a decommissioned model."""
        return DialectReply(kind="gone", status=410)

    @staticmethod
    def context_length_exceeded() -> DialectReply:
        return DialectReply(kind="context_length_exceeded", status=400)

    @staticmethod
    def bad_request(message: str = "Invalid value for 'temperature'") -> DialectReply:
        return DialectReply(kind="bad_request", status=400, message=message)

    @staticmethod
    def unprocessable() -> DialectReply:
        return DialectReply(kind="unprocessable", status=422)

    @staticmethod
    def gemini_invalid_key() -> DialectReply:
        """Gemini's 400 (not 401) for a bad key, as a JSON list."""
        return DialectReply(kind="gemini_invalid_key", status=400)

    @staticmethod
    def server_error(status: int = 503, headers: Mapping[str, str] | None = None) -> DialectReply:
        """A 5xx (or Groq's 498 / Anthropic-style 529) with a server_error body."""
        return DialectReply(kind="server_error", status=status, headers=_frozen_headers(headers))

    @staticmethod
    def timeout_408() -> DialectReply:
        return DialectReply(kind="timeout_408", status=408)

    # -- faults on the wire ----------------------------------------------------------------

    @staticmethod
    def stall(seconds: float, then: OkReply | None = None) -> StallReply:
        """Send nothing for `seconds` (cut short by server.stop()), then an ok reply."""
        return StallReply(seconds=seconds, then=then or Reply.ok())

    @staticmethod
    def reset() -> ResetReply:
        """Read the request, then abort the connection with a TCP RST; nothing is sent."""
        return ResetReply()

    @staticmethod
    def cut(then: OkReply | None = None) -> CutReply:
        """Headers with the full Content-Length, half of the body, then close."""
        return CutReply(then=then or Reply.ok())


@dataclass(frozen=True)
class OkReply(Reply):
    content: str | None = None
    usage: Mapping[str, Any] | None = None
    latency: float = 0.0
    headers: Mapping[str, str] = field(default_factory=lambda: _frozen_headers(None))
    finish_reason: str = "stop"
    # Named `sse`, not `stream`, so it doesn't shadow the Reply.stream builder.
    sse: Stream | None = None
    tool_call: ToolCall | None = None  # set: content is ignored, the answer is this call

    @property
    def outcome(self) -> str:
        return "ok" if self.sse is None else "stream"


@dataclass(frozen=True)
class RawReply(Reply):
    status: int = 500
    body: JsonBody | bytes = ""
    headers: Mapping[str, str] = field(default_factory=lambda: _frozen_headers(None))
    kind: str = "error"

    @property
    def outcome(self) -> str:
        return self.kind


@dataclass(frozen=True)
class DialectReply(Reply):
    """An error whose body and headers the provider's dialect decides (see dialects.py)."""

    kind: str = "server_error"
    status: int = 500
    reset_after: float | None = None  # seconds; not `reset`, which is a Reply builder
    headers_only: bool = False
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _frozen_headers(None))

    @property
    def outcome(self) -> str:
        return self.kind


@dataclass(frozen=True)
class StallReply(Reply):
    seconds: float = 0.0
    then: OkReply = field(default_factory=OkReply)

    @property
    def outcome(self) -> str:
        return "stall"


@dataclass(frozen=True)
class ResetReply(Reply):
    @property
    def outcome(self) -> str:
        return "reset"


@dataclass(frozen=True)
class CutReply(Reply):
    then: OkReply = field(default_factory=OkReply)

    @property
    def outcome(self) -> str:
        return "cut"
