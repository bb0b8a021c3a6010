"""Router overhead: median time per request through Router.complete vs a direct AsyncOpenAI call
to the same zero-latency fake endpoint, interleaved in one run so all see the same machine.
The router is measured with the in-memory store and with the default SQLite store (one state
file: cursor, reservation and settlement are three short write transactions per request).

    python -m benchmarks.overhead [-n 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import openai

from llmroute.config import Config, parse_config
from llmroute.router import Router
from llmroute.state import MemoryStore
from llmroute.state.sqlite import SQLiteStore
from tests.fakeprovider import FakeServer

KEY = "sk-bench-0000000000000000"
MESSAGES = [{"role": "user", "content": "ping"}]
TARGET_MS = 1.0
WARM_UP = 20


def bench_config(base_url: str) -> Config:
    return parse_config({
        "providers": {"fake": {"base_url": base_url, "keys": ["BENCH_KEY"],
                               "limits": {"requests": "100000/minute"}}},
        "tasks": {"bench": {"route": ["fake:m"]}},
        "settings": {"default_task": "bench"},
    })  # fmt: skip


async def measure(base_url: str, n: int, state_dir: Path) -> dict[str, list[float]]:
    config = bench_config(base_url)
    env = {"BENCH_KEY": KEY}
    direct_client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
    timings: dict[str, list[float]] = {"direct": [], "memory": [], "sqlite": []}
    memory = Router(
        config, env=env, store=MemoryStore(), log=None
    )  # its cost: benchmarks.requestlog
    sqlite = Router(config, env=env, store=SQLiteStore(state_dir / "state.sqlite3"), log=None)
    async with memory, sqlite:
        for i in range(n + WARM_UP):
            t0 = time.perf_counter()
            await direct_client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            await memory.complete("bench", MESSAGES)
            t2 = time.perf_counter()
            await sqlite.complete("bench", MESSAGES)
            t3 = time.perf_counter()
            if i >= WARM_UP:  # connections, imports, first-call caches
                timings["direct"].append(t1 - t0)
                timings["memory"].append(t2 - t1)
                timings["sqlite"].append(t3 - t2)
    await direct_client.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=400, help="requests per path")
    args = parser.parse_args()
    with FakeServer() as server, tempfile.TemporaryDirectory() as tmp:
        provider = server.provider("fake", dialect="openai")
        provider.key(KEY)
        timings = asyncio.run(measure(provider.base_url, args.n, Path(tmp)))

    base = statistics.median(timings["direct"])
    print(f"requests per path: {args.n} (interleaved, after {WARM_UP} warm-up)")
    print(f"{'path':<30}{'p50 ms':>10}{'p90 ms':>10}{'added p50 ms':>15}")
    names = {"direct": "direct AsyncOpenAI", "memory": "Router.complete (memory)",
             "sqlite": "Router.complete (sqlite)"}  # fmt: skip
    for key, label in names.items():
        xs = timings[key]
        p50, p90 = statistics.median(xs), statistics.quantiles(xs, n=10)[8]
        added = "" if key == "direct" else f"{(p50 - base) * 1e3:>15.3f}"
        print(f"{label:<30}{p50 * 1e3:>10.3f}{p90 * 1e3:>10.3f}{added}")
    for key in ("memory", "sqlite"):
        added = (statistics.median(timings[key]) - base) * 1e3
        verdict = "meets" if added < TARGET_MS else "MISSES"
        print(f"{key}: router adds {added:.3f} ms per request at the median "
              f"({verdict} target < {TARGET_MS} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
