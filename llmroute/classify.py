"""The one place where upstream exceptions become failure kinds.

By exception type, status code and error code — never by message text — following the table in
docs/design.md. Anything not listed here is a bug in llmroute, not an upstream failure, and is left
to propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import openai

from llmroute.failures import Failure, FailureKind, UnsendableRequestError, UpstreamProtocolError
from llmroute.signals import daily_cap_hit, gemini_reasons, retry_after

K = FailureKind
# A 429 whose reset is this far away is a daily (or longer) cap, not a per-minute window:
# OpenRouter's `free-models-per-day` says so only through its reset time.
DAILY_CAP_HORIZON_S = 3600.0
QUOTA_CODES = {"insufficient_quota"}
CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error"}
AUTH_REASONS = {"API_KEY_INVALID"}
_MESSAGE_LIMIT = 300

# The SDK's exception families that an upstream chat call raises; each is mapped below.
UPSTREAM_TYPES: tuple[type[Exception], ...] = (
    openai.APIStatusError,
    openai.APIConnectionError,  # APITimeoutError is one
    openai.APIResponseValidationError,
)
# Everything an upstream call may raise that classify() maps: the SDK's families, our own
# protocol errors (a 200 that is not an answer, a broken stream), and a timeout of ours.
UPSTREAM_FAILURES: tuple[type[Exception], ...] = (
    *UPSTREAM_TYPES, UpstreamProtocolError, UnsendableRequestError, TimeoutError,
)  # fmt: skip

# The SDK's exceptions that never come from a chat call's HTTP exchange (parsing helpers,
# webhooks, websockets, auth providers); by name, as SDK versions differ in which they have.
NOT_UPSTREAM: tuple[type[BaseException], ...] = tuple(
    getattr(openai, name)
    for name in (
        "LengthFinishReasonError",
        "ContentFilterFinishReasonError",
        "InvalidWebhookSignatureError",
        "SubjectTokenProviderError",
        "WebSocketConnectionClosedError",
        "WebSocketQueueFullError",
    )
    if hasattr(openai, name)
)

Redact = Callable[[str], str]


def classify(exc: BaseException, *, now: float, redact: Redact) -> Failure | None:
    """The failure an upstream exception stands for, or None when it is not an upstream failure."""
    if isinstance(exc, NOT_UPSTREAM):
        return None
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return Failure(K.TIMEOUT, "no answer within the attempt timeout")
    if isinstance(exc, openai.APIConnectionError):
        refused = _caused_by(exc, ConnectionRefusedError)
        message = "connection refused" if refused else f"connection failed ({_root_name(exc)})"
        return Failure(K.UNAVAILABLE, message, provider_down=refused)
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc, now, redact)
    if isinstance(exc, UnsendableRequestError) and exc.request_problem:
        return Failure(K.BAD_REQUEST, redact(str(exc)))
    if isinstance(exc, UnsendableRequestError):  # a bad key: that key; a bad URL: the provider
        kind = K.AUTH if exc.key_problem else K.UNAVAILABLE
        return Failure(kind, redact(str(exc)), provider_down=not exc.key_problem)
    if isinstance(exc, openai.APIResponseValidationError | UpstreamProtocolError):
        return Failure(K.UNAVAILABLE, redact(f"malformed response: {exc}")[:_MESSAGE_LIMIT])
    return None


def _from_status(exc: openai.APIStatusError, now: float, redact: Redact) -> Failure:
    status, body, headers = exc.status_code, exc.body, exc.response.headers
    code = _error_code(body)
    kind = _status_kind(status, code, body, headers, now)
    daily = kind is K.QUOTA_EXHAUSTED
    return Failure(
        kind=kind,
        message=redact(_provider_message(exc))[:_MESSAGE_LIMIT],
        status=status,
        code=code,
        retry_after=retry_after(headers, body, now, exhausted_only=daily),
        headers=dict(headers),
    )


def _status_kind(
    status: int, code: str | None, body: object, headers: Mapping[str, str], now: float
) -> FailureKind:
    if status == 429:
        return _rate_limit_kind(code, body, headers, now)
    if status == 402:
        return K.QUOTA_EXHAUSTED  # OpenRouter: credits spent
    if status == 413:
        return K.TOO_LARGE
    if status == 408:
        return K.TIMEOUT
    if status in (401, 403):
        return K.AUTH
    if status in (404, 410):
        return K.NOT_FOUND
    if status == 400:
        if gemini_reasons(body) & AUTH_REASONS:
            return K.AUTH
        if code in CONTEXT_CODES or _error_type(body) in CONTEXT_CODES:
            return K.CONTEXT_TOO_LONG
        return K.BAD_REQUEST
    if status == 422:
        return K.BAD_REQUEST
    # 5xx, 498 (Groq "flex capacity"), 529 (overloaded) and any other status the table
    # does not name: the provider is the problem, another candidate may answer.
    return K.UNAVAILABLE


def _rate_limit_kind(
    code: str | None, body: object, headers: Mapping[str, str], now: float
) -> FailureKind:
    if code in QUOTA_CODES or _error_type(body) in QUOTA_CODES or daily_cap_hit(headers, body):
        return K.QUOTA_EXHAUSTED
    reset = retry_after(headers, body, now)
    if reset is not None and reset > DAILY_CAP_HORIZON_S:
        return K.QUOTA_EXHAUSTED
    return K.RATE_LIMITED


def _error_object(body: object) -> Mapping[str, object]:
    """The provider's error object: the SDK unwraps `{"error": …}`; Gemini wraps it in a list."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0].get("error", body[0])
    return body if isinstance(body, dict) else {}


def _error_code(body: object) -> str | None:
    code = _error_object(body).get("code")
    return None if code is None else str(code)


def _error_type(body: object) -> str | None:
    kind = _error_object(body).get("type")
    return None if kind is None else str(kind)


def _provider_message(exc: openai.APIStatusError) -> str:
    message = _error_object(exc.body).get("message")
    if isinstance(message, str) and message:
        return message
    return f"HTTP {exc.status_code}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _root_name(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return type(exc).__name__
