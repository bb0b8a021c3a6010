"""Pacing by limits nobody wrote down: rates learned from each dialect's headers, and budgets
shared across a key's models (`limits_per`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping

import pytest

from llmroute.attempt import Candidate
from llmroute.budget import Cost, Learned, ListLog, UsageEntry, free_at, padded
from llmroute.config import Limits, parse_config
from llmroute.errors import ConfigError
from llmroute.keys import ApiKey
from llmroute.learned import standard_window
from llmroute.pacing import budget_scope
from llmroute.rate import Rate
from llmroute.router import Router
from llmroute.signals import learned_windows
from llmroute.state import MemoryStore
from tests.fakeprovider import FakeServer, Reply
from tests.fakes import FakeClock, ScriptedUpstream
from tests.sdk import status_error

NOW = 1_800_000_000.0


def hear(learned: Learned, headers: Mapping[str, str], at: float, elapsed: float) -> Learned:
    """What the pacer does with one answer's headers, sent at `at`, heard `elapsed` later."""
    return learned.heard(learned_windows(headers, at, elapsed), None, at + elapsed)


def rates(learned: Learned) -> dict[str, str]:
    return {r.header: f"{r.count}/{r.window_s:g}s" for r in learned.rates.values()}


# -- learning per dialect -----------------------------------------------------------------


def test_a_sliding_window_is_learned_from_one_fresh_reset() -> None:
    # The oldest request (ours) leaves 1.8 s after the answer, which took 0.2 s: a 2 s window.
    headers = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "4",
               "x-ratelimit-reset-requests": "1.8s"}  # fmt: skip
    learned = hear(Learned(), headers, NOW, 0.2)
    assert rates(learned) == {"x-ratelimit-limit-requests": "5/2s"}


def test_a_refilling_bucket_is_learned_once_it_has_drained() -> None:
    # OpenAI-style: reset = time until full again. Fresh, it understates the window …
    fresh = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "4",
             "x-ratelimit-reset-requests": "400ms"}  # fmt: skip
    learned = hear(Learned(), fresh, NOW, 0.05)
    assert rates(learned) == {"x-ratelimit-limit-requests": "5/1s"}
    # … drained, it is the whole window, and a measured window only ever grows.
    drained = {**fresh, "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    learned = hear(learned, drained, NOW + 0.1, 0.05)
    learned = hear(learned, fresh, NOW + 0.2, 0.05)
    assert rates(learned) == {"x-ratelimit-limit-requests": "5/2s"}


def test_a_429s_retry_after_measures_the_window_it_spent() -> None:
    headers = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "0.1s", "retry-after": "9"}  # fmt: skip
    assert rates(hear(Learned(), headers, NOW, 0.0)) == {"x-ratelimit-limit-requests": "5/10s"}
    spare = {**headers, "x-ratelimit-remaining-requests": "3"}  # not the window it spent
    assert rates(hear(Learned(), spare, NOW, 0.0)) == {"x-ratelimit-limit-requests": "5/1s"}


def refilling_bucket() -> Learned:
    """5 per 2 s refilled continuously: fresh, its reset is one unit's refill; drained, 2 s."""
    fresh = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "4",
             "x-ratelimit-reset-requests": "400ms"}  # fmt: skip
    learned = hear(Learned(), fresh, NOW, 0.05)
    drained = {**fresh, "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    return hear(learned, drained, NOW + 0.1, 0.05)


def test_a_bucket_that_refills_is_told_from_a_sliding_window_by_its_fresh_reset() -> None:
    (bucket,) = refilling_bucket().rates.values()
    assert bucket.refills and "refilled continuously" in bucket.describe()
    sliding = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "4",
               "x-ratelimit-reset-requests": "1.8s"}  # fmt: skip
    (window,) = hear(Learned(), sliding, NOW, 0.2).rates.values()
    assert not window.refills
    # A fixed window's end (OpenRouter's epoch-ms reset) can be anywhere: it never tells.
    fixed = {"x-ratelimit-limit": "5", "x-ratelimit-remaining": "4",
             "x-ratelimit-reset": str(int((NOW + 0.3) * 1000))}  # fmt: skip
    learned = hear(Learned(), fixed, NOW, 0.05)
    spent = {**fixed, "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int((NOW + 50) * 1e3))}
    learned = hear(learned, spent, NOW, 0.05)
    assert not any(r.refills for r in learned.rates.values())


def test_a_refilling_bucket_paces_as_a_bucket_until_a_429_refutes_it() -> None:
    learned = refilling_bucket()
    burst = ListLog(UsageEntry(str(i), NOW, 1, 0) for i in range(5))
    # Half a second after a burst of five, one unit has refilled: a sliding window would wait
    # until the burst leaves the window, 2 s later.
    assert free_at(burst, Learned(rates=learned.rates), Limits(), Cost(), NOW + 0.5) is None
    assert free_at(burst, Learned(rates=learned.rates), Limits(), Cost(), NOW + 0.3) == (
        pytest.approx(NOW + padded(2.0) / 5, abs=1e-6)
    )
    refused = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "2s", "retry-after": "1"}  # fmt: skip
    learned = hear(learned, refused, NOW + 1, 0.05)
    (rate,) = learned.rates.values()
    assert not rate.refills and rate.refuted
    assert free_at(burst, Learned(rates=learned.rates), Limits(), Cost(), NOW + 0.5) is not None


def test_groq_reports_the_day_in_its_requests_headers() -> None:
    # Groq: -requests is the day (refilled continuously), -tokens the minute.
    headers = {
        "x-ratelimit-limit-requests": "14400", "x-ratelimit-remaining-requests": "14370",
        "x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "59.5s",
    }  # fmt: skip
    learned = hear(Learned(), headers, NOW, 0.3)
    assert rates(learned) == {
        "x-ratelimit-limit-requests": "14400/300s",  # a floor, too loose to bind: that is safe
        "x-ratelimit-limit-tokens": "6000/60s",
    }


def test_a_window_the_header_names_is_taken_at_its_word() -> None:
    headers = {"x-ratelimit-limit-requests-minute": "30",
               "x-ratelimit-remaining-requests-minute": "29",
               "x-ratelimit-reset-requests-minute": "1.5", "x-ratelimit-limit-requests-day": "900",
               "x-ratelimit-remaining-requests-day": "899",
               "x-ratelimit-reset-requests-day": "33011.4"}  # fmt: skip
    learned = hear(Learned(), headers, NOW, 0.2)
    assert rates(learned) == {
        "x-ratelimit-limit-requests-minute": "30/60s",
        "x-ratelimit-limit-requests-day": "900/86400s",
    }
    named = next(iter(learned.rates.values()))
    assert "measured" not in named.describe()


def test_openrouter_per_minute_and_per_day_under_the_same_headers() -> None:
    def headers(limit: int, left: int, reset_s: float) -> dict[str, str]:
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(left),
                "x-ratelimit-reset": str(int((NOW + reset_s) * 1000))}  # fmt: skip

    learned = hear(Learned(), headers(20, 19, 41.0), NOW, 0.4)
    learned = hear(learned, headers(50, 0, 9 * 3600.0), NOW + 1, 0.4)  # free-models-per-day
    assert sorted(f"{r.count}/{r.window_s:g}s" for r in learned.rates.values()) == [
        "20/60s", "50/43200s",
    ]  # fmt: skip


def test_standard_windows_absorb_a_short_measurement_but_not_a_long_one() -> None:
    assert standard_window(1.95) == 2.0
    assert standard_window(2.4) == 2.0  # the answer's time, stretched by a busy event loop
    assert standard_window(2.6) == 5.0
    assert standard_window(58.0) == 60.0
    assert standard_window(200_000.0) == 200_000.0


# -- pacing by what was learned ---------------------------------------------------------------


FIVE_PER_2S_CONFIGURED = Limits(requests=(Rate(5, 2.0),))
FIVE_PER_2S = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "300ms"}  # fmt: skip


def test_a_passed_reset_does_not_unleash_a_burst() -> None:
    # Five requests went out in the last second; the provider's snapshot said 0 left, resetting
    # 0.3 s later (one slot). Once that reset passes, the learned 5/2s applies, not "unlimited".
    learned = hear(Learned(), {**FIVE_PER_2S, "x-ratelimit-reset-requests": "1.8s"}, NOW, 0.2)
    learned = hear(learned, FIVE_PER_2S, NOW + 0.5, 0.2)
    log = ListLog(UsageEntry(str(i), NOW + 0.1 * i, 1, 0) for i in range(5))
    after_reset = NOW + 1.2
    assert not learned.windows["requests"].active(after_reset)
    assert free_at(log, learned, Limits(), Cost(), after_reset) == pytest.approx(
        NOW + padded(2.0), abs=1e-6
    )
    snapshot_only = Learned(learned.windows)  # what llmroute did before it learned rates
    assert free_at(log, snapshot_only, Limits(), Cost(), after_reset) is None


def test_eight_at_once_against_a_learned_five_per_window() -> None:
    learned = hear(Learned(), {**FIVE_PER_2S, "x-ratelimit-remaining-requests": "4",
                               "x-ratelimit-reset-requests": "1.9s"}, NOW, 0.1)  # fmt: skip
    entries = [UsageEntry("first", NOW, 1, 0)]
    granted = 0
    for i in range(8):
        if free_at(ListLog(entries), learned, Limits(), Cost(), NOW + 0.2) is None:
            entries.append(UsageEntry(str(i), NOW + 0.2, 1, 0))
            granted += 1
    assert granted == 4  # with the one that taught the rate: five in the window


def test_first_contact_sends_one_probe_and_the_rest_wait_for_its_answer() -> None:
    probe = UsageEntry("probe", NOW, 1, 0)
    learned = Learned().holding(probe, NOW)
    assert free_at(ListLog([probe]), learned, Limits(), Cost(), NOW) == NOW + 0.05
    # The longer the probe takes, the longer the others wait (a quarter of its age) to look again.
    assert free_at(ListLog([probe]), learned, Limits(), Cost(), NOW + 0.4) == pytest.approx(
        NOW + 0.5, abs=1e-6
    )
    # Its answer came back without a single limit header (a local server): no limits, go.
    answered = learned.heard({}, "probe", NOW + 0.5)
    assert answered.unlimited
    assert free_at(ListLog([probe]), answered.holding(UsageEntry("a", NOW, 1, 0), NOW + 0.5),
                   Limits(), Cost(), NOW + 0.5) is None  # fmt: skip
    # Configured limits need no probe; nor does a probe whose process is long gone.
    assert free_at(ListLog([probe]), learned, FIVE_PER_2S_CONFIGURED, Cost(), NOW) is None
    assert free_at(ListLog([]), learned, Limits(), Cost(), NOW + 31) is None


def test_a_budget_whose_rates_were_forgotten_probes_again() -> None:
    learned = hear(Learned(), {**FIVE_PER_2S, "x-ratelimit-reset-requests": "1.8s"}, NOW, 0.2)
    later = NOW + 60  # idle for far more than two of its windows: the rate is gone
    assert not learned.paced_rates("requests", later) and not learned.described(later)
    probe = UsageEntry("probe", later, 1, 0)
    held = learned.holding(probe, later)
    assert free_at(ListLog([probe]), held, Limits(), Cost(), later) == later + 0.05


def test_a_probe_that_heard_nothing_leaves_the_budget_undescribed() -> None:
    probe = UsageEntry("probe", NOW, 1, 0)
    timed_out = Learned().holding(probe, NOW).heard({}, "probe", NOW + 5, answered=False)
    assert not timed_out.described(NOW + 5)
    second = UsageEntry("second", NOW + 5, 1, 0)
    held = timed_out.holding(second, NOW + 5)
    assert free_at(ListLog([probe, second]), held, Limits(), Cost(), NOW + 5) is not None


# -- budgets shared across models -------------------------------------------------------------


def provider_config(limits_per: str | None = None, **legacy: str) -> dict[str, object]:
    table: dict[str, object] = {"base_url": "http://or.test/v1", "keys": ["K1", "K2"], **legacy}
    if limits_per is not None:
        table["limits_per"] = limits_per
    return table


def parsed(table: dict[str, object]) -> object:
    config = parse_config({"settings": {"default_task": "t"}, "providers": {"or": table},
                           "tasks": {"t": {"route": ["or:a"]}}})  # fmt: skip
    return config.providers["or"]


@pytest.mark.parametrize(
    ("limits_per", "budgets", "owner", "model"),
    [("key-model", 4, "K1#1:", "a"), ("key", 2, "K1#1:", "*"),
     ("account-model", 2, "*", "a"), ("account", 1, "*", "*")],
)  # fmt: skip
def test_what_one_budget_covers(limits_per: str, budgets: int, owner: str, model: str) -> None:
    provider = parsed(provider_config(limits_per))
    keys = [ApiKey("K1#1", "K1", "or_key_one_0001"), ApiKey("K2#2", "K2", "or_key_two_0002")]
    scopes = {
        budget_scope(Candidate("or", key, m), provider)  # type: ignore[arg-type]
        for key in keys for m in ("a", "b")
    }  # fmt: skip
    assert len(scopes) == budgets
    first = budget_scope(Candidate("or", keys[0], "a"), provider)  # type: ignore[arg-type]
    assert first.startswith(f"budget:or:{owner}") and first.endswith(f":{model}")


def test_limit_scope_still_reads_and_cannot_be_mixed_with_limits_per() -> None:
    assert parsed(provider_config(limit_scope="account")).limits_per == "account-model"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="keep limits_per alone"):
        parsed(provider_config("key", limit_scope="key"))
    with pytest.raises(ConfigError, match='one of "key-model", "key"'):
        parsed(provider_config("per-model"))


SHARED = {
    "settings": {"default_task": "free", "deadline": 60, "state": "memory"},
    "providers": {
        "or": {"base_url": "http://or.test/v1", "keys": ["K1", "K2"], "limits_per": "account",
               "limits": {"requests": "2/10s"}},
        "fb": {"base_url": "http://fb.test/v1", "keys": ["F1"]},
    },
    "tasks": {"free": {"route": ["or:m1", "or:m2", "or:m3"]},
              "spill": {"route": ["or:m1", "or:m2", "or:m3", "fb:x"]}},
}  # fmt: skip
SHARED_ENV = {"K1": "or_key_one_000000000001", "K2": "or_key_two_000000000002",
              "F1": "fb_key_000000000000001"}  # fmt: skip


def shared_router(upstream: ScriptedUpstream, clock: FakeClock) -> Router:
    return Router(parse_config(SHARED), env=SHARED_ENV, upstream=upstream, clock=clock,
                  store=MemoryStore())  # fmt: skip


async def test_a_key_wide_budget_is_shared_by_the_models(upstream, clock) -> None:
    r = shared_router(upstream, clock)
    for _ in range(3):
        await r.complete("free", "hi")
    # Two requests fit the shared 2/10s whatever model they name; the third waits its window.
    assert len(upstream.calls) == 3
    assert clock.slept == [pytest.approx(padded(10.0))]


async def test_an_account_wide_daily_cap_is_foreseen_after_one_429(upstream, clock) -> None:
    daily = status_error(
        429,
        {"error": {"message": "Rate limit exceeded: free-models-per-day.", "code": 429}},
        {"x-ratelimit-limit": "50", "x-ratelimit-remaining": "0",
         "x-ratelimit-reset": str(int((clock.t + 8 * 3600) * 1000))},
    )  # fmt: skip
    upstream.script("or#1", daily)
    r = shared_router(upstream, clock)
    first = await r.complete("spill", "hi")
    assert first.candidate.provider == "fb"
    tried = [a.outcome for a in first.attempts if a.outcome != "skipped"]
    assert tried == ["quota_exhausted", "ok"]
    for _ in range(3):
        assert (await r.complete("spill", "hi")).candidate.provider == "fb"
    # Not one more call to any model or key of the account: the cap covers them all.
    assert upstream.calls == [("or#1", "m1"), *[("fb#1", "x")] * 4]


# -- over real HTTP: the fake provider's limits, none in the config --------------------------


@pytest.mark.parametrize("dialect", ["openai", "openrouter"])
async def test_concurrent_requests_keep_to_a_learned_window(
    fake_server: FakeServer, dialect: str
) -> None:
    provider = fake_server.provider("p", dialect=dialect)
    key = provider.key("sk-learn-000000000000000001")
    key.limit(requests=5, per=1.0)
    key.default = Reply.ok("pong", latency=0.05)
    config = parse_config({
        "settings": {"default_task": "t", "deadline": 30, "state": "memory"},
        "providers": {"p": {"base_url": provider.base_url, "keys": ["P_KEY"]}},
        "tasks": {"t": {"route": ["p:m"]}},
    })  # fmt: skip
    async with Router(config, env={"P_KEY": str(key)}, store=MemoryStore()) as router:
        # First contact: one goes, its answer's headers teach 5 per 1 s, the rest keep to it;
        # the second burst comes after the first window's reset.
        for _ in range(2):
            await asyncio.gather(*(router.complete("t", "hi") for _ in range(8)))
    statuses = Counter(e.status for e in fake_server.log if e.path.endswith("/chat/completions"))
    assert statuses == {200: 16}
