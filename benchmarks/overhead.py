"""Router overhead: median time per request through Router.complete vs a direct AsyncOpenAI call
to the same zero-latency fake endpoint, interleaved in one run so both see the same machine.

    python -m benchmarks.overhead [-n 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import openai

from llmroute.config import parse_config
from llmroute.router import Router
from tests.fakeprovider import FakeServer

KEY = "sk-bench-0000000000000000"
MESSAGES = [{"role": "user", "content": "ping"}]
TARGET_MS = 1.0


async def measure(base_url: str, n: int) -> tuple[list[float], list[float]]:
    config = parse_config({
        "providers": {"fake": {"base_url": base_url, "keys": ["BENCH_KEY"]}},
        "tasks": {"bench": {"route": ["fake:m"]}},
        "settings": {"default_task": "bench"},
    })  # fmt: skip
    direct_client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
    direct, routed = [], []
    async with Router(config, env={"BENCH_KEY": KEY}) as router:
        for i in range(n + 20):
            t0 = time.perf_counter()
            await direct_client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            await router.complete("bench", MESSAGES)
            t2 = time.perf_counter()
            if i >= 20:  # warm-up: connections, imports, first-call caches
                direct.append(t1 - t0)
                routed.append(t2 - t1)
    await direct_client.close()
    return direct, routed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=400, help="requests per side")
    args = parser.parse_args()
    with FakeServer() as server:
        provider = server.provider("fake", dialect="openai")
        provider.key(KEY)
        direct, routed = asyncio.run(measure(provider.base_url, args.n))

    def row(name: str, xs: list[float]) -> str:
        qs = statistics.quantiles(xs, n=20)
        return f"{name:<22}{statistics.median(xs) * 1e3:>10.3f}{qs[17] * 1e3:>10.3f}"

    added = (statistics.median(routed) - statistics.median(direct)) * 1e3
    print(f"requests per side: {args.n} (interleaved, after 20 warm-up)")
    print(f"{'path':<22}{'p50 ms':>10}{'p90 ms':>10}")
    print(row("direct AsyncOpenAI", direct))
    print(row("Router.complete", routed))
    print(f"ratio (p50): {statistics.median(routed) / statistics.median(direct):.2f}x")
    verdict = "meets" if added < TARGET_MS else "MISSES"
    print(
        f"router adds {added:.3f} ms per request at the median ({verdict} target < {TARGET_MS} ms)"
    )


if __name__ == "__main__":
    main()
