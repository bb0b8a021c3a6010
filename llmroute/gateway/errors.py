"""llmroute's errors as HTTP answers in OpenAI's error shape, with honest statuses.

| what happened | status |
| --- | --- |
| the request body is not a chat request | 400 |
| no task or provider by that `model` | 404 `model_not_found` |
| the provider rejected the request | the provider's 400 / 413 / 422 and its message |
| no candidate serves the model asked for | 404 `model_not_found` |
| every candidate cooling down or out of budget past the deadline | 429, `retry-after` |
| candidates were called and failed | 502 |
| nothing could be called (no usable key, everything disabled) | 503 |
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmroute.attempt import SKIPPED, Attempt
from llmroute.errors import (
    ConfigError,
    LLMRouteError,
    NoUsableCandidateError,
    RequestFailedError,
    RequestRejectedError,
    UnknownRouteError,
)
from llmroute.failures import FailureKind

K = FailureKind
# Failures that say the route has no capacity now, not that a provider is broken.
CAPACITY = frozenset({K.RATE_LIMITED, K.QUOTA_EXHAUSTED})


@dataclass(frozen=True, kw_only=True)
class HTTPError:
    status: int
    message: str
    type: str
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    exit_code: int = 1  # what `llmroute ask` exits with for it
    attempts: tuple[Attempt, ...] = ()
    retry_at: float | None = None

    def body(self, *, report: bool = False) -> dict[str, Any]:
        """OpenAI's `{"error": {...}}`; with `report`, llmroute's own account beside it."""
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if report:
            error["llmroute"] = {
                "exit_code": self.exit_code,
                "retry_at": self.retry_at,
                "attempts": [a.to_dict() for a in self.attempts],
            }
        return {"error": error}


def bad_request(message: str, *, status: int = 400, code: str | None = None) -> HTTPError:
    return HTTPError(
        status=status, message=message, type="invalid_request_error", code=code, exit_code=2
    )


def http_error(exc: LLMRouteError, now: float) -> HTTPError:
    if isinstance(exc, UnknownRouteError):
        return bad_request(str(exc), status=404, code="model_not_found")
    if isinstance(exc, NoUsableCandidateError):
        return HTTPError(status=503, message=str(exc), type="service_unavailable", exit_code=2)
    if isinstance(exc, ConfigError):
        return bad_request(str(exc))
    if isinstance(exc, RequestRejectedError):
        return _rejected(exc)
    if isinstance(exc, RequestFailedError):
        return _failed(exc, now)
    return bad_request(str(exc))  # UsageError: the call itself was wrong


def _rejected(exc: RequestRejectedError) -> HTTPError:
    last = next((a for a in reversed(exc.attempts) if a.called), None)
    status = last.status if last and last.status in (400, 413, 422) else 400
    code = "context_length_exceeded" if last and last.outcome == K.CONTEXT_TOO_LONG else None
    return HTTPError(
        status=status, message=str(exc), type="invalid_request_error", code=code, exit_code=3,
        attempts=exc.attempts,
    )  # fmt: skip


def _failed(exc: RequestFailedError, now: float) -> HTTPError:
    called = [a for a in exc.attempts if a.outcome != SKIPPED]
    if called and all(a.outcome == K.TOO_LARGE for a in called):
        status, kind, code = 413, "invalid_request_error", "request_too_large"
    elif exc.attempts and all(a.outcome == K.NOT_FOUND or a.status == 404 for a in exc.attempts):
        # no candidate serves the model asked for (now, or since it was disabled for that)
        status, kind, code = 404, "invalid_request_error", "model_not_found"
    elif exc.retry_at is not None and all(a.outcome in CAPACITY for a in called):
        status, kind, code = 429, "rate_limit_exceeded", "rate_limit_exceeded"
    elif called:
        status, kind, code = 502, "upstream_error", "upstream_failed"
    else:
        status, kind, code = 503, "service_unavailable", "no_candidate_available"
    headers = {}
    if status == 429 and exc.retry_at is not None:
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_at - now)))
    return HTTPError(
        status=status, message=str(exc), type=kind, code=code, headers=headers,
        attempts=exc.attempts, retry_at=exc.retry_at,
    )  # fmt: skip
