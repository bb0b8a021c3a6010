"""`llmroute batch` on the fake pool: wall time against the best schedule the limits allow, and
against a shell loop of `llmroute ask`, in one run.

    python -m benchmarks.batch [--quick] [-n 500] [--loop-n 30] [-c 8] [--scenario NAME] [-v]

Pool (as in benchmarks/pool.py): three groq keys allowing 5 requests per 2 s each, fallback
providers fb1, fb2 with one key allowing 2 per 2 s each, 0.2 s per successful upstream call (a
429 is answered at once); the fake enforces the limits with sliding windows, and the routes.toml
declares the same limits (`limits = {requests = "5/2s"}`), so the router paces. Every scenario
gets a fresh FakeServer and a fresh state store, so no window carries over. Scenarios:
  batch-sqlite   `llmroute batch in.jsonl -o out.jsonl -t pool -c C --config routes.toml -q`
                 as a subprocess, `[settings] state = "sqlite:///<tmp>/state.db"`
  batch-memory   the same with `state = "memory"`
  map-inproc     `router.map(jobs, concurrency=C)` in this process (imports done, same config
                 and a fresh SQLite file): the router alone, without process start-up
  ask-loop       `while read p; do llmroute ask "$p" -q -t pool --config routes.toml
                 </dev/null; done` in bash (sqlite state), one process per prompt, on a
                 smaller N (--loop-n), scaled linearly to -n (the loop runs about 1
                 request/s, far below the pool's 9.5/s, so the limits never bind and the
                 per-prompt cost is constant)
The router waits MARGIN_S + 1 % of the window past each window (llmroute.budget), about
0.075 s per 2 s window here: ~1.9 s over 500 prompts, plus ~0.9 s of start-up for the CLI.
At --quick's 100 prompts that fixed start-up alone is 8 % of the theory, so the wall target
is meant for the full run.
Wall time is spawn to exit for subprocesses, the whole `map` for the in-process row. Calls and
429s come from the fake's log (POST .../chat/completions only).

Theory: `benchmarks.pool.ideal_schedule` for R prompts at concurrency C (closed loop): a greedy
FIFO replay on exact sliding windows (a slot used at t frees at t + W), 0.2 s per call. It meets
the closed form max(T_rate, ceil(R / C) * L), T_rate = L + min{T : sum_k N_k (floor(T / W_k) + 1)
>= R}. -c 8 (the CLI default) is enough: capacity x latency = 9.5 x 0.2 = 1.9 calls in flight
keep the pool busy, and 8 slots send each 2 s window's 19 calls within 0.6 s, so the replay
equals the rate bound; a higher C only makes bursts steeper.
Targets (the `llmroute batch` rows): wall <= theory x 1.1; 429s < 1 % of upstream calls; every
prompt answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmarks.pool import TASK, Setup, ideal_schedule, pool_data, theory_notes
from llmroute.batch.jobs import Job
from llmroute.config import parse_config
from llmroute.router import Router
from tests.fakeprovider import FakeServer, LoggedRequest
from tests.world import to_toml

WALL_TOLERANCE = 0.10  # wall within 10 % of the theoretical minimum
MAX_429_SHARE = 0.01  # 429s under 1 % of upstream calls

Kind = Literal["batch", "map", "loop"]
Store = Literal["sqlite", "memory"]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: Kind
    store: Store = "sqlite"
    checked: bool = True  # the targets apply to this row


SCENARIOS = (
    Scenario("batch-sqlite", "batch"),
    Scenario("batch-memory", "batch", store="memory"),
    Scenario("map-inproc", "map"),
    Scenario("ask-loop", "loop", checked=False),
)


@dataclass
class Row:
    name: str
    n: int
    wall_s: float
    answered: int
    calls: int | None = None
    rejected: int | None = None
    exit_code: int | None = None
    first_call_s: float | None = None  # spawn (or start) -> first upstream call
    attempts: int | None = None  # attempts the results report (batch output lines)
    errors: Counter[str] = field(default_factory=Counter)
    log: list[LoggedRequest] = field(default_factory=list)
    checked: bool = False

    @property
    def share(self) -> float | None:
        if self.calls is None or self.rejected is None:
            return None
        return self.rejected / self.calls if self.calls else 0.0


# -- the pool ---------------------------------------------------------------------------------


def prompts(n: int) -> list[tuple[str, str]]:
    return [(f"p{i:04d}", f"prompt {i}: say pong") for i in range(n)]


def child_env(tmp: Path, keys: dict[str, str]) -> dict[str, str]:
    """No user .env, config or state: XDG points into the temp dir, LLMROUTE_* variables go."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE_")}
    env.update(keys, XDG_CONFIG_HOME=str(tmp / "xdg"), XDG_STATE_HOME=str(tmp / "xdg"))
    return env


def llmroute_bin() -> str:
    return shutil.which("llmroute", path=str(Path(sys.executable).parent)) or "llmroute"


def state_url(tmp: Path, store: Store) -> str:
    return f"sqlite:///{tmp / 'state.db'}" if store == "sqlite" else "memory"


# -- the runs ---------------------------------------------------------------------------------


def run_batch(setup: Setup, store: Store, tmp: Path, server: FakeServer, row: Row) -> None:
    config, keys = pool_data(setup, server, pacing=True, state=state_url(tmp, store))
    routes = tmp / "routes.toml"
    routes.write_text(to_toml(config))
    source, out = tmp / "in.jsonl", tmp / "out.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in prompts(setup.requests))
    )
    argv = [llmroute_bin(), "batch", str(source), "-o", str(out), "-t", TASK,
            "-c", str(setup.concurrency), "--config", str(routes), "-q"]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(
        argv, env=child_env(tmp, keys), cwd=tmp, capture_output=True, text=True, check=False
    )
    row.wall_s = time.monotonic() - start
    row.exit_code = done.returncode
    if done.returncode != 0 and done.stderr.strip():
        row.errors[f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1]}"] += 1
    expected = {i for i, _ in prompts(setup.requests)}
    answered: set[str] = set()
    row.attempts = 0
    for line in out.read_text(encoding="utf-8").splitlines() if out.exists() else []:
        record = json.loads(line)
        row.attempts += int(record.get("attempts") or 0)
        if record.get("error") is None and record.get("id") in expected:
            answered.add(record["id"])
        elif record.get("error") is not None:
            row.errors[f"{record['error'].get('kind')}: {record['error'].get('message')}"] += 1
    row.answered = len(answered)
    row.first_call_s = first_call(server, start)


def run_map(setup: Setup, tmp: Path, server: FakeServer, row: Row) -> None:
    config, env = pool_data(setup, server, pacing=True, state=state_url(tmp, "sqlite"))
    jobs = [
        Job(i, n, ({"role": "user", "content": p},))
        for n, (i, p) in enumerate(prompts(setup.requests), start=1)
    ]

    async def main() -> None:
        start = time.monotonic()
        async with Router(parse_config(config, "benchmarks/batch.py"), env=env) as router:
            async for outcome in router.map(jobs, concurrency=setup.concurrency, task=TASK):
                if outcome.result is not None:
                    row.answered += 1
                elif outcome.error is not None:
                    row.errors[f"{type(outcome.error).__name__}: {outcome.error}"] += 1
        row.wall_s = time.monotonic() - start
        row.first_call_s = first_call(server, start)

    asyncio.run(main())


LOOP = """\
while IFS= read -r p; do
  if "$LLMROUTE" ask "$p" -q -t "$TASK" --config "$ROUTES" </dev/null >>"$ANSWERS"; then
    echo ok
  else
    echo "failed $?"
  fi
done <"$PROMPTS" >"$STATUS"
"""


def run_loop(setup: Setup, n: int, tmp: Path, server: FakeServer, row: Row) -> None:
    """`llmroute ask` once per prompt, one process after the other, from a bash loop (stdin
    from /dev/null: `ask` reads piped stdin, which would swallow the rest of the prompts)."""
    config, keys = pool_data(setup, server, pacing=True, state=state_url(tmp, "sqlite"))
    routes = tmp / "routes.toml"
    routes.write_text(to_toml(config))
    (tmp / "prompts.txt").write_text("".join(p + "\n" for _, p in prompts(n)))
    env = child_env(tmp, keys)
    env.update(LLMROUTE=llmroute_bin(), TASK=TASK, ROUTES=str(routes),
               PROMPTS=str(tmp / "prompts.txt"), ANSWERS=str(tmp / "answers.txt"),
               STATUS=str(tmp / "status.txt"))  # fmt: skip
    bash = shutil.which("bash") or "/bin/bash"
    start = time.monotonic()
    done = subprocess.run(
        [bash, "-c", LOOP], env=env, cwd=tmp, capture_output=True, text=True, check=False
    )
    row.wall_s = time.monotonic() - start
    row.exit_code = done.returncode
    status = (tmp / "status.txt").read_text().splitlines()
    row.answered = sum(s == "ok" for s in status)
    row.errors.update(s for s in status if s != "ok")
    row.first_call_s = first_call(server, start)


def first_call(server: FakeServer, start: float) -> float | None:
    calls = [e for e in server.log if e.path.endswith("/chat/completions")]
    return calls[0].at - start if calls else None


def run_scenario(setup: Setup, scenario: Scenario, loop_n: int) -> Row:
    n = loop_n if scenario.kind == "loop" else setup.requests
    row = Row(scenario.name, n, 0.0, 0, checked=scenario.checked)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FakeServer())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="llmroute-batch-")))
        if scenario.kind == "batch":
            run_batch(setup, scenario.store, tmp, server, row)
        elif scenario.kind == "map":
            run_map(setup, tmp, server, row)
        else:
            run_loop(setup, n, tmp, server, row)
        row.log = [e for e in server.log if e.path.endswith("/chat/completions")]
    row.calls = len(row.log)
    row.rejected = sum(e.status == 429 for e in row.log)
    return row


def scaled(row: Row, n: int) -> Row:
    """The loop's row at n prompts: every count and the wall time times n / measured N."""
    f = n / row.n
    return Row(
        row.name.replace("measured", "scaled"),
        n,
        row.wall_s * f,
        round(row.answered * f),
        None if row.calls is None else round(row.calls * f),
        None if row.rejected is None else round(row.rejected * f),
    )


# -- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    row: str
    name: str
    ok: bool
    text: str


def checks(row: Row, theory_s: float, total: int) -> list[Check]:
    limit = theory_s * (1 + WALL_TOLERANCE)
    share = row.share or 0.0
    return [
        Check(
            row.name,
            "wall",
            row.wall_s <= limit,
            f"{row.wall_s:.2f} s = {row.wall_s / theory_s:.3f} x theory {theory_s:.2f} s, "
            f"limit {limit:.2f} s",
        ),
        Check(
            row.name,
            "429",
            share < MAX_429_SHARE,
            f"{row.rejected}/{row.calls} = {share:.2%} of upstream calls, "
            f"limit {MAX_429_SHARE:.0%}",
        ),
        Check(row.name, "all", row.answered == total, f"{row.answered}/{total} prompts answered"),
    ]


def table(rows: list[tuple[Row, float | None]]) -> Iterator[str]:
    """(row, theory wall for the same N or None when the comparison does not apply)."""
    head = (
        f"{'scenario':<22}{'N':>5}{'wall s':>9}{'answered':>10}{'calls':>7}{'429s':>6}"
        f"{'429 %':>7}{'vs theory':>11}"
    )
    yield head
    yield "-" * len(head)
    for row, theory_s in rows:
        calls = "-" if row.calls is None else str(row.calls)
        rejected = "-" if row.rejected is None else str(row.rejected)
        share = "-" if row.share is None else f"{100 * row.share:.1f}"
        ratio = "-" if theory_s is None else f"{row.wall_s / theory_s:.3f}x"
        yield (
            f"{row.name:<22}{row.n:>5}{row.wall_s:>9.2f}{f'{row.answered}/{row.n}':>10}"
            f"{calls:>7}{rejected:>6}{share:>7}{ratio:>11}"
        )


def details(row: Row) -> Iterator[str]:
    """Where the calls went, start-up, when the 429s came (s after the first call), errors."""
    spread = Counter((e.provider, e.status) for e in row.log)
    calls = ", ".join(f"{p} {s}: {n}" for (p, s), n in sorted(spread.items()))
    first = "-" if row.first_call_s is None else f"{row.first_call_s:.2f} s"
    extra = "" if row.exit_code is None else f", exit {row.exit_code}"
    reported = "" if row.attempts is None else f", attempts in output {row.attempts}"
    yield f"  {row.name}: first call after {first}{extra}{reported}; {calls}"
    if row.log:
        t0 = row.log[0].at
        late = [f"{e.provider}@{e.at - t0:.2f}" for e in row.log if e.status == 429]
        if late:
            more = f" … (+{len(late) - 12})" if len(late) > 12 else ""
            yield f"    429s at: {' '.join(late[:12])}{more}"
    for error, count in row.errors.most_common(5):
        yield f"    {count}x {error}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 prompts, 10 for the ask loop")
    parser.add_argument("-n", type=int, help="prompts per batch run (default 500)")
    parser.add_argument("--loop-n", type=int, help="prompts for the ask loop (default 30)")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="batch -c (default 8)")
    parser.add_argument("--scenario", choices=[s.name for s in SCENARIOS], help="run one row")
    parser.add_argument("-v", "--verbose", action="store_true", help="calls per provider")
    args = parser.parse_args()
    n = args.n or (100 if args.quick else 500)
    loop_n = args.loop_n or (10 if args.quick else 30)
    setup = Setup(requests=n, concurrency=args.concurrency)
    theory = ideal_schedule(setup, "closed")
    chosen = [s for s in SCENARIOS if args.scenario in (None, s.name)]

    fbs = ", ".join(f"fb{i}" for i in range(1, setup.fallbacks + 1))
    (gn, gw), (fn, fw) = setup.groq_limit, setup.fallback_limit
    print(
        f"pool: groq x{setup.groq_keys} keys at {gn}/{gw:g}s each, fallbacks {fbs} (1 key each) "
        f"at {fn}/{fw:g}s, {setup.latency:g} s per ok call, 429s answered at once"
    )
    print(
        f"runs: {n} prompts at concurrency {setup.concurrency} (batch, map); ask loop on "
        f"{loop_n} prompts, one process each, scaled to {n}"
    )

    ideal = Row(f"theory (c={setup.concurrency})", n, theory.wall_s, n)
    rows: list[tuple[Row, float | None]] = [(ideal, theory.wall_s)]
    found: list[Check] = []
    measured: dict[str, Row] = {}
    for scenario in chosen:
        row = run_scenario(setup, scenario, loop_n)
        measured[scenario.name] = row
        if scenario.kind == "loop":
            row.name = "ask-loop (measured)"
            rows += [(row, None), (scaled(row, n), theory.wall_s)]
        else:
            rows.append((row, theory.wall_s))
        if scenario.checked:
            found += checks(row, theory.wall_s, n)

    print()
    for line in table(rows):
        print(line)
    print()
    for line in theory_notes(setup, {"closed": theory}):
        print(line)
    loop = measured.get("ask-loop")
    if loop is not None and loop.n:
        per = loop.wall_s / loop.n
        below = loop.n / loop.wall_s < setup.capacity()
        print(
            f"ask loop: {loop.n} prompts in {loop.wall_s:.2f} s = {per:.3f} s/prompt "
            f"({loop.n / loop.wall_s:.2f}/s, {'below' if below else 'ABOVE'} capacity "
            f"{setup.capacity():.2f}/s{', so linear' if below else ': linear is too low'}) "
            f"-> {per * n:.1f} s for {n}"
        )
        for name in ("batch-sqlite", "batch-memory"):
            if name in measured:
                batch = measured[name]
                print(
                    f"  {name} vs ask loop: {batch.wall_s:.2f} s vs {per * n:.1f} s "
                    f"(scaled) = {per * n / batch.wall_s:.1f}x faster"
                )
    print(
        f"targets (batch-*, map-inproc): wall <= theory x {1 + WALL_TOLERANCE:g}; 429s < "
        f"{MAX_429_SHARE:.0%} of upstream calls; every prompt answered"
    )
    for check in found:
        verdict = "meets" if check.ok else "MISSES"
        print(f"  {check.row:<14} {check.name:<5} {verdict:<7} {check.text}")
    if args.verbose or any(r.errors or r.rejected for r in measured.values()):
        print()
        for row in measured.values():
            for line in details(row):
                print(line)


if __name__ == "__main__":
    main()
