"""OpenAI-format success payloads: chat.completion bodies, stream chunks and SSE framing."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .tokens import pieces

_ids = itertools.count(1)  # thread-safe enough: next() on a count is atomic under the GIL

FINGERPRINT = "fp_fake"  # system_fingerprint of every success body and chunk
LOGPROB = -0.25  # every token's log probability: the fake is equally sure of all it says


@dataclass(frozen=True)
class FunctionCall:
    """A tool call as the answer carries it (the id is given by Completion.new)."""

    name: str
    arguments: str
    id: str = ""


@dataclass(frozen=True)
class Completion:
    """What one successful answer says, shared by its JSON and SSE renderings."""

    model: str
    content: str
    finish_reason: str
    usage: Mapping[str, Any]
    id: str = ""
    created: int = 0
    tool_call: FunctionCall | None = None  # set: the message is this call, content is null
    logprobs: bool = False  # the request asked for them (only the JSON body carries them)
    n: int = 1  # choices in the JSON body, all alike; a stream always has one

    @staticmethod
    def new(
        model: str,
        content: str,
        finish_reason: str,
        usage: Mapping[str, Any],
        *,
        tool_call: FunctionCall | None = None,
        logprobs: bool = False,
        n: int = 1,
    ) -> Completion:
        number = next(_ids)
        return Completion(
            model=model,
            content=content,
            finish_reason=finish_reason,
            usage=dict(usage),
            id=f"chatcmpl-fake{number}",
            created=int(time.time()),
            tool_call=None if tool_call is None else replace(tool_call, id=f"call_fake{number}"),
            logprobs=logprobs,
            n=n,
        )


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _message(c: Completion) -> dict[str, Any]:
    if c.tool_call is None:
        return {"role": "assistant", "content": c.content}
    call = c.tool_call
    function = {"name": call.name, "arguments": call.arguments}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call.id, "type": "function", "function": function}],
    }


def _logprobs(text: str) -> dict[str, Any]:
    tokens = [
        {"token": t, "logprob": LOGPROB, "bytes": list(t.encode()), "top_logprobs": []}
        for t in pieces(text)
    ]
    return {"content": tokens, "refusal": None}


def completion_body(c: Completion) -> dict[str, Any]:
    choice = {
        "message": _message(c),
        "logprobs": _logprobs(c.content) if c.logprobs else None,
        "finish_reason": c.finish_reason,
    }
    return {
        "id": c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [{"index": i, **choice} for i in range(c.n)],
        "usage": dict(c.usage),
        "system_fingerprint": FINGERPRINT,
    }


def first_delta(c: Completion) -> dict[str, Any]:
    """The delta of the first chunk: the role, and a tool call's id and name."""
    if c.tool_call is None:
        return {"role": "assistant", "content": ""}
    call = c.tool_call
    function = {"name": call.name, "arguments": ""}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"index": 0, "id": call.id, "type": "function", "function": function}],
    }


def piece_delta(c: Completion, piece: str) -> dict[str, Any]:
    """The delta of one content chunk: text, or a piece of the tool call's arguments."""
    if c.tool_call is None:
        return {"content": piece}
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def stream_pieces(c: Completion) -> tuple[str, ...]:
    """How a stream sends the answer when no Stream says: text whole, arguments in tokens."""
    if c.tool_call is not None:
        return tuple(pieces(c.tool_call.arguments))
    return (c.content,) if c.content else ()


def chunk(c: Completion, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(c: Completion) -> dict[str, Any]:
    """The extra last chunk sent for stream_options.include_usage: no choices, only usage."""
    return {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [],
        "usage": dict(c.usage),
    }


STREAM_ERROR = {
    "error": {
        "message": "Internal error during generation",
        "type": "server_error",
        "code": "internal_error",
    }
}


def sse_event(data: object) -> bytes:
    """One SSE event: `data: <json>` and a blank line (strings such as [DONE] go verbatim)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
