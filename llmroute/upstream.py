"""The one seam to providers: every HTTP call llmroute makes goes through `Upstream`.

The openai SDK builds the clients (one per provider and key, lazily, all over one HTTP client,
`max_retries=0`: the router is the only retry loop, so an attempt is exactly one HTTP call),
their headers, and the exception types that `classify` maps. Chat requests, the hot path, are
posted as prepared JSON by `http1` (kept-alive connections, httptools): the SDK's request
building and httpx together cost several times the CPU of the rest of the router. A base URL
that the environment sends through a proxy is posted on the SDK's httpx client instead. Answers
come back as the provider's JSON, not the SDK's models, so a caller (or the gateway) gets every
field the provider sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai

from llmroute import http1
from llmroute.attempt import Candidate, Usage
from llmroute.failures import UnsendableRequestError, UpstreamProtocolError
from llmroute.keys import ApiKey
from llmroute.sse import HTTP, EventStream, HTTPEventStream, sdk_errors, usage_of


@dataclass(frozen=True, kw_only=True)
class Reply:
    content: str
    usage: Usage | None
    finish_reason: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    response: Mapping[str, Any] = field(default_factory=dict)  # the provider's JSON


@dataclass(frozen=True, kw_only=True)
class ModelListing:
    models: tuple[str, ...]
    headers: Mapping[str, str]


class SendStamp:
    """When the request actually left: once the HTTP client has written its body.
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

    async def list_models(
        self, provider: str, key: ApiKey, base_url: str, timeout: float
    ) -> ModelListing:
        """`GET /models`: proves a key without spending quota."""

    async def get_json(
        self, provider: str, key: ApiKey, base_url: str, path: str, timeout: float
    ) -> object:
        """`GET path` under the key (OpenRouter's `/key`)."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ChatRoute:
    """How one provider key's chat requests go out, worked out once."""

    client: openai.AsyncOpenAI
    url: str  # .../chat/completions
    headers: dict[str, str] = field(repr=False)  # the SDK's, the key's Authorization included
    target: http1.Target | None  # None: through a proxy, on httpx
    head: bytes = field(default=b"", repr=False)  # http1's request line and headers, key too


class OpenAIUpstream:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], ChatRoute] = {}
        # One HTTP client under all of them: one TLS context (~20 ms to load, once per process
        # instead of once per key) and one connection pool per host, whatever the key.
        self._http: openai.DefaultAsyncHttpxClient | None = None
        self._lean = http1.Client(tls=HTTP.create_ssl_context)

    def prepare(self, candidate: Candidate, base_url: str) -> None:
        self._route(candidate.provider, candidate.key, base_url)

    def _route(self, provider: str, key: ApiKey, base_url: str) -> ChatRoute:
        with unsendable(provider):
            return self._routes.get((provider, key.alias)) or self._build(provider, key, base_url)

    def _build(self, provider: str, key: ApiKey, base_url: str) -> ChatRoute:
        if self._http is None:
            self._http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_sending]})
        client = openai.AsyncOpenAI(
            api_key=key.secret, base_url=base_url, max_retries=0, http_client=self._http
        )
        merged = {**client.default_headers, **client.auth_headers}
        headers = {k: v for k, v in merged.items() if isinstance(v, str)}
        url = f"{client.base_url}chat/completions"
        target = None if http1.proxied(url) else http1.Target.parse(str(client.base_url))
        head = b"" if target is None else http1.request_bytes(
            target, "chat/completions", list(headers.items())
        )  # fmt: skip
        route = ChatRoute(client=client, url=url, headers=headers, target=target, head=head)
        self._routes[(provider, key.alias)] = route
        return route

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply:
        response = await self._post(candidate, base_url, messages, params, timeout, stamp)
        return reply_from(_json(response.content), dict(response.headers))

    async def open_stream(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> EventStream:
        streamed = {**params, "stream": True, "stream_options": {"include_usage": True}}
        response = await self._post(
            candidate, base_url, messages, streamed, timeout, stamp, stream=True
        )
        return HTTPEventStream(response)

    async def _post(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
        *,
        stream: bool = False,
    ) -> Any:
        """POST the chat request as prepared JSON: not through the SDK's request building
        (TypedDict transforms, option merging: ~1.5 ms of CPU a call). Failures are raised as
        the SDK's own exception types, so classify() sees what the SDK would have raised.
        Returns the response (http1's or httpx's), its body read unless `stream`."""
        route = self._route(candidate.provider, candidate.key, base_url)
        body = json.dumps({**params, "model": candidate.model, "messages": messages}).encode()
        with unsendable(candidate.provider), sdk_errors():
            if route.target is not None:
                response = await self._lean.post(
                    route.target, http1.with_body(route.head, body), timeout=timeout,
                    sent=stamp.mark,
                )  # fmt: skip
            else:
                response = await self._send_proxied(route, body, timeout, stamp)
            if not stream or response.status_code >= 400:
                try:
                    await response.aread()
                finally:  # a timeout or a cancel while reading must not keep the connection
                    await response.aclose()
            if response.status_code >= 400:
                raise _status_error(
                    response.status_code, response.headers, response.content, route.url
                )
        return response

    async def _send_proxied(
        self, route: ChatRoute, body: bytes, timeout: float, stamp: SendStamp
    ) -> Any:
        assert self._http is not None  # built with the first route
        _STAMP.set(stamp)  # this task's own context: the request hook below runs in it
        request = self._http.build_request(
            "POST", route.url, content=body, headers=route.headers, timeout=timeout
        )
        return await self._http.send(request, stream=True)

    async def list_models(
        self, provider: str, key: ApiKey, base_url: str, timeout: float
    ) -> ModelListing:
        client = self._route(provider, key, base_url).client
        with unsendable(provider):
            raw = await client.models.with_raw_response.list(timeout=timeout)
        body = _json(raw.content)
        data = body.get("data") if isinstance(body, dict) else None
        models = tuple(
            str(m["id"]) for m in data or () if isinstance(m, dict) and m.get("id") is not None
        )
        return ModelListing(models=models, headers=raw.headers)

    async def get_json(
        self, provider: str, key: ApiKey, base_url: str, path: str, timeout: float
    ) -> object:
        client = self._route(provider, key, base_url).client
        with unsendable(provider):
            return await client.get(path, cast_to=object, options={"timeout": timeout})

    async def aclose(self) -> None:
        routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            await route.client.close()
        await self._lean.aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


@contextmanager
def unsendable(provider: str) -> Iterator[None]:
    """What stops a request before it reaches the wire is that candidate's failure, not a
    crash of the whole request: a URL the HTTP library refuses, a port out of range, a key
    that is not ASCII. The message says where, never the key."""
    try:
        yield
    except UnicodeEncodeError as exc:
        # Keys that cannot be a header never get here (pools.header_problem sets them aside):
        # what cannot be encoded is the request's own text, e.g. a lone surrogate ("\ud800"
        # in JSON, a non-UTF-8 argv byte). Every provider would refuse it; no key is to blame.
        raise UnsendableRequestError(
            f"{provider}: the request holds text that cannot be sent ({exc.reason} at "
            f"position {exc.start}); fix the request",
            key_problem=False,
            request_problem=True,
        ) from None
    except (HTTP.InvalidURL, HTTP.UnsupportedProtocol, http1.InvalidURL) as exc:
        raise UnsendableRequestError(
            f"{provider}: base_url cannot be used ({exc})", key_problem=False
        ) from None
    except ExceptionGroup as group:  # the connect task group: a port out of range
        if not all(isinstance(e, OverflowError | ValueError) for e in group.exceptions):
            raise
        reasons = "; ".join(str(e) for e in group.exceptions)
        raise UnsendableRequestError(
            f"{provider}: base_url cannot be connected to ({reasons})", key_problem=False
        ) from None


def _status_error(
    status: int, headers: Mapping[str, str], content: bytes, url: str
) -> openai.APIStatusError:
    """The SDK's error for an HTTP error status, its body unwrapped as the SDK does (classify
    reads only the status, the body and the headers)."""
    try:
        body: object = json.loads(content)
    except ValueError:
        body = content.decode("utf-8", "replace") or None
    data = body.get("error", body) if isinstance(body, dict) else body
    message = f"Error code: {status} - {body}"
    response = HTTP.Response(
        status, headers=dict(headers), content=content, request=HTTP.Request("POST", url)
    )
    return openai.APIStatusError(message, response=response, body=data)


async def _sending(request: Any) -> None:
    """Through a proxy (on httpx): the request hook runs before a connection is taken from
    the pool and before anything is written: under a burst the request leaves up to ~0.1 s
    later. So the stamp is set when the body has been written (the HTTP core's trace
    extension); a request that never got that far keeps the time it was called."""
    stamp = _STAMP.get()
    if stamp is None:
        return

    async def trace(event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(".send_request_body.complete"):
            stamp.mark()

    request.extensions["trace"] = trace


def _json(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise UpstreamProtocolError(f"malformed JSON in the answer ({exc})") from exc


def reply_from(body: object, headers: Mapping[str, str]) -> Reply:
    """A usable answer, or UpstreamProtocolError for a 200 that carries an error or nothing."""
    if not isinstance(body, dict):
        raise UpstreamProtocolError("the answer is not a JSON object")
    if "error" in body:
        error = body["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise UpstreamProtocolError(f"error object in a 200 answer: {message}")
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict):
        raise UpstreamProtocolError("the answer has no choices")
    message = first.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    tool_calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(content, str) and not tool_calls:
        raise UpstreamProtocolError("the answer has no content")
    return Reply(
        content=content if isinstance(content, str) else "",
        usage=usage_of(body),
        finish_reason=first.get("finish_reason"),
        headers=headers,
        response=body,
    )
