"""The state store's cost per attempt, by how many entries the usage window already holds.

An attempt makes four store calls: `cooldowns` (is the candidate cooling down), `reserve`,
`finish` and `note_success`. Each scope is first filled with N settled attempts spread over
the last 50 s of a `100000/minute` limit (budget is plentiful throughout), then measured with
and without OpenAI-style rate-limit headers on each answer (which teach narrower rates).
`sqlite+bg` is the SQLite store as `serve` opens it, checkpointing in a thread of its own.

    python -m benchmarks.store [-n 500] [--sizes 100,1000,5000] [--redis redis://127.0.0.1:6379/15]

The Redis database given is flushed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from llmroute.budget import Cost, Finished
from llmroute.config import Limits
from llmroute.rate import Rate
from llmroute.signals import learned_windows
from llmroute.state import MemoryStore, StateStore
from llmroute.state.sqlite import SQLiteStore

LIMITS = Limits(requests=(Rate(100_000, 60.0),))
COST = Cost(requests=1, tokens=300)
SPREAD_S = 50.0
COOL_SCOPES = ["keymodel:fake:a:m", "key:fake:a", "provider:fake"]
HEADERS = {
    "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": "2000000",
    "x-ratelimit-remaining-tokens": "1999000", "x-ratelimit-reset-tokens": "30ms",
}  # fmt: skip
CALLS = ("cooldowns", "reserve", "finish", "note_success")


def attempt(
    store: StateStore, scope: str, now: float, headers: Mapping[str, str]
) -> dict[str, float]:
    """One attempt's four calls; the seconds each took."""
    t0 = time.perf_counter()
    store.cooldowns(COOL_SCOPES, now)
    t1 = time.perf_counter()
    held = store.reserve(scope, LIMITS, COST, now)
    t2 = time.perf_counter()
    assert held.entry_id is not None, "the benchmark's budget ran out"
    windows = learned_windows(headers, now, 0.004)
    t3 = time.perf_counter()
    done = Finished(entry_id=held.entry_id, sent_at=now, windows=windows, tokens=COST.tokens)
    store.finish(scope, done, now)
    t4 = time.perf_counter()
    store.note_success(COOL_SCOPES[0])
    t5 = time.perf_counter()
    return {"cooldowns": t1 - t0, "reserve": t2 - t1, "finish": t4 - t3, "note_success": t5 - t4}


def measure(store: StateStore, size: int, n: int, headers: Mapping[str, str]) -> dict[str, float]:
    """Microseconds per call, after filling the scope's window with `size` entries."""
    scope = f"budget:fake:{size}:{bool(headers)}"
    start = time.time() - SPREAD_S
    for i in range(size):
        attempt(store, scope, start + SPREAD_S * i / size, {})
    totals = dict.fromkeys(CALLS, 0.0)
    for _ in range(n):
        for call, seconds in attempt(store, scope, time.time(), headers).items():
            totals[call] += seconds
    return {call: seconds / n * 1e6 for call, seconds in totals.items()}


def stores(redis_url: str | None, tmp: Path) -> dict[str, Callable[[], StateStore]]:
    def sqlite_upkept() -> StateStore:  # as `serve` opens it: checkpoints in a thread
        store = SQLiteStore(tmp / f"state-{time.monotonic_ns()}.sqlite3")
        store.upkeep_in_background()
        return store

    found: dict[str, Callable[[], StateStore]] = {
        "memory": MemoryStore,
        "sqlite": lambda: SQLiteStore(tmp / f"state-{time.monotonic_ns()}.sqlite3"),
        "sqlite+bg": sqlite_upkept,
    }
    if redis_url:
        from llmroute.state.redis import RedisStore

        def redis() -> StateStore:
            store = RedisStore(redis_url)
            store.clear()
            return store

        found["redis"] = redis
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500, help="attempts measured per case")
    parser.add_argument("--sizes", default="100,1000,5000", help="entries in the window")
    parser.add_argument("--redis", help="a Redis URL to measure too (its database is cleared)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"µs per call, {args.n} attempts per case; N = entries already in the window")
    print(f"{'store':<8}{'headers':<9}{'N':>6}" + "".join(f"{c:>14}" for c in CALLS) + "     total")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in stores(args.redis, Path(tmp)).items():
            for headers in ({}, HEADERS):
                for size in sizes:
                    store = make()
                    try:
                        cost = measure(store, size, args.n, headers)
                    finally:
                        store.close()
                    cells = "".join(f"{cost[c]:>14.1f}" for c in CALLS)
                    label = "yes" if headers else "no"
                    print(f"{name:<8}{label:<9}{size:>6}{cells}{sum(cost.values()):>10.1f}")


if __name__ == "__main__":
    main()
