"""Budget decisions over a usage log and learned windows, with no I/O."""

from __future__ import annotations

import pytest

from llmroute.budget import (
    Cost,
    Learned,
    LearnedWindow,
    ListLog,
    UsageEntry,
    free_at,
    padded,
    remaining,
)
from llmroute.config import Limits
from llmroute.rate import Rate
from llmroute.signals import learned_windows

NOW = 1_800_000_000.0
FIVE_PER_2S = Limits(requests=(Rate(5, 2.0),))


def log(*ages: float, tokens: int = 0) -> ListLog:
    return ListLog(UsageEntry(str(i), NOW - age, 1, tokens) for i, age in enumerate(ages))


def test_fits_under_the_rate() -> None:
    assert free_at(log(0.1, 0.2, 0.3, 0.4), Learned(), FIVE_PER_2S, Cost(), NOW) is None


def test_full_window_frees_when_the_oldest_leaves() -> None:
    entries = log(1.5, 1.0, 0.5, 0.2, 0.1)
    assert free_at(entries, Learned(), FIVE_PER_2S, Cost(), NOW) == pytest.approx(
        NOW - 1.5 + padded(2.0), abs=1e-6
    )


def test_every_rate_must_hold() -> None:
    limits = Limits(requests=(Rate(5, 2.0), Rate(6, 60.0)))
    entries = log(50, 40, 30, 20, 10, 0.1)  # 5 within 60 s... and one more: 6/60s is full
    assert free_at(entries, Learned(), limits, Cost(), NOW) == pytest.approx(
        NOW - 50 + padded(60.0), abs=1e-6
    )


def test_tokens_are_weighed() -> None:
    limits = Limits(tokens=(Rate(1000, 60.0),))
    entries = log(30, 10, tokens=400)
    assert free_at(entries, Learned(), limits, Cost(tokens=100), NOW) is None
    assert free_at(entries, Learned(), limits, Cost(tokens=300), NOW) == pytest.approx(
        NOW - 30 + padded(60.0), abs=1e-6
    )
    # A request larger than the whole window never fits: the provider will say 413.
    assert free_at(ListLog([]), Learned(), limits, Cost(tokens=5000), NOW) is None


def test_learned_window_blocks_until_its_reset() -> None:
    learned = Learned(
        {"requests": LearnedWindow(dimension="requests", remaining=0, reset_at=NOW + 12, limit=30)}
    )
    assert free_at(ListLog([]), learned, Limits(), Cost(), NOW) == NOW + 12
    assert free_at(ListLog([]), learned, Limits(), Cost(), NOW + 13) is None  # reset passed


def test_requests_in_flight_count_against_what_the_headers_said() -> None:
    learned = Learned(
        {"tokens": LearnedWindow(dimension="tokens", remaining=500, reset_at=NOW + 30, limit=6000)}
    )
    held = learned.holding(UsageEntry("a", NOW, 1, 300), NOW)
    assert free_at(ListLog([]), held, Limits(), Cost(tokens=300), NOW) == NOW + 30
    # The answer to "a" comes back: its headers include it, it is no longer in flight.
    heard = held.heard(
        {
            "tokens": LearnedWindow(
                dimension="tokens", remaining=5900, reset_at=NOW + 30, limit=6000
            )
        },
        "a",
        NOW,
    )
    assert heard.pending == {}
    assert free_at(ListLog([]), heard, Limits(), Cost(tokens=300), NOW) is None


def test_windows_that_reset_and_stale_holds_are_dropped() -> None:
    spent = LearnedWindow(dimension="requests", remaining=0, reset_at=NOW + 1)
    learned = Learned({"requests": spent}, {"x": UsageEntry("x", NOW - 10_000, 1, 0)})
    later = learned.heard({}, None, NOW + 2)
    assert later == Learned(unlimited=True)


def test_remaining_for_the_state_table() -> None:
    assert remaining(log(0.5, 1.0, 5.0).entries, Rate(5, 2.0), "requests", NOW) == 3


def test_learned_windows_from_each_dialect() -> None:
    openai = learned_windows(
        {"x-ratelimit-limit-requests": "30", "x-ratelimit-remaining-requests": "4",
         "x-ratelimit-reset-requests": "2m59.5s", "x-ratelimit-remaining-tokens": "5000",
         "x-ratelimit-reset-tokens": "460ms"}, NOW)  # fmt: skip
    assert openai["requests"] == LearnedWindow(
        dimension="requests", remaining=4, reset_at=NOW + 179.5, limit=30, lasted_s=179.5,
        header="x-ratelimit-limit-requests",
    )  # fmt: skip
    assert openai["tokens"].reset_at == pytest.approx(NOW + 0.46, abs=1e-6)
    cerebras = learned_windows(
        {"x-ratelimit-remaining-requests-day": "14000", "x-ratelimit-reset-requests-day": "3600.5",
         "x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "11.2"},
        NOW)  # fmt: skip
    assert set(cerebras) == {"requests-day", "tokens-minute"}
    openrouter = learned_windows(
        {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0",
         "x-ratelimit-reset": str(int((NOW + 40) * 1000))}, NOW)  # fmt: skip
    assert openrouter["requests-account"].reset_at == pytest.approx(NOW + 40, abs=1e-6)
    assert learned_windows({}, NOW) == {}
