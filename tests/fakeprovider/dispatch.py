"""Decide the answer to one request: route, authenticate, check the model, apply limits, log.

Independent of sockets: takes the request as read, returns a WirePlan for the HTTP layer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .dialects import Limits
from .log import LoggedRequest, RequestLog
from .provider import FakeProvider
from .render import RequestInfo, WirePlan, plain, rate_limited_plan, render, reply_content
from .replies import Reply
from .tokens import request_cost


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str
    authorization: str | None
    body: bytes
    at: float  # time.monotonic() on arrival


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, exactly as sent."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _json_body(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
    """(body, ok): an empty body is fine (GET), anything but a JSON object is not."""
    if not raw:
        return None, True
    try:
        value = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both derive from it
        return None, False
    return (value, True) if isinstance(value, dict) else (None, False)


def _no_route(incoming: Incoming) -> WirePlan:
    message = f"Unknown request URL: {incoming.method} {incoming.path}."
    body = {"error": {"message": message, "type": "invalid_request_error", "code": "unknown_url"}}
    return plain(404, body)


def dispatch(
    incoming: Incoming,
    find_provider: Callable[[str], FakeProvider | None],
    log: RequestLog,
) -> WirePlan:
    path = incoming.path.split("?", 1)[0]
    parts = path.strip("/").split("/")
    name = parts[0] if parts else ""
    provider = find_provider(name)
    key = bearer(incoming.authorization)
    body, body_ok = _json_body(incoming.body)
    model = body.get("model") if body else None
    model = model if isinstance(model, str) else None
    stream = bool(body and body.get("stream") is True)

    def logged(plan: WirePlan, outcome: str) -> WirePlan:
        log.append(
            LoggedRequest(
                provider=name,
                key=key,
                model=model,
                path=path,
                status=plan.status,
                stream=stream,
                at=incoming.at,
                body=body,
                outcome=outcome,
            )
        )
        return plan

    if provider is None or len(parts) < 3 or parts[1] != "v1":
        return logged(_no_route(incoming), "no_route")
    route = (incoming.method, "/".join(parts[2:]))
    known = {("GET", "models"), ("POST", "chat/completions")}
    if provider is not None and provider.dialect.name == "openrouter":
        known.add(("GET", "key"))  # OpenRouter tells about the key itself: usage, limit, tier
    if route not in known:
        return logged(_no_route(incoming), "no_route")

    plan, outcome = _answer(provider, route[1], key, model, body, body_ok)
    if provider.latency > 0:
        plan = replace(plan, delay=plan.delay + provider.latency)
    return logged(plan, outcome)


def _answer(
    provider: FakeProvider,
    route: str,
    key: str | None,
    model: str | None,
    body: dict[str, Any] | None,
    body_ok: bool,
) -> tuple[WirePlan, str]:
    """The plan (without the provider's latency) and the outcome to log."""
    info = RequestInfo(provider.name, provider.dialect, key, model, body)
    fake_key = provider.find_key(key)
    if fake_key is None:
        reply = Reply.unauthorized()
        return render(reply, info, Limits()), reply.outcome

    if route == "key":
        info = {"data": {"label": f"{(key or '')[:8]}...", "usage": 0.25, "limit": None,
                         "limit_remaining": None, "is_free_tier": True,
                         "rate_limit": {"requests": 20, "interval": "10s"}}}  # fmt: skip
        return plain(200, info, {}), "key"

    if route == "models":
        models = provider.models or ()
        listing = {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": provider.name} for m in models],
        }
        headers = provider.dialect.limit_headers(fake_key.limits(), time.time())
        return plain(200, listing, headers), "models"

    for problem, reply in (
        (not body_ok, Reply.bad_request("We could not parse the JSON body of your request.")),
        (model is None, Reply.bad_request("you must provide a model parameter")),
    ):
        if problem:
            return render(reply, info, fake_key.limits()), "bad_request"
    if model is not None and not provider.accepts(model):
        reply = Reply.not_found()
        return render(reply, info, fake_key.limits()), reply.outcome

    admission = fake_key.admit(lambda r: request_cost(body, reply_content(r, info)))
    if admission.breach is not None:
        plan = rate_limited_plan(info, admission.breach, admission.limits, time.time())
        return plan, "rate_limited"
    assert admission.reply is not None
    return render(admission.reply, info, admission.limits), admission.reply.outcome
