"""docs/design.md's failure table, one test per row, on real openai SDK exceptions."""

from __future__ import annotations

import inspect
import time

import openai
import pytest

from llmroute.classify import NOT_UPSTREAM, UPSTREAM_TYPES, classify
from llmroute.failures import Failure, FailureKind, UpstreamProtocolError
from llmroute.keys import Redactor
from tests.sdk import connection_error, status_error, timeout_error

K = FailureKind
NOW = time.time()
SECRET = "gsk_live_0123456789abcdefghij"


def kind_of(exc: BaseException) -> Failure:
    failure = classify(exc, now=NOW, redact=Redactor([SECRET]))
    assert failure is not None
    return failure


def error(code: str | None = None, type_: str | None = None, message: str = "x") -> dict:
    return {"error": {"message": message, "type": type_, "code": code}}


def test_429_per_minute_window_is_rate_limited_with_reset() -> None:
    exc = status_error(429, error("rate_limit_exceeded", "requests"), {"retry-after": "7"})
    failure = kind_of(exc)
    assert (failure.kind, failure.status, failure.retry_after) == (K.RATE_LIMITED, 429, 7)


def test_429_insufficient_quota_is_quota_exhausted() -> None:
    exc = status_error(429, error("insufficient_quota", "insufficient_quota"))
    assert kind_of(exc).kind is K.QUOTA_EXHAUSTED


def test_429_openrouter_daily_cap_is_quota_exhausted() -> None:
    reset_ms = str(int((NOW + 8 * 3600) * 1000))
    body = {"error": {"message": "Rate limit exceeded: free-models-per-day.", "code": 429,
                      "metadata": {"headers": {"X-RateLimit-Reset": reset_ms}}}}  # fmt: skip
    failure = kind_of(status_error(429, body))
    assert failure.kind is K.QUOTA_EXHAUSTED
    assert failure.retry_after == pytest.approx(8 * 3600, abs=2)


def test_429_openrouter_per_minute_is_rate_limited() -> None:
    reset_ms = str(int((NOW + 20) * 1000))
    body = {"error": {"message": "Rate limit exceeded: free-models-per-min.", "code": 429,
                      "metadata": {"headers": {"X-RateLimit-Reset": reset_ms}}}}  # fmt: skip
    assert kind_of(status_error(429, body)).kind is K.RATE_LIMITED


def test_429_gemini_per_day_quota_is_quota_exhausted() -> None:
    body = [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "19s"}]}}]  # fmt: skip
    failure = kind_of(status_error(429, body))
    assert (failure.kind, failure.retry_after) == (K.QUOTA_EXHAUSTED, 19)


def test_429_cerebras_daily_requests_spent_is_quota_exhausted() -> None:
    headers = {
        "x-ratelimit-remaining-requests-day": "0",
        "x-ratelimit-reset-requests-day": "3600.5",
    }
    body = {"message": "Requests per day limit exceeded", "code": "request_quota_exceeded"}
    assert kind_of(status_error(429, body, headers)).kind is K.QUOTA_EXHAUSTED


def test_402_payment_required_is_quota_exhausted() -> None:
    assert (
        kind_of(status_error(402, error(message="Insufficient credits"))).kind is K.QUOTA_EXHAUSTED
    )


def test_413_is_too_large() -> None:
    assert kind_of(status_error(413, error("rate_limit_exceeded", "tokens"))).kind is K.TOO_LARGE


def test_408_and_sdk_timeout_are_timeouts() -> None:
    assert kind_of(status_error(408, error())).kind is K.TIMEOUT
    assert kind_of(timeout_error()).kind is K.TIMEOUT
    assert kind_of(TimeoutError()).kind is K.TIMEOUT


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 498, 529])
def test_server_errors_are_unavailable(status: int) -> None:
    failure = kind_of(status_error(status, error(type_="server_error")))
    assert (failure.kind, failure.provider_down) == (K.UNAVAILABLE, False)


def test_refused_connection_trips_the_provider() -> None:
    failure = kind_of(connection_error(ConnectionRefusedError(111, "Connection refused")))
    assert (failure.kind, failure.provider_down) == (K.UNAVAILABLE, True)


def test_reset_connection_is_unavailable_for_the_key_only() -> None:
    failure = kind_of(connection_error(ConnectionResetError(104, "reset")))
    assert (failure.kind, failure.provider_down) == (K.UNAVAILABLE, False)


def test_malformed_or_error_in_200_is_unavailable() -> None:
    assert kind_of(UpstreamProtocolError("error object in a 200 answer")).kind is K.UNAVAILABLE


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_are_auth(status: int) -> None:
    assert kind_of(status_error(status, error("invalid_api_key"))).kind is K.AUTH


def test_gemini_400_api_key_invalid_is_auth() -> None:
    body = [{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
             "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                          "reason": "API_KEY_INVALID"}]}}]  # fmt: skip
    assert kind_of(status_error(400, body)).kind is K.AUTH


@pytest.mark.parametrize("status", [404, 410])
def test_404_410_are_not_found(status: int) -> None:
    assert kind_of(status_error(status, error("model_not_found"))).kind is K.NOT_FOUND


def test_context_length_exceeded_openai_and_llamacpp() -> None:
    openai_style = error("context_length_exceeded", "invalid_request_error")
    llamacpp = {"error": {"code": 400, "message": "exceeds", "type": "exceed_context_size_error"}}
    assert kind_of(status_error(400, openai_style)).kind is K.CONTEXT_TOO_LONG
    assert kind_of(status_error(400, llamacpp)).kind is K.CONTEXT_TOO_LONG


@pytest.mark.parametrize("status", [400, 422])
def test_other_400_422_are_bad_requests(status: int) -> None:
    failure = kind_of(status_error(status, error(None, "invalid_request_error", "bad temperature")))
    assert (failure.kind, failure.message) == (K.BAD_REQUEST, "bad temperature")


def test_message_text_never_decides_the_kind() -> None:
    # The words of a daily cap in a plain per-minute 429 change nothing.
    exc = status_error(429, error("rate_limit_exceeded", message="requests per day (RPD)"))
    assert kind_of(exc).kind is K.RATE_LIMITED


def test_secrets_in_provider_messages_are_masked() -> None:
    exc = status_error(
        401, error("invalid_api_key", message=f"Incorrect API key provided: {SECRET}")
    )
    failure = kind_of(exc)
    assert SECRET not in failure.message and "gsk_…ghij" in failure.message


def test_foreign_exceptions_are_not_upstream_failures() -> None:
    assert classify(ValueError("bug"), now=NOW, redact=str) is None
    assert classify(KeyError("bug"), now=NOW, redact=str) is None


def test_every_sdk_exception_is_mapped_or_declared_not_upstream() -> None:
    """Fails when an SDK upgrade brings an exception class classify() has never heard of."""
    sdk_errors = [
        obj for obj in list(vars(openai).values())
        if inspect.isclass(obj) and issubclass(obj, openai.OpenAIError)
        and obj not in (openai.OpenAIError, openai.APIError) and not obj.__name__.startswith("_")
    ]  # fmt: skip
    unmapped = [e.__name__ for e in sdk_errors if not issubclass(e, UPSTREAM_TYPES + NOT_UPSTREAM)]
    assert sdk_errors and unmapped == []
