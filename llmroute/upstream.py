"""The one seam to providers: a chat call through the openai SDK, and nothing else.

Clients are built lazily, one per (provider, key), with `max_retries=0`: the router is the only
retry loop, so an attempt is exactly one HTTP call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from llmroute.attempt import Candidate, Usage
from llmroute.failures import UpstreamProtocolError
from llmroute.sse import EventStream


@dataclass(frozen=True)
class Reply:
    content: str
    usage: Usage | None
    finish_reason: str | None
    headers: Mapping[str, str]


class SendStamp:
    """When the request actually left: after the SDK built it, as the HTTP client sends it.
    Provider windows count from about then; the moment `chat` was called can be much earlier
    (a new client's first request spends up to ~0.2 s in the SDK before sending)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.at: float | None = None

    def mark(self) -> None:
        self.at = self._clock()


_STAMP: ContextVar[SendStamp | None] = ContextVar("llmroute_send_stamp", default=None)


class Upstream(Protocol):
    def prepare(self, candidate: Candidate, base_url: str) -> None:
        """Make ready to call (build the client) so that `chat` starts sending at once."""

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply: ...

    async def open_stream(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> EventStream:
        """Send a streaming request; return once the provider has answered with headers."""

    async def aclose(self) -> None: ...


class OpenAIUpstream:
    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        # One HTTP client under all of them: one TLS context (~20 ms to load, once per process
        # instead of once per key) and one connection pool per host, whatever the key.
        self._http: openai.DefaultAsyncHttpxClient | None = None

    def prepare(self, candidate: Candidate, base_url: str) -> None:
        self._client(candidate, base_url)

    def _client(self, candidate: Candidate, base_url: str) -> openai.AsyncOpenAI:
        slot = (candidate.provider, candidate.key.alias)
        client = self._clients.get(slot)
        if client is None:
            if self._http is None:
                self._http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_sending]})
            client = openai.AsyncOpenAI(
                api_key=candidate.key.secret,
                base_url=base_url,
                max_retries=0,
                http_client=self._http,
            )
            self._clients[slot] = client
        return client

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply:
        client = self._client(candidate, base_url)
        _STAMP.set(stamp)  # this task's own context: the request hook below runs in it
        raw = await client.chat.completions.with_raw_response.create(
            model=candidate.model,
            messages=messages,  # type: ignore[arg-type]
            extra_body=dict(params) or None,
            timeout=timeout,
        )
        try:
            completion = raw.parse()
        except ValueError as exc:  # the SDK lets json's decode error through
            raise UpstreamProtocolError(f"malformed JSON in the answer ({exc})") from exc
        return _reply(completion, raw.headers)

    async def open_stream(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> EventStream:
        client = self._client(candidate, base_url)
        _STAMP.set(stamp)
        context = client.chat.completions.with_streaming_response.create(  # type: ignore[call-overload]
            model=candidate.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=dict(params) or None,
            timeout=timeout,
        )
        response = await context.__aenter__()
        return EventStream(context, response)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


async def _sending(request: Any) -> None:
    stamp = _STAMP.get()
    if stamp is not None:
        stamp.mark()


def _reply(completion: Any, headers: Mapping[str, str]) -> Reply:
    """A usable answer, or UpstreamProtocolError for a 200 that carries an error or nothing."""
    extra = getattr(completion, "model_extra", None) or {}
    if "error" in extra:
        error = extra["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise UpstreamProtocolError(f"error object in a 200 answer: {message}")
    choices = getattr(completion, "choices", None)
    if not choices:
        raise UpstreamProtocolError("the answer has no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if content is None and not getattr(message, "tool_calls", None):
        raise UpstreamProtocolError("the answer has no content")
    usage = getattr(completion, "usage", None)
    return Reply(
        content=content or "",
        usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else None,
        finish_reason=getattr(choices[0], "finish_reason", None),
        headers=headers,
    )
