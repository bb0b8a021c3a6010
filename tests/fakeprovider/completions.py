"""OpenAI-format success payloads: chat.completion bodies, stream chunks and SSE framing."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ids = itertools.count(1)  # thread-safe enough: next() on a count is atomic under the GIL


@dataclass(frozen=True)
class Completion:
    """What one successful answer says, shared by its JSON and SSE renderings."""

    model: str
    content: str
    finish_reason: str
    usage: Mapping[str, Any]
    id: str = ""
    created: int = 0

    @staticmethod
    def new(model: str, content: str, finish_reason: str, usage: Mapping[str, Any]) -> Completion:
        return Completion(
            model=model,
            content=content,
            finish_reason=finish_reason,
            usage=dict(usage),
            id=f"chatcmpl-fake{next(_ids)}",
            created=int(time.time()),
        )


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_body(c: Completion) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": c.content},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
        ],
        "usage": dict(c.usage),
    }


def chunk(c: Completion, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(c: Completion) -> dict[str, Any]:
    """The extra last chunk sent for stream_options.include_usage: no choices, only usage."""
    return {
        "id": c.id,
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
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
