"""A streamed answer put back together: the text, and the response a non-streamed call gives.

The chunks pass through to the caller as they come; this keeps what they add up to, so that a
stream's `Result.response` has the same shape as a completion's: the message with its content
and tool calls, the finish reason, usage, and the provider's ids.
"""

from __future__ import annotations

from typing import Any

from llmroute.sse import Chunk, StreamEnd

_META = ("id", "created", "model", "system_fingerprint")


class Assembly:
    def __init__(self) -> None:
        self.pieces: list[str] = []  # the text deltas, in order
        self._meta: dict[str, Any] = {}
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self._logprobs: list[Any] = []

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self.pieces.append(chunk.text)
        data = chunk.data
        self._meta.update({k: data[k] for k in _META if data.get(k) is not None})
        for choice in data.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._add_choice(choice)

    def _add_choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._add_tool_call(call)
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            self._logprobs.extend(logprobs["content"])

    def _add_tool_call(self, delta: dict[str, Any]) -> None:
        """Tool calls stream as pieces keyed by index: the first has id and name, the rest
        add to the arguments."""
        call = self._tool_calls.setdefault(
            int(delta.get("index") or 0),
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        call["id"] = delta.get("id") or call["id"]
        call["type"] = delta.get("type") or call["type"]
        function = delta.get("function") or {}
        call["function"]["name"] = function.get("name") or call["function"]["name"]
        call["function"]["arguments"] += function.get("arguments") or ""

    def response(self, end: StreamEnd) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self._tool_calls:
            message["tool_calls"] = [self._tool_calls[i] for i in sorted(self._tool_calls)]
        elif message["content"] is None:
            message["content"] = ""
        choice = {
            "index": 0,
            "message": message,
            "logprobs": {"content": self._logprobs} if self._logprobs else None,
            "finish_reason": end.finish_reason,
        }
        return {
            "object": "chat.completion",
            **self._meta,
            "choices": [choice],
            "usage": end.usage.to_dict() if end.usage else None,
        }
