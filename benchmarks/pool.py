"""Key pool under rate limits: llmroute (pacing on) against itself with pacing off and against the
best schedule the limits allow, on the fake provider, in one run.

    python -m benchmarks.pool [--quick] [--scenario NAME] [--fallbacks 2] [-v]

Setup (the issue's): three groq keys allowing 5 requests per 2 s each, fallback providers with
one key allowing 2 per 2 s (two of them by default: fb1, fb2), 0.2 s per successful upstream
call (a 429 is answered at once). The fake enforces those limits with sliding windows and
answers over-limit requests with a 429 in the provider's dialect. Runs: 120 requests at
concurrency 8 (closed loop) and 120 requests arriving at 10/s (open loop). Every scenario gets a
fresh FakeServer and a fresh store, so no window carries over.

The theoretical line (see `rate_bound`, `ideal_schedule`), with keys k allowing N_k per W_k s,
R requests, latency L, concurrency c:
  capacity        C = sum_k N_k / W_k requests/s
  rate bound      T_rate = L + min{T : sum_k N_k * (floor(T / W_k) + 1) >= R}
                  (windows start empty: sum_k N_k go at once, each key's next N_k W_k later)
  closed loop     wall >= max(T_rate, ceil(R / c) * L)
  open loop       wall >= max(T_rate, (R - 1) / rate + L)
The table's theory rows replay the greedy schedule on exact sliding windows (a slot used at t
frees at t + W), FIFO, with the same arrivals or concurrency: that is the best any client can do,
and it also gives the latencies the limits force. The wall-time target is checked against it.
Targets apply to the paced rows; the no-pacing rows are the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import math
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmroute.config import Config, parse_config
from llmroute.errors import LLMRouteError
from llmroute.router import Router
from llmroute.state import MemoryStore, StateStore
from llmroute.state.sqlite import SQLiteStore
from tests.fakeprovider import FakeServer, LoggedRequest, Reply

MODEL = "m"
TASK = "pool"
PROMPT = "ping"
WALL_TOLERANCE = 0.10  # wall time within 10 % of the theoretical line
MAX_429_SHARE = 0.02  # 429s under 2 % of upstream calls
OPEN_P95_TARGET_S = 1.0  # p95 latency under 1 s in the open-loop run

Loop = Literal["closed", "open"]
LOOPS: tuple[Loop, ...] = ("closed", "open")


@dataclass(frozen=True)
class Setup:
    requests: int = 120
    concurrency: int = 8
    rate: float = 10.0  # open-loop arrivals per second
    latency: float = 0.2
    groq_keys: int = 3
    groq_limit: tuple[int, float] = (5, 2.0)
    fallbacks: int = 2
    fallback_limit: tuple[int, float] = (2, 2.0)

    def key_limits(self) -> list[tuple[str, int, float]]:
        """(provider, N, W) for every key of the pool, in route order."""
        keys = [("groq", *self.groq_limit)] * self.groq_keys
        return keys + [(f"fb{i}", *self.fallback_limit) for i in range(1, self.fallbacks + 1)]

    def capacity(self) -> float:
        return sum(n / w for _, n, w in self.key_limits())


@dataclass(frozen=True)
class Scenario:
    name: str
    loop: Loop
    pacing: bool
    store: Literal["memory", "sqlite"] = "memory"


SCENARIOS = (
    Scenario("closed-paced", "closed", pacing=True),
    Scenario("closed-paced-sqlite", "closed", pacing=True, store="sqlite"),
    Scenario("closed-nopacing", "closed", pacing=False),
    Scenario("open-paced", "open", pacing=True),
    Scenario("open-nopacing", "open", pacing=False),
)


@dataclass
class Row:
    name: str
    loop: Loop
    wall_s: float
    answered: int
    total: int
    latencies: list[float]
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
    """Earliest time the R-th request can go out with every window empty at t = 0."""
    keys = setup.key_limits()
    horizon = requests * max(w for _, _, w in keys)
    instants = sorted({m * w for _, _, w in keys for m in range(int(horizon / w) + 1)})
    for t in instants:
        if sum(n * (math.floor(t / w + 1e-9) + 1) for _, n, w in keys) >= requests:
            return t
    raise AssertionError("unreachable: the last instant admits every request")


def ideal_schedule(setup: Setup, loop: Loop) -> Row:
    """The greedy FIFO schedule on exact sliding windows; latency as the benchmark measures it
    (closed loop: from taking a concurrency slot; open loop: from the scheduled arrival)."""
    keys = setup.key_limits()
    sent: list[list[float]] = [[] for _ in keys]  # admission times per key
    slots = [0.0] * setup.concurrency  # closed loop: when each in-flight slot frees
    heapq.heapify(slots)
    latencies, finish = [], 0.0
    for i in range(setup.requests):
        ready = heapq.heappop(slots) if loop == "closed" else i / setup.rate

        def earliest(k: int, ready: float = ready) -> float:
            _, n, w = keys[k]
            return ready if len(sent[k]) < n else max(ready, sent[k][-n] + w)

        best = min(range(len(keys)), key=earliest)
        at = earliest(best)
        sent[best].append(at)
        done = at + setup.latency
        heapq.heappush(slots, done)
        latencies.append(done - ready)
        finish = max(finish, done)
    return Row("theory-" + loop, loop, finish, setup.requests, setup.requests, latencies)


def theory_notes(setup: Setup, rows: dict[Loop, Row]) -> Iterator[str]:
    keys = setup.key_limits()
    r, c, lat = setup.requests, setup.concurrency, setup.latency
    cap = setup.capacity()
    terms = " + ".join(f"{n}/{w:g}" for _, n, w in keys)
    burst = sum(n for _, n, _ in keys)
    t_rate = rate_bound(setup, r) + lat
    yield f"capacity C = {terms} = {cap:.2f} req/s; first window: {burst} requests at once"
    yield (
        f"rate bound: the {r}th request can go at {t_rate - lat:.2f} s "
        f"(sum N_k*(floor(T/W_k)+1) >= {r}) -> T_rate = {t_rate:.2f} s"
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
        yield (
            f"  exact replay {rows['open'].wall_s:.2f} s, p95 {rows['open'].quantile(95):.2f} s: "
            "a slot used late frees late, so each window's lag carries into the next"
        )


# -- the measured runs ------------------------------------------------------------------------


def router_config(setup: Setup, server: FakeServer, pacing: bool) -> tuple[Config, dict[str, str]]:
    """Fake providers with the real limits, and the router config (limits only when pacing)."""
    data, env = pool_data(setup, server, pacing=pacing)
    return parse_config(data), env


def pool_data(
    setup: Setup, server: FakeServer, *, pacing: bool, state: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Fake providers with the real limits, and the routes.toml data for them (declaring the
    same limits when pacing), with the key variables it names."""
    providers: dict[str, Any] = {}
    env: dict[str, str] = {}
    for index, (name, n, w) in enumerate(setup.key_limits()):
        provider = server.provider(name, dialect="groq" if name == "groq" else "openai")
        secret = f"sk-bench-{name}-{index:02d}-0000000000000000"
        key = provider.key(secret)
        key.limit(requests=n, per=w)
        key.default = Reply.ok("pong", latency=setup.latency)
        var = f"BENCH_{name.upper()}_{index}"
        env[var] = secret
        table = providers.setdefault(name, {"base_url": provider.base_url, "keys": []})
        table["keys"].append(var)
        if pacing:
            table["limits"] = {"requests": f"{n}/{w:g}s"}
    settings: dict[str, Any] = {"default_task": TASK, "deadline": 60, "timeout": 10,
                                "pacing": pacing}  # fmt: skip
    if state is not None:
        settings["state"] = state
    route = [f"{name}:{MODEL}" for name in providers]
    data = {"settings": settings, "providers": providers, "tasks": {TASK: {"route": route}}}
    return data, env


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
            await router.complete(TASK, PROMPT, deadline=60.0)
        except LLMRouteError as exc:
            row.errors[f"{type(exc).__name__}: {exc}"] += 1
            return
        row.answered += 1
        row.latencies.append(time.perf_counter() - since)

    await asyncio.gather(*(one(i) for i in range(setup.requests)))
    row.wall_s = time.perf_counter() - start


def run_scenario(setup: Setup, scenario: Scenario) -> Row:
    row = Row(scenario.name, scenario.loop, 0.0, 0, setup.requests, [])
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


def checks(row: Row, theory: Row) -> list[Check]:
    share = (row.rejected or 0) / row.calls if row.calls else 0.0
    limit = theory.wall_s * (1 + WALL_TOLERANCE)
    found = [
        Check(
            "wall",
            row.wall_s <= limit,
            f"{row.wall_s:.2f} s = {row.wall_s / theory.wall_s:.3f} x theory, limit {limit:.2f} s",
        ),
        Check("429", share < MAX_429_SHARE, f"{share:.1%} of calls, limit {MAX_429_SHARE:.0%}"),
        Check("all", row.answered == row.total, f"{row.answered}/{row.total} answered"),
    ]
    if row.loop == "open":
        p95 = row.quantile(95)
        found.append(Check("p95", p95 < OPEN_P95_TARGET_S, f"p95 {p95:.2f} s, limit 1 s"))
    return found


def table(rows: list[tuple[Row, list[Check]]]) -> Iterator[str]:
    head = (
        f"{'scenario':<22}{'wall s':>8}{'answered':>10}{'calls':>7}{'429s':>6}{'429 %':>7}"
        f"{'p50 s':>7}{'p95 s':>7}  targets"
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
            f"{row.name:<22}{row.wall_s:>8.2f}{f'{row.answered}/{row.total}':>10}{calls:>7}"
            f"{rejected:>6}{share:>7}{row.quantile(50):>7.2f}{row.quantile(95):>7.2f}  "
            + " ".join(map(str, marks))
        )


def details(row: Row) -> Iterator[str]:
    """Where the calls went, and when the 429s came (seconds after the first call)."""
    if not row.log:
        return
    t0 = row.log[0].at
    per_provider = Counter((e.provider, e.status) for e in row.log)
    spread = ", ".join(f"{p} {s}: {n}" for (p, s), n in sorted(per_provider.items()))
    yield f"  {row.name}: {spread}"
    late = [f"{e.provider}@{e.at - t0:.2f}" for e in row.log if e.status == 429]
    if late:
        more = f" … (+{len(late) - 12})" if len(late) > 12 else ""
        yield f"    429s at: {' '.join(late[:12])}{more}"
    for error, count in row.errors.items():
        yield f"    {count}x {error}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="40 requests instead of 120")
    parser.add_argument("--scenario", choices=[s.name for s in SCENARIOS], help="run one row")
    parser.add_argument("--fallbacks", type=int, default=2, help="fallback providers (2/2 s each)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="calls per provider, 429 times"
    )
    args = parser.parse_args()
    setup = Setup(requests=40 if args.quick else 120, fallbacks=args.fallbacks)
    chosen = [s for s in SCENARIOS if args.scenario in (None, s.name)]
    theory: dict[Loop, Row] = {
        loop: ideal_schedule(setup, loop) for loop in LOOPS if any(s.loop == loop for s in chosen)
    }

    fbs = ", ".join(f"fb{i}" for i in range(1, setup.fallbacks + 1)) or "none"
    n, w = setup.groq_limit
    fn, fw = setup.fallback_limit
    print(
        f"pool: groq x{setup.groq_keys} keys at {n}/{w:g}s each, fallbacks {fbs} (1 key each) "
        f"at {fn}/{fw:g}s, {setup.latency:g} s per ok call, 429s answered at once"
    )
    print(
        f"runs: {setup.requests} requests; closed loop at concurrency {setup.concurrency} "
        f"(latency from taking a slot); open loop at {setup.rate:g}/s (latency from arrival)"
    )
    rows: list[tuple[Row, list[Check]]] = []
    for loop in LOOPS:
        if loop not in theory:
            continue
        rows.append((theory[loop], []))
        for scenario in (s for s in chosen if s.loop == loop):
            row = run_scenario(setup, scenario)
            rows.append((row, checks(row, theory[loop]) if scenario.pacing else []))
    print()
    for line in table(rows):
        print(line)
    print()
    for line in theory_notes(setup, theory):
        print(line)
    print(
        f"targets (paced rows): wall <= theory * {1 + WALL_TOLERANCE:g}; 429s < "
        f"{MAX_429_SHARE:.0%} of calls; every request answered; open loop p95 < "
        f"{OPEN_P95_TARGET_S:g} s"
    )
    for row, marks in rows:
        for check in marks:
            verdict = "meets" if check.ok else "MISSES"
            print(f"  {row.name:<20} {check.name:<5} {verdict:<7} {check.text}")
    if args.verbose or any(row.errors for row, _ in rows):
        print()
        for row, _ in rows:
            for line in details(row):
                print(line)


if __name__ == "__main__":
    main()
