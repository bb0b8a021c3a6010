"""Reset signals of every dialect in docs/design.md, parsed without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from llmroute.signals import daily_cap_hit, parse_go_duration, parse_retry_after, retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2m59.56s", 179.56), ("460ms", 0.46), ("1h2m3s", 3723.0), ("7.66s", 7.66), ("0s", 0.0),
     ("12", 12.0), ("1.5", 1.5)],
)  # fmt: skip
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "2m59x"])
def test_not_a_go_duration(text: str) -> None:
    assert parse_go_duration(text) is None


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("30", NOW) == 30
    date = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(90)
    assert parse_retry_after("whenever", NOW) is None


def test_order_of_precedence() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "30", "x-ratelimit-reset-requests": "9s"}
    assert retry_after(headers, None, NOW) == 1.5
    del headers["retry-after-ms"]
    assert retry_after(headers, None, NOW) == 30
    del headers["retry-after"]
    assert retry_after(headers, None, NOW) == 9


def test_exhausted_window_wins() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "10", "x-ratelimit-reset-requests": "2m",
        "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "460ms",
    }  # fmt: skip
    assert retry_after(headers, None, NOW) == pytest.approx(0.46)


def test_cerebras_float_seconds() -> None:
    headers = {
        "x-ratelimit-remaining-requests-day": "14000", "x-ratelimit-reset-requests-day": "33011.4",
        "x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "11.4",
    }  # fmt: skip
    assert retry_after(headers, None, NOW) == pytest.approx(11.4)
    assert not daily_cap_hit(headers, None)
    headers["x-ratelimit-remaining-requests-day"] = "0"
    assert daily_cap_hit(headers, None)


def test_openrouter_epoch_ms_in_header_and_body() -> None:
    reset_ms = str(int((NOW + 42) * 1000))
    assert retry_after({"X-RateLimit-Reset": reset_ms}, None, NOW) == pytest.approx(42)
    body = {
        "message": "Rate limit exceeded",
        "metadata": {"headers": {"X-RateLimit-Reset": reset_ms}},
    }
    assert retry_after({}, body, NOW) == pytest.approx(42)


def test_gemini_retry_delay_and_daily_quota() -> None:
    body = [{"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "19s"},
    ]}}]  # fmt: skip
    assert retry_after({}, body, NOW) == 19
    assert daily_cap_hit({}, body)


def test_no_signal() -> None:
    assert retry_after({}, {"message": "slow down"}, NOW) is None


def test_reset_in_the_past_is_zero() -> None:
    assert retry_after({"x-ratelimit-reset": str(int((NOW - 5) * 1000))}, None, NOW) == 0
