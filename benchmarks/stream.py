"""Streaming time to first token (TTFT): what the router adds before the first byte of the answer,
against the fake provider's own first byte, in one run.

Part 1, in process (the router's own cost, no process start-up): N streamed requests per path,
interleaved, to a fake that sends its first content chunk at once. TTFT = from starting the
request to the first content token in the caller's hands, through
  - raw HTTP: the SDK's HTTP client (httpx), reading the SSE lines itself (the floor);
  - the openai SDK: AsyncOpenAI.chat.completions.create(stream=True) (the baseline);
  - Router.stream, with the in-memory store and with the SQLite store (a temp file).
Added TTFT = the router's median minus the SDK's median.

Part 2, through the CLI: the fake waits a fixed delay (--first-chunk-ms) before the first
content chunk. Every round runs, one after the other (the order rotates between rounds):
  - a raw socket client in this process, 5 times: the fake's own first byte, from the request's
    arrival at the fake (its log's time.monotonic() stamp) to the first content chunk received;
  - `python -c pass` and `llmroute --version` (spawn to exit): bare start-up, for reference;
  - a plain openai-SDK script, and `llmroute ask -q` with a memory and with a SQLite store,
    each a subprocess with stdout piped: spawn -> request arrival at the fake (start-up: the
    interpreter, imports, config, store, client, connect) and arrival -> first byte on stdout;
  - in this process (imports done), 5 times each: a fresh event loop and AsyncOpenAI client,
    or a fresh Router.from_path (memory, sqlite), per request, as `llmroute ask` builds them,
    start-up being build -> request at the fake: this splits the router's own set-up (config,
    store, key pick, client) out of the CLI's start-up, which is mostly imports.
All stamps are time.monotonic() in this process (the fake runs here), so they compare directly.
Added TTFT via the CLI = median(arrival -> first byte on stdout) - median(fake's own first
byte): it excludes process start-up, which is reported separately. The final target line takes
the worst of the in-process and the CLI figures.

    python -m benchmarks.stream [--quick] [-n 200] [--runs 15] [--first-chunk-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai

from llmroute.config import Config, parse_config
from llmroute.router import Router
from llmroute.state import MemoryStore
from llmroute.state.sqlite import SQLiteStore
from tests.fakeprovider import FakeServer, Reply
from tests.world import to_toml

KEY = "sk-bench-0000000000000000"
MODEL = "m"
PROMPT = "ping"
MESSAGES = [{"role": "user", "content": PROMPT}]
CHUNKS = ("Bonjour", ", le", " monde", "!")  # the first is a marker the raw probe looks for
ANSWER = "".join(CHUNKS)
TARGET_MS = 5.0
WARM_UP = 20  # in-process requests per path not counted (connections, first-call caches)
CLI_WARM_UP = 1  # CLI rounds not counted (cold page cache, the SQLite file's creation)
PROBES = 5  # raw first-byte probes per CLI round: cheap, and the fake's stall jitters
COLD = 5  # in-process fresh-client requests per path and CLI round (their set-up varies a lot)

IN_PROCESS = {
    "raw": "raw HTTP (httpx, SSE by hand)",
    "sdk": "direct AsyncOpenAI (SDK)",
    "memory": "Router.stream (memory)",
    "sqlite": "Router.stream (sqlite)",
}

SDK_SCRIPT = """\
import os, sys, openai
client = openai.OpenAI(api_key=os.environ["BENCH_KEY"], base_url=sys.argv[1], max_retries=0)
for chunk in client.chat.completions.create(
    model="m", messages=[{"role": "user", "content": "ping"}], stream=True,
    stream_options={"include_usage": True},
):
    if chunk.choices and chunk.choices[0].delta.content:
        sys.stdout.write(chunk.choices[0].delta.content)
        sys.stdout.flush()
"""


def config_dict(base_url: str, state: str) -> dict[str, Any]:
    return {
        "settings": {"default_task": "bench", "state": state},
        "providers": {"fake": {"base_url": base_url, "keys": ["BENCH_KEY"],
                               "limits": {"requests": "100000/minute"}}},
        "tasks": {"bench": {"route": [f"fake:{MODEL}"]}},
    }  # fmt: skip


def bench_config(base_url: str) -> Config:
    return parse_config(config_dict(base_url, "memory"))


def ms(seconds: float) -> float:
    return seconds * 1e3


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def p95(xs: Sequence[float]) -> float:
    return statistics.quantiles(xs, n=20, method="inclusive")[18] if len(xs) > 1 else xs[0]


# -- part 1: in process ----------------------------------------------------------------------
# Each `first_*` reads one streamed answer to its end and returns when its first content token
# was in hand, as a time.monotonic() stamp: the clock of the fake's request log.


async def first_raw(http: Any, url: str) -> float:
    """The SDK's HTTP client (httpx), SSE lines parsed by hand: the floor."""
    body = {"model": MODEL, "messages": MESSAGES, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    headers = {"Authorization": f"Bearer {KEY}"}
    first: float | None = None
    async with http.stream("POST", url, json=body, headers=headers) as response:
        async for line in response.aiter_lines():
            data = line[5:].strip() if line.startswith("data:") else ""
            if first is None and data and data != "[DONE]":
                choices = json.loads(data).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.monotonic()
    assert first is not None, "no content in the raw stream"
    return first


async def first_sdk(client: openai.AsyncOpenAI) -> float:
    first: float | None = None
    stream = await client.chat.completions.create(  # type: ignore[call-overload]
        model=MODEL,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:  # read to the end, so the connection goes back to the pool
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic()
    assert first is not None, "no content in the SDK stream"
    return first


async def first_router(router: Router, reported: list[float]) -> float:
    first: float | None = None
    text: list[str] = []
    stream = router.stream("bench", MESSAGES)
    async for delta in stream:
        first = first or time.monotonic()
        text.append(delta)
    assert first is not None and "".join(text) == ANSWER, f"unexpected answer {text!r}"
    assert stream.result.ttft_s is not None
    reported.append(stream.result.ttft_s)  # the router's own TTFT figure, as a cross-check
    return first


@dataclass
class Sample:
    ttft: float  # request start -> first content token
    send: float  # request start -> request at the fake (its log stamp)


@dataclass
class InProcess:
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    reported: dict[str, list[float]] = field(default_factory=dict)

    def ttft(self, key: str) -> list[float]:
        return [s.ttft for s in self.samples[key]]

    def send(self, key: str) -> list[float]:
        return [s.send for s in self.samples[key]]


async def timed(server: FakeServer, work: Awaitable[float]) -> Sample:
    server.clear_log()
    t0 = time.monotonic()
    first = await work  # a coroutine: it starts running here
    return Sample(first - t0, arrival(server) - t0)


async def measure_in_process(server: FakeServer, base_url: str, n: int, tmp: Path) -> InProcess:
    config = bench_config(base_url)
    env = {"BENCH_KEY": KEY}
    out = InProcess({k: [] for k in IN_PROCESS}, {"memory": [], "sqlite": []})
    http = openai.DefaultAsyncHttpxClient()
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
    memory = Router(config, env=env, store=MemoryStore())
    sqlite = Router(config, env=env, store=SQLiteStore(tmp / "in-process.sqlite3"))
    url = f"{base_url}/chat/completions"
    async with memory, sqlite:
        for i in range(n + WARM_UP):
            reported: dict[str, list[float]] = {"memory": [], "sqlite": []}
            row = {
                "raw": await timed(server, first_raw(http, url)),
                "sdk": await timed(server, first_sdk(client)),
                "memory": await timed(server, first_router(memory, reported["memory"])),
                "sqlite": await timed(server, first_router(sqlite, reported["sqlite"])),
            }
            if i >= WARM_UP:
                for key, sample in row.items():
                    out.samples[key].append(sample)
                for key, values in reported.items():
                    out.reported[key] += values
    await client.close()
    await http.aclose()
    return out


def print_in_process(result: InProcess, n: int) -> dict[str, float]:
    sdk, raw = median(result.ttft("sdk")), median(result.ttft("raw"))
    sdk_send = median(result.send("sdk"))
    print(f"== in process: TTFT, {n} streamed requests per path (interleaved, after {WARM_UP} "
          "warm-up); the fake sends the first chunk at once")  # fmt: skip
    print(f"{'path':<32}{'p50 ms':>9}{'p95 ms':>9}{'vs SDK':>9}{'vs raw':>9}"
          f"{'send p50':>10}{'vs SDK':>9}")  # fmt: skip
    added: dict[str, float] = {}
    for key, label in IN_PROCESS.items():
        xs, send = result.ttft(key), median(result.send(key))
        vs_sdk = f"{'':>9}" if key == "sdk" else f"{ms(median(xs) - sdk):>+9.3f}"
        vs_raw = f"{'':>9}" if key == "raw" else f"{ms(median(xs) - raw):>+9.3f}"
        send_vs = "" if key == "sdk" else f"{ms(send - sdk_send):>+9.3f}"
        print(f"{label:<32}{ms(median(xs)):>9.3f}{ms(p95(xs)):>9.3f}{vs_sdk}{vs_raw}"
              f"{ms(send):>10.3f}{send_vs}")  # fmt: skip
        if key in ("memory", "sqlite"):
            added[key] = ms(median(xs) - sdk)
    print("  vs SDK / vs raw: p50 minus that path's p50 (ms); send: request start -> request "
          "at the fake (the fake's log stamp), p50 ms")  # fmt: skip
    for key in ("memory", "sqlite"):
        print(f"  Router result.ttft_s ({key}) p50 {ms(median(result.reported[key])):.3f} ms "
              "(the router's own figure, taken inside stream())")  # fmt: skip
    return added


# -- part 2: through the CLI -----------------------------------------------------------------


@dataclass
class Run:
    startup: float  # spawn (or build) -> request at the fake; spawn -> exit without a request
    first: float | None  # request at the fake -> first content byte (stdout, or in hand)


@dataclass
class Row:
    label: str
    step: Callable[[], Run]
    baseline: Row | None = None  # the "vs SDK" columns compare with this row
    repeat: int = 1  # times per round (the cheap in-process rows: more samples, same cost)
    runs: list[Run] = field(default_factory=list)


def arrival(server: FakeServer) -> float:
    log = server.log
    if len(log) != 1 or log[0].outcome != "stream":
        raise RuntimeError(f"expected one streamed request at the fake, got {log!r}")
    return log[0].at


def raw_probe(server: FakeServer, base_url: str) -> Run:
    """The fake's own first byte: a fresh connection, as a new process opens one."""
    url = urlsplit(base_url)
    body = json.dumps({"model": MODEL, "messages": MESSAGES, "stream": True}).encode()
    request = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    marker = json.dumps(CHUNKS[0]).encode()
    server.clear_log()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = time.monotonic()
        sock.sendall(request)
        received = b""
        while marker not in received:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError(f"the fake closed before the first chunk: {received!r}")
            received += data
        first = time.monotonic()
        while sock.recv(65536):
            pass
    arrived = arrival(server)
    return Run(arrived - sent, first - arrived)


def spawn(server: FakeServer, argv: list[str], expect: str | None, env: dict[str, str],
          cwd: Path) -> Run:  # fmt: skip
    """A subprocess with stdout piped; expect=None: it sends no request, time it to exit."""
    server.clear_log()
    spawned = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=cwd,
    )  # fmt: skip
    assert proc.stdout is not None
    head = os.read(proc.stdout.fileno(), 1)  # blocks until the first byte on stdout
    first = time.monotonic()
    rest, err = proc.communicate(timeout=30)
    ended = time.monotonic()
    out = (head + rest).decode()
    if proc.returncode != 0 or (expect is not None and out != expect):
        raise RuntimeError(f"{argv[:2]}: exit {proc.returncode}, stdout {out!r}, "
                           f"stderr {err.decode()!r}")  # fmt: skip
    if expect is None:
        return Run(ended - spawned, None)
    arrived = arrival(server)
    return Run(arrived - spawned, first - arrived)


async def _cold_sdk(base_url: str) -> float:
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
    first = await first_sdk(client)
    await client.close()
    return first


async def _cold_router(config: Path) -> float:
    async with Router.from_path(config, env={"BENCH_KEY": KEY}) as router:
        return await first_router(router, [])


def cold(server: FakeServer, work: Callable[[], Coroutine[Any, Any, float]]) -> Run:
    """In process, imports done: a new event loop and client (or Router) for one request, as
    `llmroute ask` builds them; start-up here is build -> request at the fake."""
    server.clear_log()
    started = time.monotonic()
    first = asyncio.run(work())
    arrived = arrival(server)
    return Run(arrived - started, first - arrived)


def cli_rows(server: FakeServer, base_url: str, tmp: Path) -> list[Row]:
    llmroute = shutil.which("llmroute", path=str(Path(sys.executable).parent)) or "llmroute"
    configs: dict[str, Path] = {}
    for state in ("memory", "sqlite"):
        url = "memory" if state == "memory" else f"sqlite:///{tmp / 'state.sqlite3'}"
        configs[state] = tmp / f"routes-{state}.toml"
        configs[state].write_text(to_toml(config_dict(base_url, url)))
    env = child_env(tmp)

    def proc(argv: list[str], expect: str | None) -> Callable[[], Run]:
        return partial(spawn, server, argv, expect, env, tmp)

    def ask(state: str) -> Callable[[], Run]:
        return proc([llmroute, "ask", "-q", "--config", str(configs[state]), PROMPT], ANSWER + "\n")

    sdk = Row("plain openai SDK script", proc([sys.executable, "-c", SDK_SCRIPT, base_url], ANSWER))
    cold_sdk = Row("fresh AsyncOpenAI", partial(cold, server, partial(_cold_sdk, base_url)),
                   repeat=COLD)  # fmt: skip
    return [
        Row("fake's own first byte (raw socket)", partial(raw_probe, server, base_url),
            repeat=PROBES),
        Row("python -c pass (to exit)", proc([sys.executable, "-c", "pass"], None)),
        Row("llmroute --version (to exit)", proc([llmroute, "--version"], None)),
        sdk,
        Row("llmroute ask -q (memory)", ask("memory"), sdk),
        Row("llmroute ask -q (sqlite)", ask("sqlite"), sdk),
        cold_sdk,
        *(
            Row(f"fresh Router.from_path ({state})",
                partial(cold, server, partial(_cold_router, configs[state])), cold_sdk, COLD)
            for state in ("memory", "sqlite")
        ),
    ]  # fmt: skip


def child_env(tmp: Path) -> dict[str, str]:
    # No user .env, config or state: XDG points into the temp dir, LLMROUTE_* variables go.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE_")}
    env.update(BENCH_KEY=KEY, XDG_CONFIG_HOME=str(tmp / "xdg"), XDG_STATE_HOME=str(tmp / "xdg"))
    return env


def measure_cli(rows: list[Row], runs: int) -> None:
    steps = [row for row in rows for _ in range(row.repeat)]
    for i in range(runs + CLI_WARM_UP):
        shift = i % len(steps)  # rotate, so no row always follows the same one
        for row in steps[shift:] + steps[:shift]:
            run = row.step()
            if i >= CLI_WARM_UP:
                row.runs.append(run)


def print_cli(rows: list[Row], runs: int, delay_ms: float) -> dict[str, float]:
    def firsts(row: Row) -> list[float]:
        return [r.first for r in row.runs if r.first is not None]

    def startup(row: Row) -> float:
        return median([r.startup for r in row.runs])

    fake = median(firsts(rows[0]))
    print(f"== through the CLI: {runs} rounds (after {CLI_WARM_UP} warm-up); the fake waits "
          f"{delay_ms:g} ms before the first content chunk; medians except p95")  # fmt: skip
    print(f"{'':<36}{'start-up':>9}{'':>8}{'req->1st':>9}{'':>7}{'spawn->':>9}{'added':>9}")
    print(f"{'path':<36}{'ms':>9}{'vs SDK':>8}{'byte ms':>9}{'p95':>7}{'1st ms':>9}"
          f"{'vs fake':>9}{'vs SDK':>8}")  # fmt: skip
    added: dict[str, float] = {}
    for row in rows:
        if row.label.startswith("fresh AsyncOpenAI"):
            print("-- in process, imports warm; a new event loop and client (or Router) per "
                  "request, as `llmroute ask` builds them: start-up = build -> request at the "
                  "fake")  # fmt: skip
        xs = firsts(row)
        first = median(xs) if xs else 0.0
        base = row.baseline
        cells = [
            f"{row.label:<36}",
            f"{'':>9}" if row is rows[0] else f"{ms(startup(row)):>9.1f}",
            f"{ms(startup(row) - startup(base)):>+8.1f}" if base else f"{'':>8}",
        ]
        if xs:
            cells += [f"{ms(first):>9.2f}", f"{ms(p95(xs)):>7.2f}"]
        if xs and row is not rows[0]:
            cells += [f"{ms(startup(row) + first):>9.1f}", f"{ms(first - fake):>+9.2f}"]
        if xs and base:
            cells.append(f"{ms(first - median(firsts(base))):>+8.2f}")
            if row.label.startswith("llmroute ask"):
                added[row.label] = ms(first - fake)
        print("".join(cells).rstrip())
    print("  start-up: spawn -> request at the fake (for the two '(to exit)' rows: spawn -> exit)")
    print("  req->1st byte: request at the fake -> first byte on stdout (in process: first token "
          "in hand; raw socket: first content chunk received)")  # fmt: skip
    print("  added vs fake = req->1st byte minus the fake's own; vs SDK: minus the SDK row of "
          "the same kind (start-up likewise)")  # fmt: skip
    return added


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=200, help="in-process requests per path")
    parser.add_argument("--runs", type=int, default=15, help="CLI rounds (5 processes each)")
    parser.add_argument(
        "--first-chunk-ms",
        type=float,
        default=50.0,
        help="CLI part: the fake's delay before the first content chunk",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: -n 20 --runs 2")
    args = parser.parse_args()
    n, runs = (20, 2) if args.quick else (args.n, args.runs)

    with FakeServer() as server, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fast = server.provider("fast", dialect="openai")
        fast.key(KEY).default = Reply.stream(chunks=CHUNKS)
        slow = server.provider("slow", dialect="openai")
        slow.key(KEY).default = Reply.stream(
            chunks=CHUNKS, stall_after=0, stall_seconds=args.first_chunk_ms / 1e3
        )
        in_process = asyncio.run(measure_in_process(server, fast.base_url, n, tmp))
        rows = cli_rows(server, slow.base_url, tmp)
        measure_cli(rows, runs)

    added = print_in_process(in_process, n)
    print()
    cli_added = print_cli(rows, runs, args.first_chunk_ms)
    print()
    for key, value in added.items():
        print(f"in process ({key}): router adds {value:.3f} ms TTFT at the median vs the SDK")
    for label, value in cli_added.items():
        print(f"{label}: router adds {value:.2f} ms to the first byte on stdout "
              "(start-up excluded)")  # fmt: skip
    figures = {**{f"in process ({k})": v for k, v in added.items()}, **cli_added}
    where, worst = max(figures.items(), key=lambda item: item[1])
    verdict = "meets" if worst < TARGET_MS else "MISSES"
    print(
        f"target: router adds {worst:.2f} ms (< {TARGET_MS:g} ms: {verdict}; worst path: {where})"
    )


if __name__ == "__main__":
    main()
