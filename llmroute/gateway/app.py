"""The gateway: llmroute's engine behind OpenAI's HTTP API (Starlette, served by uvicorn).

A client cannot tell it from a provider except by its `x-llmroute-*` headers: request fields
pass through (after provider quirks) but `model`, which picks the route; the provider's answer
and its chunks come back as sent. Fallback before the first content is invisible; a stream
broken after it ends with an error event and no `[DONE]`, so clients know it is incomplete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmroute.errors import LLMRouteError, LogFileError, StreamBrokenError
from llmroute.gateway.access import AccessLog, ASGIApp, Message, Receive, Scope, Send, note
from llmroute.gateway.errors import HTTPError, http_error
from llmroute.gateway.events import EventStreamResponse, until_disconnected
from llmroute.gateway.wire import (
    MAX_BODY_BYTES,
    SSE_DONE,
    ChatRequest,
    WireError,
    answer_headers,
    read_chat_request,
    sse_chunk,
    sse_comment,
    sse_event,
    wanted,
)
from llmroute.requestlog.report import usage_report
from llmroute.router import Router
from llmroute.sse import Chunk
from llmroute.status import key_statuses, models_of
from llmroute.streaming import AnswerStream
from llmroute.timespan import parse_since

log = logging.getLogger("llmroute.gateway")
SETTLE_S = 5.0  # at shutdown, how long cancelled requests get to free what they hold


def build_app(
    router: Router,
    *,
    token: str | None = None,
    max_body: int = MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
    ready: Callable[[], None] = lambda: None,
) -> ASGIApp:
    """The ASGI app over one router; `token` makes `Authorization: Bearer <token>` required;
    `ready` is called once the server runs it."""
    gateway = Gateway(router, max_body, clock)
    routes: dict[str, dict[str, Handler]] = {
        "/v1/chat/completions": {"POST": gateway.chat},
        "/chat/completions": {"POST": gateway.chat},  # base_url without /v1
        "/v1/models": {"GET": gateway.models},
        "/health": {"GET": gateway.health},
        "/v1/llmroute/state": {"GET": gateway.state},
        "/v1/llmroute/usage": {"GET": gateway.usage},
    }
    app = Routes(routes, ready=ready, close=router.aclose)
    return AccessLog(app, token=token, open_paths=frozenset({"/health"}))


Handler = Callable[[Request], Awaitable[ASGIApp]]


class Routes:
    """Path and method to handler, each handler's Response sent as it is; the server's start
    and stop. A plain ASGI app: a framework's routing, middleware and exception layers cost
    more CPU per request than the rest of the gateway but the upstream call."""

    def __init__(
        self,
        routes: dict[str, dict[str, Handler]],
        *,
        ready: Callable[[], None],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.routes, self.ready, self.close = routes, ready, close
        self.in_flight = 0
        self.settled = asyncio.Event()  # set whenever no request is in flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.in_flight += 1
        self.settled.clear()
        try:
            await self.serve(scope, receive, send)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.settled.set()

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.routes.get(scope["path"])
        handler = methods.get(scope["method"]) if methods else None
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            response = (
                _no_route(methods) if handler is None else await handler(Request(scope, receive))
            )
            await response(scope, receive, sending)
        except Exception as exc:  # the gateway's boundary, as cli/boundary is the CLI's: a bug
            if not started:
                await _internal_error(exc)(scope, receive, send)
            raise  # for uvicorn to log its traceback

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                self.ready()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # The server stopped, and cancelled what outlived the drain: let those settle
                # (free their budgets) before the upstream connections and the store close.
                if self.in_flight:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SETTLE_S):
                            await self.settled.wait()
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


class Gateway:
    def __init__(self, router: Router, max_body: int, clock: Callable[[], float]) -> None:
        self.router, self.max_body, self.clock = router, max_body, clock

    async def chat(self, request: Request) -> ASGIApp:
        try:
            chat = await read_chat_request(request, self.max_body)
        except WireError as exc:
            return error_response(exc.error, report=False)
        note(request.scope, task=chat.task or self.router.config.settings.default_task)
        try:
            if chat.stream:
                return await self._stream(request, chat)
            return await self._complete(request, chat)
        except LLMRouteError as exc:
            note(request.scope, attempts=getattr(exc, "attempts", None))
            return error_response(http_error(exc, self.clock()), report=chat.report)

    async def _complete(self, request: Request, chat: ChatRequest) -> Response:
        settings = {k: v for k, v in chat.settings.items() if k != "ttft_timeout"}
        answer = self.router.complete(chat.task, chat.messages, **settings, **chat.params)
        result = await until_disconnected(request.receive, answer)
        if result is None:
            return Response(status_code=499)  # the client went away; nobody reads this
        note(request.scope, candidate=result.candidate, attempts=result.attempts)
        headers = answer_headers(result.candidate, result.fallbacks)
        if chat.report:
            headers["x-llmroute-report"] = json.dumps(_report(result.to_dict()))
        return Response(
            json.dumps(result.response).encode(), media_type="application/json", headers=headers
        )

    async def _stream(self, request: Request, chat: ChatRequest) -> ASGIApp:
        answer = self.router.stream(chat.task, chat.messages, **chat.settings, **chat.params)
        chunks = answer.chunks()
        try:  # until the first content, everything can still be an honest HTTP error
            first = await until_disconnected(request.receive, anext(chunks, None))
        except BaseException:
            await answer.aclose()
            raise
        if first is None and answer.candidate is None:
            await answer.aclose()
            return Response(status_code=499)
        note(request.scope, candidate=answer.candidate, attempts=answer.attempts)
        events = self._events(request, answer, first, chunks, chat)
        headers = answer_headers(answer.candidate, answer.attempts)
        return EventStreamResponse(events, headers, answer.aclose)

    async def _events(
        self,
        request: Request,
        answer: AnswerStream,
        first: Chunk | None,
        chunks: AsyncIterator[Chunk],
        chat: ChatRequest,
    ) -> AsyncGenerator[bytes, None]:
        try:
            if first is not None and wanted(first, chat.include_usage):
                yield sse_chunk(first)
            async for chunk in chunks:
                if wanted(chunk, chat.include_usage):
                    yield sse_chunk(chunk)
        except StreamBrokenError as broken:
            note(request.scope, attempts=broken.attempts, broken=True)
            if chat.report:
                yield sse_comment("llmroute", {"broken": http_error(broken, 0).body(report=True)})
            yield sse_event({"error": {"message": str(broken), "type": "upstream_error",
                                       "code": "stream_broken"}})  # fmt: skip
            return  # no [DONE]: the answer is incomplete
        finally:
            await answer.aclose()  # a client that went away frees the budget and connection
        note(request.scope, attempts=answer.result.attempts)
        if chat.report:
            yield sse_comment("llmroute", {"result": _report(answer.result.to_dict())})
        yield SSE_DONE

    async def models(self, request: Request) -> Response:
        config = self.router.config
        ids = [*config.tasks]
        for name in config.providers:
            ids += [f"{name}:{model}" for model in models_of(config, name)]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": _owner(i)} for i in ids]
        return JSONResponse({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def state(self, request: Request) -> Response:
        router, now = self.router, self.clock()
        snapshot = await asyncio.to_thread(router.store.snapshot, now)
        rows = key_statuses(router.config, router.engine.pools, snapshot, now)
        return JSONResponse({"keys": [r.to_dict() for r in rows]})

    async def usage(self, request: Request) -> Response:
        """What `llmroute usage --json` prints; query parameters `since` and `by`."""
        engine, now = self.router.engine, self.clock()
        query = request.query_params
        if engine.log is not None:  # its own latest requests count too
            await asyncio.to_thread(engine.log.flush)
        try:
            since = parse_since(query.get("since", "today"), now)
            by = query.get("by", "provider")
            report = await asyncio.to_thread(  # the store's reads too: off the event loop
                lambda: usage_report(
                    engine.log_path, engine.config, engine.pools, since=since, by=by, now=now,
                    snapshot=engine.store.snapshot(now),
                )
            )  # fmt: skip
        except ValueError as exc:
            error = HTTPError(status=400, message=str(exc), type="invalid_request_error")
            return error_response(error, report=False)
        except LogFileError as exc:
            error = HTTPError(status=500, message=str(exc), type="server_error")
            return error_response(error, report=False)
        return JSONResponse(report.to_dict())


def error_response(error: HTTPError, *, report: bool) -> Response:
    return JSONResponse(error.body(report=report), status_code=error.status, headers=error.headers)


def _report(result: dict[str, Any]) -> dict[str, Any]:
    """What `ask` prints on stderr: the result without the answer itself."""
    return {k: v for k, v in result.items() if k not in ("content", "tool_calls")}


def _owner(model_id: str) -> str:
    return model_id.partition(":")[0] if ":" in model_id else "llmroute"


def _no_route(methods: dict[str, Handler] | None) -> Response:
    if methods is None:
        error = HTTPError(status=404, message="Not Found", type="not_found")
    else:
        error = HTTPError(status=405, message="Method Not Allowed", type="invalid_request_error")
    return error_response(error, report=False)


def _internal_error(exc: Exception) -> Response:
    """A bug of llmroute's: a sentence for the client; uvicorn logs the traceback."""
    error = HTTPError(
        status=500, type="server_error",
        message=f"internal error in llmroute ({type(exc).__name__}); see the gateway's log",
    )  # fmt: skip
    return error_response(error, report=False)
