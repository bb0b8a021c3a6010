"""Turn a Reply, for one request, into a WirePlan: exactly what to put on the wire, and when.

Pure functions (no sockets, no clock other than time.time for epoch resets), so the HTTP layer
only executes plans and every byte a reply produces is decided here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from . import bodies, tools
from . import completions as cc
from . import dialects as dl
from .replies import (
    CutReply,
    DialectReply,
    OkReply,
    RawReply,
    Reply,
    ResetReply,
    StallReply,
    Stream,
)
from .resets import ceil_seconds, until_utc_midnight
from .tokens import choice_count, last_user_text, prompt_tokens, text_tokens

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class RequestInfo:
    """The parts of an incoming request that replies depend on."""

    provider: str
    dialect: dl.Dialect
    key: str | None
    model: str | None
    body: dict[str, Any] | None

    @property
    def stream(self) -> bool:
        return bool(self.body and self.body.get("stream") is True)

    @property
    def include_usage(self) -> bool:
        options = (self.body or {}).get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    @property
    def logprobs(self) -> bool:
        return bool(self.body and self.body.get("logprobs") is True)


@dataclass(frozen=True)
class Pause:
    """Inside a stream: send nothing for a while (cut short when the server stops)."""

    seconds: float


@dataclass(frozen=True)
class WirePlan:
    """What the HTTP layer sends.

    action: "send" a complete response; "cut" sends the headers with the full Content-Length
    but only half the body, then closes; "reset" sends nothing and aborts with an RST;
    "stream" sends `events` with chunked encoding, and with abort=True closes the connection
    without the terminating chunk so the client sees a broken body.
    """

    status: int
    headers: dict[str, str]
    body: bytes = b""
    delay: float = 0.0
    action: Literal["send", "cut", "reset", "stream"] = "send"
    events: tuple[bytes | Pause, ...] = field(default_factory=tuple)
    abort: bool = False


def merge_headers(*layers: Mapping[str, str]) -> dict[str, str]:
    """Later layers win, comparing names case-insensitively as HTTP does."""
    merged: dict[str, str] = {}
    for layer in layers:
        for name, value in layer.items():
            for existing in [n for n in merged if n.lower() == name.lower()]:
                del merged[existing]
            merged[name] = value
    return merged


def _encode(body: Any) -> tuple[bytes, str]:
    if body is None:
        return b"", JSON_TYPE
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), JSON_TYPE


def plain(status: int, body: Any, *header_layers: Mapping[str, str]) -> WirePlan:
    data, content_type = _encode(body)
    headers = merge_headers({"content-type": content_type}, *header_layers)
    return WirePlan(status=status, headers=headers, body=data)


# -- what a reply says ---------------------------------------------------------------------


def _ok_of(reply: Reply) -> OkReply | None:
    if isinstance(reply, OkReply):
        return reply
    if isinstance(reply, StallReply | CutReply):
        return reply.then
    return None


def _said(ok: OkReply, info: RequestInfo) -> tuple[str, cc.FunctionCall | None]:
    """The text an ok reply answers this request with, or ('', the tool call it makes)."""
    if ok.tool_call is not None:
        return "", tools.complete(ok.tool_call, info.body)
    if ok.content is not None:
        return ok.content, None
    call = tools.default_call(info.body)
    return ("", call) if call is not None else (f"echo: {last_user_text(info.body)}", None)


def _charged(content: str, call: cc.FunctionCall | None) -> str:
    # A call costs completion tokens too: as many as its name and arguments have.
    return content if call is None else call.name + call.arguments


def reply_content(reply: Reply, info: RequestInfo) -> str:
    """The completion text a reply produces ('' for errors): the token window charges it."""
    ok = _ok_of(reply)
    return "" if ok is None else _charged(*_said(ok, info))


def _completion(ok: OkReply, info: RequestInfo) -> cc.Completion:
    content, call = _said(ok, info)
    n = choice_count(info.body)
    completion_tokens = text_tokens(_charged(content, call)) * n
    usage = ok.usage or cc.usage(prompt_tokens(info.body), completion_tokens)
    return cc.Completion.new(
        info.model or "unknown",
        content,
        "tool_calls" if call is not None else ok.finish_reason,
        usage,
        tool_call=call,
        logprobs=info.logprobs,
        n=n,
    )


# -- streams -------------------------------------------------------------------------------


def _stream_events(
    c: cc.Completion, stream: Stream, info: RequestInfo
) -> tuple[tuple[bytes | Pause, ...], bool]:
    """The SSE body for a stream; the flag says the connection must be aborted at the end."""
    events: list[bytes | Pause] = [cc.sse_event(cc.chunk(c, cc.first_delta(c)))]
    chunks = list(stream.chunks)
    for sent in range(len(chunks) + 1):
        # Faults are positioned "after N content chunks", i.e. before chunk number N.
        if stream.cut_after == sent:
            return tuple(events), True
        if stream.error_after == sent:
            events.append(cc.sse_event(cc.STREAM_ERROR))
            return tuple(events), False
        if stream.stall_after == sent and stream.stall_seconds > 0:
            events.append(Pause(stream.stall_seconds))
        if sent == len(chunks):
            break
        if stream.delay > 0:
            events.append(Pause(stream.delay))
        events.append(cc.sse_event(cc.chunk(c, cc.piece_delta(c, chunks[sent]))))
    final = cc.chunk(c, {}, c.finish_reason)
    if stream.usage and info.dialect.name == "groq":
        # Groq always reports usage, in x_groq on the chunk that carries finish_reason.
        final["x_groq"] = {"id": c.id, "usage": dict(c.usage)}
    events.append(cc.sse_event(final))
    if stream.usage and info.include_usage:
        events.append(cc.sse_event(cc.usage_chunk(c)))
    if not stream.no_done:
        events.append(cc.sse_event("[DONE]"))
    return tuple(events), False


def _render_ok(
    ok: OkReply,
    info: RequestInfo,
    base_headers: Mapping[str, str],
    delay: float,
    cut: bool = False,
) -> WirePlan:
    """cut=True breaks a stream after its content, sent as one chunk (see CutReply)."""
    c = _completion(ok, info)
    if not info.stream:
        return replace(plain(200, cc.completion_body(c), base_headers, ok.headers), delay=delay)
    pieces = cc.stream_pieces(c)
    stream = Stream(chunks=("".join(pieces),), cut_after=1) if cut else ok.sse or Stream(pieces)
    events, abort = _stream_events(c, stream, info)
    headers = merge_headers(
        {"content-type": "text/event-stream", "cache-control": "no-cache"},
        base_headers,
        ok.headers,
    )
    return WirePlan(200, headers, delay=delay, action="stream", events=events, abort=abort)


# -- errors --------------------------------------------------------------------------------


def _dialect_plan(
    reply: DialectReply, info: RequestInfo, limits: dl.Limits, now: float
) -> WirePlan:
    dialect = info.dialect
    ctx = dl.Context(model=info.model or "unknown", key=info.key, now=now)
    headers = dialect.limit_headers(limits, now)
    kind = reply.kind
    if kind == "rate_limited":
        window = limits.requests
        limit = window.limit if window else dialect.default_rpm
        breach = dl.Breach("requests", limit, limit, 1, reply.reset_after)
        return rate_limited_plan(info, breach, limits, now, reply.headers_only, reply.headers)
    if kind == "quota_exhausted":
        reset = reply.reset_after if reply.reset_after is not None else until_utc_midnight(now)
        payload = dialect.quota_exhausted(ctx, reset, limits)
        return plain(payload.status, payload.body, payload.headers, reply.headers)
    return plain(reply.status, _error_body(reply, dialect, ctx), headers, reply.headers)


def _error_body(reply: DialectReply, dialect: dl.Dialect, ctx: dl.Context) -> Any:
    match reply.kind:
        case "too_large":
            return bodies.too_large(ctx.model)
        case "unauthorized":
            return dialect.unauthorized(ctx)
        case "forbidden":
            return dialect.forbidden(ctx)
        case "not_found":
            return bodies.model_not_found(ctx.model)
        case "gone":
            message = f"The model `{ctx.model}` has been decommissioned and is no longer supported."
            return dialect.envelope(410, message, "invalid_request_error", "model_decommissioned")
        case "context_length_exceeded":
            return dialect.context_length_exceeded(ctx)
        case "bad_request":
            return bodies.bad_request(reply.message or "Bad request")
        case "unprocessable":
            return dialect.envelope(
                422, "Unprocessable Entity", "invalid_request_error", "unprocessable_entity"
            )
        case "gemini_invalid_key":
            return bodies.gemini_invalid_key()
        case "server_error":
            return bodies.server_error(reply.status)
        case "timeout_408":
            return dialect.envelope(408, "Request Timeout", "timeout", "timeout")
    raise ValueError(f"unknown reply kind {reply.kind!r}")


def rate_limited_plan(
    info: RequestInfo,
    breach: dl.Breach,
    limits: dl.Limits,
    now: float,
    headers_only: bool = False,
    extra_headers: Mapping[str, str] | None = None,
) -> WirePlan:
    """A 429 in the provider's dialect, scripted or triggered by a sliding window."""
    ctx = dl.Context(model=info.model or "unknown", key=info.key, now=now)
    payload = info.dialect.rate_limited(ctx, breach, limits)
    body = payload.body
    headers = dict(payload.headers)
    if breach.reset is None:
        # "Not told" must mean not told: drop the reset headers every response carries, or
        # a fixed one (OpenAI's "6ms") would read as "retry at once".
        headers = {n: v for n, v in headers.items() if "reset" not in n.lower()}
    if headers_only:
        # The reset can only be learnt from headers; dialects without rate-limit headers
        # (gemini, llamacpp) get a plain retry-after so there is something to learn.
        body = None
        has_retry = any(n.lower() == "retry-after" for n in headers)
        if breach.reset is not None and not has_retry:
            headers["retry-after"] = str(ceil_seconds(breach.reset))
    return plain(429, body, headers, extra_headers or {})


def render(reply: Reply, info: RequestInfo, limits: dl.Limits) -> WirePlan:
    """The plan for a scripted (or default) reply; the provider's latency is added by dispatch."""
    now = time.time()
    headers = info.dialect.limit_headers(limits, now)
    if isinstance(reply, OkReply):
        return _render_ok(reply, info, headers, reply.latency)
    if isinstance(reply, StallReply):
        return _render_ok(reply.then, info, headers, reply.seconds + reply.then.latency)
    if isinstance(reply, CutReply):
        if info.stream:
            # A stream cannot be cut by Content-Length: break it before the final chunk.
            return _render_ok(reply.then, info, headers, reply.then.latency, cut=True)
        plan = _render_ok(reply.then, info, headers, reply.then.latency)
        return replace(plan, action="cut")
    if isinstance(reply, ResetReply):
        return WirePlan(0, {}, action="reset")
    if isinstance(reply, RawReply):
        return plain(reply.status, reply.body, headers, reply.headers)
    if isinstance(reply, DialectReply):
        return _dialect_plan(reply, info, limits, now)
    raise TypeError(f"not a Reply: {reply!r}")
