"""The request log's cost: time it adds per request on the answer path, and its size on disk.

Part 1, end to end: N requests per path through `Router.complete` (in-memory state) to a
zero-latency fake, interleaved (in alternating order) so that both paths see the same machine:
the log off, and on (text kept). Added = the on path's percentile minus the off path's.
Part 2, the hook alone: what a request itself pays when it ends (`Dispatch.__aexit__`: build
the record, put it on the writer's queue), timed around that call for N requests.
Part 3, size: 10,000 records written through the writer, with and without their text, with a
prompt and an answer of typical chat length (--prompt-chars, --answer-chars); the file's size
after a checkpoint, per 10,000 requests.

    python -m benchmarks.requestlog [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from llmroute.attempt import Result
from llmroute.keys import Redactor
from llmroute.requestlog import LogPolicy
from llmroute.requestlog.logfile import connect
from llmroute.requestlog.record import ended
from llmroute.requestlog.writer import LogWriter
from llmroute.router import Router
from llmroute.state import MemoryStore
from tests.fakeprovider import FakeServer

from .overhead import KEY, MESSAGES, WARM_UP, bench_config

TARGET_MS = 0.2
SIZE_RECORDS = 10_000


def quantile(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]


async def end_to_end(
    base_url: str, n: int, log_file: Path
) -> tuple[dict[str, list[float]], Result]:
    config = bench_config(base_url)
    env = {"BENCH_KEY": KEY, "LLMROUTE_LOG": str(log_file)}
    timings: dict[str, list[float]] = {"off": [], "on": []}
    off = Router(config, env=env, store=MemoryStore(), log=None)
    on = Router(config, env=env, store=MemoryStore(), log=LogPolicy("bench", content=True))
    async with off, on:
        for i in range(n + WARM_UP):
            order = (("off", off), ("on", on)) if i % 2 else (("on", on), ("off", off))
            for name, router in order:  # alternating: neither path always goes first
                t0 = time.perf_counter()
                result = await router.complete("bench", MESSAGES)
                if i >= WARM_UP:
                    timings[name].append(time.perf_counter() - t0)
    return timings, result


def hook_alone(result: Result, n: int, log_file: Path) -> list[float]:
    """Exactly what `Dispatch.__aexit__` does for an answered request, timed per call."""
    writer = LogWriter(log_file, retention_s=None, redact=Redactor([KEY]))
    times = []
    for _ in range(n + WARM_UP):
        t0 = time.perf_counter()
        writer.put(ended(
            at=time.time(), source="bench", route="bench", messages=MESSAGES,
            attempts=result.attempts, latency_s=result.latency_s, waited_s=0.0, result=result,
            error=None, content=True,
        ))  # fmt: skip
        times.append(time.perf_counter() - t0)
    writer.close()
    return times[WARM_UP:]


def size_per_10k(result: Result, tmp: Path, prompt: str, answer: str, content: bool) -> int:
    path = tmp / f"size-{content}.sqlite3"
    writer = LogWriter(path, retention_s=None, redact=Redactor([KEY]))
    typical = replace(result, content=answer)
    for _ in range(SIZE_RECORDS):
        writer.put(ended(
            at=time.time(), source="ask", route="fast_small",
            messages=[{"role": "user", "content": prompt}], attempts=result.attempts,
            latency_s=0.8, waited_s=0.0, result=typical, error=None, content=content,
        ))  # fmt: skip
    writer.close()
    db = connect(path, create=False)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(p.stat().st_size for p in tmp.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="requests per path")
    parser.add_argument("--prompt-chars", type=int, default=400)
    parser.add_argument("--answer-chars", type=int, default=1200)
    args = parser.parse_args()
    with FakeServer() as server, tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        provider = server.provider("fake", dialect="openai")
        provider.key(KEY)
        timings, result = asyncio.run(end_to_end(provider.base_url, args.n, tmp / "e2e.sqlite3"))
        hook = hook_alone(result, args.n, tmp / "hook.sqlite3")
        words = "the quick brown fox jumps over the lazy dog "
        prompt = (words * 100)[: args.prompt_chars]
        answer = (words * 100)[: args.answer_chars]
        sizes = {c: size_per_10k(result, tmp, prompt, answer, c) for c in (True, False)}

    print(f"requests per path: {args.n} (interleaved, after {WARM_UP} warm-up)")
    print(f"{'':<40}{'p50 ms':>10}{'p99 ms':>10}")
    for key, label in (("off", "Router.complete, log off"), ("on", "Router.complete, log on")):
        xs = timings[key]
        print(f"{label:<40}{statistics.median(xs) * 1e3:>10.3f}{quantile(xs, 99) * 1e3:>10.3f}")
    added50 = (statistics.median(timings["on"]) - statistics.median(timings["off"])) * 1e3
    added99 = (quantile(timings["on"], 99) - quantile(timings["off"], 99)) * 1e3
    print(f"{'added by the log (on - off)':<40}{added50:>10.3f}{added99:>10.3f}")
    print(f"{'the hook alone (record + queue)':<40}{statistics.median(hook) * 1e3:>10.3f}"
          f"{quantile(hook, 99) * 1e3:>10.3f}")  # fmt: skip
    verdict = "meets" if added50 <= TARGET_MS else "MISSES"
    print(f"logging adds {added50:.3f} ms per request at the median ({verdict} target "
          f"<= {TARGET_MS} ms)")  # fmt: skip
    print(f"\nlog size per {SIZE_RECORDS:,} requests ({args.prompt_chars}-char prompt, "
          f"{args.answer_chars}-char answer, one attempt each):")  # fmt: skip
    for content, label in ((True, "with text"), (False, "without text")):
        print(f"  {label:<14}{sizes[content] / 2**20:>8.1f} MiB")


if __name__ == "__main__":
    main()
