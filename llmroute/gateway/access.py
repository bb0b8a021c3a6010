"""The gateway's door: the bearer token, and one access-log line per request.

A plain ASGI middleware, so that a streamed answer is logged when it has ended (with who
answered, how long the whole stream took, and whether it broke), not when its headers left.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from llmroute.attempt import OK, Attempt, Candidate

log = logging.getLogger("llmroute.access")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RECORD = "llmroute"  # the key of the request's record in the ASGI scope's state


def note(
    scope: Scope,
    *,
    task: str | None = None,
    candidate: Candidate | None = None,
    attempts: tuple[Attempt, ...] | None = None,
    broken: bool = False,
) -> None:
    """Add what the handler learned to the request's access-log record."""
    record = scope.setdefault("state", {}).setdefault(RECORD, {})
    if task is not None:
        record["task"] = task
    if candidate is not None:
        record["by"] = f"{candidate.key.alias}/{candidate.model}"
    if attempts is not None:
        record["attempts"] = attempts
    record["broken"] = broken or record.get("broken", False)


class AccessLog:
    def __init__(self, app: ASGIApp, *, token: str | None, open_paths: frozenset[str]) -> None:
        self.app, self.open_paths = app, open_paths
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self._authorized(scope):
                await self.app(scope, receive, sending)
            else:
                await _unauthorized(sending)
        finally:
            _log_line(scope, status, time.perf_counter() - started)

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None or scope["path"] in self.open_paths:
            return True
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, credential = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token)


async def _unauthorized(send: Send) -> None:
    body = json.dumps({"error": {
        "message": "this llmroute gateway needs `Authorization: Bearer <token>`: the token "
                   "given to `llmroute serve --token` (or LLMROUTE_SERVER_TOKEN)",
        "type": "invalid_request_error", "code": "invalid_api_key",
    }}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _log_line(scope: Scope, status: int, seconds: float) -> None:
    """`POST /v1/chat/completions 200 0.412s task=fast by=groq#2/small attempts=2 fallbacks=1`:
    an alias, never a key."""
    record = scope.get("state", {}).get(RECORD, {})
    parts = [scope["method"], scope["path"], str(status or "-"), f"{seconds:.3f}s"]
    if "task" in record:
        parts.append(f"task={record['task']}")
    if "by" in record:
        parts.append(f"by={record['by']}")
    attempts = record.get("attempts")
    if attempts is not None:
        called = sum(1 for a in attempts if a.called)
        passed_over = sum(1 for a in attempts if a.outcome != OK)
        parts += [f"attempts={called}", f"fallbacks={passed_over}"]
    if record.get("broken"):
        parts.append("broken")
    log.info(" ".join(parts))
