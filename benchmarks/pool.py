"""Key pool under rate limits: llmroute (pacing on) against itself with pacing off and against the
best schedule the limits allow, on the fake provider, in one run.

    python -m benchmarks.pool [--quick] [--scenario NAME] [--dialect NAME] [--fallbacks 2] [-v]

Setup (the issue's): three groq keys allowing 5 requests per 2 s each, fallback providers with
one key allowing 2 per 2 s (two of them by default: fb1, fb2), 0.2 s per successful upstream
call (a 429 is answered at once). The fake enforces those limits with sliding windows and
answers over-limit requests with a 429 in the provider's dialect. Runs: 120 requests at
concurrency 8 (closed loop) and 120 requests arriving at 10/s (open loop). Every scenario gets a
fresh FakeServer and a fresh store, so no window carries over.

Dialect rows (issue 11, `--dialect NAME`, see benchmarks/pool_setup.py): the same pool shape
with the limits only in the fake, so llmroute must learn them from the headers of each dialect:
openai-refill (refill buckets), sliding, groq (an 85-token per 2 s window binds; -requests is the
day), cerebras (true 60 s windows, ~1 min a loop), openrouter (epoch-ms resets), and
openrouter-shared (one key's window shared by three models, declared as the registry does).

The theoretical line (see `rate_bound`, `ideal_schedule`), with keys k allowing N_k per W_k s,
R requests, latency L, concurrency c:
  capacity        C = sum_k N_k / W_k requests/s
  rate bound      T_rate = L + min{T : sum_k N_k * (floor(T / W_k) + 1) >= R}
                  (windows start empty: sum_k N_k go at once, each key's next N_k W_k later;
                  a refill bucket instead admits floor(N_k * (1 + T / W_k)) by T)
  closed loop     wall >= max(T_rate, ceil(R / c) * L)
  open loop       wall >= max(T_rate, (R - 1) / rate + L)
The table's theory rows replay the greedy schedule, FIFO, with the same arrivals or concurrency,
on the fake's own windows: exact sliding windows (a slot used at t frees at t + W) or refill
buckets (admitting while the level is >= a request's cost, tokens for a token window). That is
the best any client can do, and it also gives the latencies the limits force. The wall-time
target is checked against it. Targets apply to the paced rows; the no-pacing rows are the
comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import math
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmarks.pool_setup import (
    DIALECT_POOLS,
    MODEL,
    PROMPT,
    TASK,
    Setup,
    Targets,
    dialect_pools,
    pool_data,
)
from llmroute.config import Config, parse_config
from llmroute.errors import LLMRouteError
from llmroute.router import Router
from llmroute.state import MemoryStore, StateStore
from llmroute.state.sqlite import SQLiteStore
from tests.fakeprovider import FakeServer, LoggedRequest

Loop = Literal["closed", "open"]
LOOPS: tuple[Loop, ...] = ("closed", "open")
DEFAULT_POOL = "default"  # issue 3's pool, limits declared in routes.toml


@dataclass(frozen=True)
class Scenario:
    name: str
    loop: Loop
    pacing: bool
    store: Literal["memory", "sqlite"] = "memory"
    pool: str = DEFAULT_POOL  # DEFAULT_POOL or one of DIALECT_POOLS


SCENARIOS = (
    Scenario("closed-paced", "closed", pacing=True),
    Scenario("closed-paced-sqlite", "closed", pacing=True, store="sqlite"),
    Scenario("closed-nopacing", "closed", pacing=False),
    Scenario("open-paced", "open", pacing=True),
    Scenario("open-nopacing", "open", pacing=False),
    *(Scenario(f"{p}-{loop}", loop, pacing=True, pool=p) for p in DIALECT_POOLS for loop in LOOPS),
)


@dataclass
class Row:
    name: str
    loop: Loop
    wall_s: float
    answered: int
    total: int
    latencies: list[float]
    limits: str = "true"  # true (theory: the fake's own) | config | learned | none (no pacing)
    calls: int | None = None  # upstream calls seen by the fake
    rejected: int | None = None  # of which 429s
    errors: Counter[str] = field(default_factory=Counter)
    log: list[LoggedRequest] = field(default_factory=list)

    def quantile(self, q: int) -> float:
        """p-th percentile (q of 100) of the request latencies."""
        xs = sorted(self.latencies)
        if not xs:
            return math.nan
        if len(xs) == 1:
            return xs[0]
        return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


# -- the theoretical line ---------------------------------------------------------------------


def rate_bound(setup: Setup, requests: int) -> float:
    """Earliest time the R-th request can go with every window fresh at t = 0."""
    keys = setup.key_limits()
    instants = heapq.merge(*(map(k.instant, range(requests)) for k in keys))
    return list(itertools.islice(instants, requests))[-1]


def ideal_schedule(setup: Setup, loop: Loop) -> Row:
    """The greedy FIFO schedule, replayed on copies of the fake's own windows at the instants it
    chooses; latency as the benchmark measures it (closed loop: from taking a concurrency slot;
    open loop: from the scheduled arrival)."""
    keys = setup.key_limits()
    windows = [k.window() for k in keys]
    # FIFO, each key admits in time order, and its window expects a clock that never goes back:
    # so it is asked from its last admission on.
    last = [0.0] * len(keys)
    slots = [0.0] * setup.concurrency  # closed loop: when each in-flight slot frees
    heapq.heapify(slots)
    latencies, finish = [], 0.0
    for i in range(setup.requests):
        ready = heapq.heappop(slots) if loop == "closed" else i / setup.rate
        starts = [max(ready, t) for t in last]
        earliest = [
            t + w.wait_for(k.cost, t) for k, w, t in zip(keys, windows, starts, strict=True)
        ]
        best = min(range(len(keys)), key=earliest.__getitem__)
        at = last[best] = earliest[best]
        windows[best].add(keys[best].cost, at)
        done = at + setup.latency
        heapq.heappush(slots, done)
        latencies.append(done - ready)
        finish = max(finish, done)
    return Row("theory-" + loop, loop, finish, setup.requests, setup.requests, latencies)


def theory_notes(setup: Setup, rows: dict[Loop, Row]) -> Iterator[str]:
    keys = setup.key_limits()
    r, c, lat = setup.requests, setup.concurrency, setup.latency
    cap = setup.capacity()
    terms = " + ".join(f"{k.rate * k.w:g}/{k.w:g}" for k in keys)
    burst = sum(k.burst for k in keys)
    t_rate = rate_bound(setup, r) + lat
    admitted = "floor(N_k*(1+T/W_k))" if setup.refill else "N_k*(floor(T/W_k)+1)"
    yield f"capacity C = {terms} = {cap:.2f} req/s; first window: {burst} requests at once"
    yield (
        f"rate bound: the {r}th request can go at {t_rate - lat:.2f} s "
        f"(sum {admitted} >= {r}) -> T_rate = {t_rate:.2f} s"
    )
    if "closed" in rows:
        conc = math.ceil(r / c) * lat
        bound = max(t_rate, conc)
        yield (
            f"closed loop: max(T_rate {t_rate:.2f}, ceil({r}/{c})*{lat:g} = {conc:.2f}) = "
            f"{bound:.2f} s; exact replay {rows['closed'].wall_s:.2f} s"
        )
    if "open" in rows:
        arrivals = (r - 1) / setup.rate + lat
        bound = max(t_rate, arrivals)
        verdict = "over" if setup.rate > cap else "within"
        yield (
            f"open loop: offered {setup.rate:g}/s is {verdict} capacity {cap:.2f}/s; "
            f"max(T_rate {t_rate:.2f}, ({r}-1)/{setup.rate:g}+{lat:g} = {arrivals:.2f}) = "
            f"{bound:.2f} s"
        )
        why = (
            "arrivals above the capacity queue for the buckets' refill"
            if setup.refill
            else "a slot used late frees late, so each window's lag carries into the next"
        )
        yield (
            f"  exact replay {rows['open'].wall_s:.2f} s, p95 {rows['open'].quantile(95):.2f} s: "
            + why
        )


# -- the measured runs ------------------------------------------------------------------------


def router_config(setup: Setup, server: FakeServer, pacing: bool) -> tuple[Config, dict[str, str]]:
    """Fake providers with the real limits, and the router config (limits only when pacing)."""
    data, env = pool_data(setup, server, pacing=pacing)
    return parse_config(data), env


async def drive(router: Router, setup: Setup, loop: Loop, row: Row) -> None:
    semaphore = asyncio.Semaphore(setup.concurrency)
    start = time.perf_counter()

    async def one(i: int) -> None:
        if loop == "closed":
            async with semaphore:
                await call(time.perf_counter())
        else:
            due = start + i / setup.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await call(due)

    async def call(since: float) -> None:
        try:
            await router.complete(TASK, PROMPT, deadline=setup.deadline, **setup.params())
        except LLMRouteError as exc:
            row.errors[f"{type(exc).__name__}: {exc}"] += 1
            return
        row.answered += 1
        row.latencies.append(time.perf_counter() - since)

    await asyncio.gather(*(one(i) for i in range(setup.requests)))
    row.wall_s = time.perf_counter() - start


def run_scenario(setup: Setup, scenario: Scenario) -> Row:
    limits = "none" if not scenario.pacing else "config" if setup.declared else "learned"
    row = Row(scenario.name, scenario.loop, 0.0, 0, setup.requests, [], limits)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FakeServer())
        config, env = router_config(setup, server, scenario.pacing)
        store: StateStore
        if scenario.store == "sqlite":
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="llmroute-bench-"))
            store = SQLiteStore(Path(tmp) / "state.sqlite3")
        else:
            store = MemoryStore()

        async def main() -> None:
            async with Router(config, env=env, store=store) as router:
                await drive(router, setup, scenario.loop, row)

        asyncio.run(main())
        row.log = [e for e in server.log if e.path.endswith("/chat/completions")]
    row.calls = len(row.log)
    row.rejected = sum(e.status == 429 for e in row.log)
    return row


# -- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    text: str  # measured against target

    def __str__(self) -> str:
        return f"{self.name}:{'meets' if self.ok else 'MISSES'}"


def checks(row: Row, theory: Row, targets: Targets) -> list[Check]:
    share = (row.rejected or 0) / row.calls if row.calls else 0.0
    limit = theory.wall_s * (1 + targets.wall)
    found = [
        Check(
            "wall",
            row.wall_s <= limit,
            f"{row.wall_s:.2f} s = {row.wall_s / theory.wall_s:.3f} x theory, limit {limit:.2f} s",
        ),
        Check("429", targets.allows(share), f"{share:.1%} of calls, limit {targets.max_429:.0%}"),
        Check("all", row.answered == row.total, f"{row.answered}/{row.total} answered"),
    ]
    if row.loop == "open" and targets.p95 is not None:
        p95 = row.quantile(95)
        found.append(Check("p95", p95 < targets.p95, f"p95 {p95:.2f} s, limit {targets.p95:g} s"))
    return found


def table(rows: list[tuple[Row, list[Check]]]) -> Iterator[str]:
    width = max(22, *(len(row.name) + 2 for row, _ in rows))
    head = (
        f"{'scenario':<{width}}{'limits':<8}{'wall s':>8}{'answered':>10}{'calls':>7}"
        f"{'429s':>6}{'429 %':>7}{'p50 s':>7}{'p95 s':>7}  targets"
    )
    yield head
    yield "-" * len(head)
    for row, marks in rows:
        calls = "-" if row.calls is None else str(row.calls)
        rejected = "-" if row.rejected is None else str(row.rejected)
        share = (
            f"{100 * row.rejected / row.calls:.1f}"
            if row.calls and row.rejected is not None
            else "-"
        )
        yield (
            f"{row.name:<{width}}{row.limits:<8}{row.wall_s:>8.2f}"
            f"{f'{row.answered}/{row.total}':>10}{calls:>7}{rejected:>6}{share:>7}"
            f"{row.quantile(50):>7.2f}{row.quantile(95):>7.2f}  " + " ".join(map(str, marks))
        )


def details(row: Row) -> Iterator[str]:
    """Where the calls went, and when the 429s came (seconds after the first call)."""
    if not row.log:
        return
    t0 = row.log[0].at

    def where(e: LoggedRequest) -> str:
        return e.provider if e.model == MODEL else f"{e.provider}:{e.model}"

    per_provider = Counter((where(e), e.status) for e in row.log)
    spread = ", ".join(f"{p} {s}: {n}" for (p, s), n in sorted(per_provider.items()))
    yield f"  {row.name}: {spread}"
    late = [f"{where(e)}@{e.at - t0:.2f}" for e in row.log if e.status == 429]
    if late:
        more = f" … (+{len(late) - 12})" if len(late) > 12 else ""
        yield f"    429s at: {' '.join(late[:12])}{more}"
    for error, count in row.errors.items():
        yield f"    {count}x {error}"


def run_pool(name: str, setup: Setup, scenarios: list[Scenario]) -> list[tuple[Row, list[Check]]]:
    """One pool's rows, closed loop first: each loop's theory row, then its measured rows
    (checked when paced)."""
    rows: list[tuple[Row, list[Check]]] = []
    for loop in LOOPS:
        runs = [s for s in scenarios if s.loop == loop]
        if not runs:
            continue
        theory = ideal_schedule(setup, loop)
        if name != DEFAULT_POOL:
            theory.name = f"theory-{name}-{loop}"
        rows.append((theory, []))
        for scenario in runs:
            row = run_scenario(setup, scenario)
            rows.append((row, checks(row, theory, setup.targets) if scenario.pacing else []))
    return rows


def report(name: str, setup: Setup, rows: list[tuple[Row, list[Check]]]) -> Iterator[str]:
    """A pool's theory notes, targets and checks (the default pool is described at the top)."""
    if name != DEFAULT_POOL:
        yield f"{name}: {setup.describe()}"
    theory = {row.loop: row for row, _ in rows if row.limits == "true"}
    yield from theory_notes(setup, theory)
    paced = "paced rows" if name == DEFAULT_POOL else f"{name} rows"
    yield f"targets ({paced}): {setup.targets}"
    width = max([20, *(len(row.name) for row, marks in rows if marks)])
    for row, marks in rows:
        for check in marks:
            verdict = "meets" if check.ok else "MISSES"
            yield f"  {row.name:<{width}} {check.name:<5} {verdict:<7} {check.text}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="40 requests instead of 120 (cerebras still crosses its minute)",
    )
    parser.add_argument(
        "--scenario", action="append", choices=[s.name for s in SCENARIOS], help="run one row"
    )
    parser.add_argument(
        "--dialect", action="append", choices=DIALECT_POOLS, help="run one dialect's two rows"
    )
    parser.add_argument("--fallbacks", type=int, default=2, help="fallback providers (2/2 s each)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="calls per provider, 429 times"
    )
    args = parser.parse_args()
    requests = 40 if args.quick else 120
    setup = Setup(requests=requests, fallbacks=args.fallbacks)
    pools = {DEFAULT_POOL: setup, **dialect_pools(requests, args.fallbacks)}
    everything = args.scenario is None and args.dialect is None
    chosen = [
        s
        for s in SCENARIOS
        if everything or s.name in (args.scenario or ()) or s.pool in (args.dialect or ())
    ]
    if any(s.pool == DEFAULT_POOL for s in chosen):
        print(f"pool: {setup.describe()}")
    print(
        f"runs: {setup.requests} requests; closed loop at concurrency {setup.concurrency} "
        f"(latency from taking a slot); open loop at {setup.rate:g}/s (latency from arrival)"
    )
    results = {
        name: run_pool(name, pool, [s for s in chosen if s.pool == name])
        for name, pool in pools.items()
        if any(s.pool == name for s in chosen)
    }
    rows = [row for pool_rows in results.values() for row in pool_rows]
    print()
    for line in table(rows):
        print(line)
    print(
        "limits: true = the fake's own (theory rows); config = declared in routes.toml; "
        "learned = from the headers only; none = pacing off"
    )
    for name, pool_rows in results.items():
        print()
        for line in report(name, pools[name], pool_rows):
            print(line)
    if args.verbose or any(row.errors for row, _ in rows):
        print()
        for row, _ in rows:
            for line in details(row):
                print(line)


if __name__ == "__main__":
    main()
