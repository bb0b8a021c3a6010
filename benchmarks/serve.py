"""The gateway's cost: what `llmroute serve` adds to a request over calling the provider directly,
and what one `llmroute ask` costs through a running gateway against routing in process.

Processes, all on 127.0.0.1, all stopped (and their temp files removed) on the way out:
  - the fake provider (tests.fakeprovider.FakeServer) in a child Python process of its own, so
    that at concurrency 32 its handler threads do not share a GIL with the load generator's
    event loop (in one process they would queue behind it for up to the 5 ms switch interval);
  - the gateway: `llmroute serve --port 0 --config X` from the console script, with the default
    state store (`sqlite`, in the user state directory, which XDG_STATE_HOME points into the
    temp dir) and a provider limit high enough never to pace (100000/minute, as in
    benchmarks.overhead: the store keeps one usage row per request of the last minute and sums
    them on every reservation, so its share grows with the rate; the gateway's stderr, its
    access log, goes to a file);
  - this process: the load generator and the clock.

Part 1, HTTP: the openai SDK (AsyncOpenAI, max_retries=0, one client per path, its own
connection pool) asks the fake directly and through the gateway, at concurrency 1 and 32. Each
(kind, concurrency) runs ROUNDS rounds after one warm-up round; a round sends a batch through
each path in turn (the order alternates), so both see the same noisy machine. A batch is
n/ROUNDS requests kept `concurrency` in flight.
  - complete: create() -> the parsed answer;
  - stream: create(stream=True) -> the first content chunk in hand, and -> the stream's end.
Added = the gateway's percentile minus the direct one. req/s = a path's requests / the wall
time of its batches. CPU ms/req = the CPU time (/proc) of the process the SDK talks to over
those batches, per request: the fake's for the direct path, the gateway's alone for the other
(on a shared machine it is steadier than wall time, and it is what a hop costs). Every answer
is checked, and the gateway's access log must count exactly the requests sent to it.

Part 2, the CLI: each round spawns, with subprocess.run and the order rotating:
  - `python -c pass` (the interpreter's floor) and `llmroute --help` (+ Typer and the CLI);
  - `llmroute ask ping` through the running gateway (found as a user's would be: by the file it
    announced in the state directory, for the same --config), and `llmroute ask --direct ping`
    (routed in process: the SDK and the router imported, the SQLite store opened).
`llmroute` is the console script next to sys.executable, the entry point users run (not
`python -m llmroute`, which also goes through runpy). Stdout and stderr are piped, so the
report on stderr is rendered as for a pipe. Spawn -> exit, wall clock. The target applies to
the mean, what a shell loop of them costs per call.

    python -m benchmarks.serve [--quick] [-n 2000] [--rounds 20] [--cli-runs 50]

A full run takes about 5 minutes on 2 CPUs (--quick: under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import openai

from tests.world import to_toml

KEY = "sk-bench-0000000000000000"
MODEL = "m"
TASK = "bench"
PROMPT = "ping"
MESSAGES = [{"role": "user", "content": PROMPT}]
CHUNKS = ("Bonjour", ", le", " monde", "!")
ANSWER = "".join(CHUNKS)
TARGET_ADDED_MS = 1.0  # gateway-added p50 per request
TARGET_ASK_S = 0.15  # one `llmroute ask` through a gateway
CONCURRENCY = (1, 32)
CLI_WARM_UP = 1  # rounds not counted: a cold page cache, the SQLite file's creation
START_TIMEOUT_S = 30.0
ROOT = Path(__file__).resolve().parent.parent  # where `tests` imports from

FAKE_SCRIPT = f"""\
import sys
from tests.fakeprovider import FakeServer, Reply
with FakeServer() as server:
    provider = server.provider("fake", dialect="openai")
    provider.key({KEY!r}).default = Reply.stream(chunks={CHUNKS!r})
    print(provider.base_url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
"""


def ms(seconds: float) -> float:
    return seconds * 1e3


def p99(xs: Sequence[float]) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[98]


# -- the processes ---------------------------------------------------------------------------


def child_env(tmp: Path) -> dict[str, str]:
    """No user .env, config, state or gateway: XDG points into the temp dir, LLMROUTE_* goes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE_")}
    env.update(BENCH_KEY=KEY, XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_STATE_HOME=str(tmp / "state"))  # fmt: skip
    return env


def stop(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def fake_provider(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The fake in a child process: its provider's base URL and its pid; stopped by closing
    its stdin."""
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE_SCRIPT], cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdin is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake provider did not start (exit {process.poll()})")
        yield url, process.pid
    finally:
        if process.stdin is not None:
            process.stdin.close()
        stop(process)


@dataclass
class Gateway:
    """A running `llmroute serve`. Its stderr (the access log) goes to a file, not a pipe: a
    thread reading a pipe here would take this process's GIL from the load generator."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def served(self) -> int:
        """Chat requests answered 200, by the access log: one line as each one ends."""
        return self.log.read_text().count("POST /v1/chat/completions 200 ")

    def wait_served(self, count: int) -> int:
        deadline = time.monotonic() + 5  # the last line may lag its response by a moment
        while self.served() < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.served()


@contextmanager
def gateway(llmroute: str, config: Path, env: dict[str, str], cwd: Path) -> Iterator[Gateway]:
    log = cwd / "gateway.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [llmroute, "serve", "--port", "0", "--config", str(config)], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    found = Gateway(process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not found.url:
            address = re.search(r"llmroute gateway on (http://\S+)/v1", log.read_text())
            if address:
                found.url = address.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start:\n{log.read_text()}")
            else:
                time.sleep(0.02)
        yield found
    finally:
        stop(process)  # SIGTERM: it drains, closes its store and withdraws its announcement


def write_config(path: Path, base_url: str) -> Path:
    path.write_text(to_toml({
        "settings": {"default_task": TASK},  # state: the default, sqlite
        "providers": {"fake": {"base_url": base_url, "keys": ["BENCH_KEY"],
                               "limits": {"requests": "100000/minute"}}},
        "tasks": {TASK: {"route": [f"fake:{MODEL}"]}},
    }))  # fmt: skip
    return path


# -- part 1: HTTP through the SDK ------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    label: str
    stream: bool


COMPLETE, STREAM = Kind("complete", False), Kind("stream", True)


@dataclass
class Samples:
    """One path (direct or gateway) at one (kind, concurrency): samples and batch wall times."""

    first: list[float] = field(default_factory=list)  # stream: -> first content chunk
    end: list[float] = field(default_factory=list)  # -> the answer complete
    wall: float = 0.0
    count: int = 0
    cpu: float | None = 0.0  # CPU time the server (fake or gateway) spent on these batches

    def cpu_ms(self) -> str:
        return f"{ms(self.cpu / self.count):.2f}" if self.cpu is not None else "-"

    def rate(self) -> float:
        return self.count / self.wall


async def one(client: openai.AsyncOpenAI, model: str, kind: Kind) -> tuple[float | None, float]:
    t0 = time.perf_counter()
    if not kind.stream:
        answer = await client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        end = time.perf_counter()
        assert answer.choices[0].message.content == ANSWER, answer
        return None, end - t0
    first: float | None = None
    parts: list[str] = []
    stream = await client.chat.completions.create(  # type: ignore[call-overload]
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter()
            parts.append(chunk.choices[0].delta.content)
    end = time.perf_counter()
    assert first is not None and "".join(parts) == ANSWER, parts
    return first - t0, end - t0


def cpu_time(pid: int) -> float | None:
    """user + system CPU seconds of a process (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def batch(work: Callable[[], Awaitable[tuple[float | None, float]]], size: int,
                concurrency: int, server: int, into: Samples | None) -> int:  # fmt: skip
    """`size` requests, `concurrency` in flight, to the server process `server`; into=None:
    a warm-up, nothing recorded. Returns how many were sent."""
    left = size
    samples: list[tuple[float | None, float]] = []

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            samples.append(await work())

    t0, cpu0 = time.perf_counter(), cpu_time(server)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu1 = time.perf_counter() - t0, cpu_time(server)
    if into is not None:
        into.wall += wall
        into.cpu = None if into.cpu is None or cpu0 is None or cpu1 is None else (
            into.cpu + cpu1 - cpu0)  # fmt: skip
        into.count += len(samples)
        into.end += [end for _, end in samples]
        into.first += [first for first, _ in samples if first is not None]
    return len(samples)


Results = dict[tuple[Kind, int, str], Samples]


async def measure_http(direct_url: str, gateway_url: str, pids: dict[str, int], n: int,
                       rounds: int) -> tuple[Results, int]:  # fmt: skip
    """The samples, and how many requests went to the gateway (warm-ups included)."""
    # Ctrl-C raises at once, out of the loop: asyncio's own handler only cancels the main
    # task, and a cancellation caught inside the SDK's HTTP stack let the run go on.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    clients = {
        "direct": (openai.AsyncOpenAI(api_key=KEY, base_url=direct_url, max_retries=0), MODEL),
        "gateway": (openai.AsyncOpenAI(api_key="unused", base_url=f"{gateway_url}/v1",
                                       max_retries=0), TASK),
    }  # fmt: skip
    results: Results = {}
    size, through = max(1, n // rounds), 0
    for kind in (COMPLETE, STREAM):
        for concurrency in CONCURRENCY:
            for i in range(rounds + 1):  # round 0: warm-up (connections, first-call caches)
                order = list(clients) if i % 2 == 0 else list(clients)[::-1]
                for path in order:
                    client, model = clients[path]
                    into = results.setdefault((kind, concurrency, path), Samples()) if i else None
                    sent = await batch(partial(one, client, model, kind), size, concurrency,
                                       pids[path], into)  # fmt: skip
                    through += sent if path == "gateway" else 0
    for client, _ in clients.values():
        await client.close()
    return results, through


def print_http(results: Results, rounds: int) -> list[tuple[str, float]]:
    """The table; returns (what, added p50 ms) for the target lines."""
    some = next(iter(results.values()))
    print(f"== HTTP: the openai SDK to the fake, directly and through `llmroute serve` (state: "
          f"sqlite, the default); {some.count} requests per path and row, {rounds} interleaved "
          "rounds after 1 warm-up")  # fmt: skip
    print(f"{'what':<20}{'conc':>5}  {'path':<8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'added p50':>11}{'added p99':>11}{'req/s':>8}{'CPU ms/req':>12}")  # fmt: skip
    added: list[tuple[str, float]] = []
    for kind in (COMPLETE, STREAM):
        for concurrency in CONCURRENCY:
            direct, through = (results[kind, concurrency, p] for p in ("direct", "gateway"))
            metrics = [("complete", "end")] if not kind.stream else [
                ("stream: 1st chunk", "first"), ("stream: to the end", "end")]  # fmt: skip
            for label, attr in metrics:
                base: list[float] = getattr(direct, attr)
                for name, path in (("direct", direct), ("gateway", through)):
                    xs: list[float] = getattr(path, attr)
                    cells = f"{label:<20}{concurrency:>5}  {name:<8}"
                    cells += f"{ms(statistics.median(xs)):>9.3f}{ms(p99(xs)):>9.3f}"
                    if path is through:
                        plus = ms(statistics.median(xs) - statistics.median(base))
                        cells += f"{plus:>+11.3f}{ms(p99(xs) - p99(base)):>+11.3f}"
                        added.append((f"{label}, concurrency {concurrency}", plus))
                    else:
                        cells += f"{'':>22}"
                    print(cells + f"{path.rate():>8.0f}{path.cpu_ms():>12}")
    print("  added: the gateway's percentile minus the direct one (ms); req/s: requests / the "
          "wall time of that path's batches;\n  CPU ms/req: CPU time (user + system) of the "
          "process the SDK talks to, per request: direct, the fake's; gateway, the gateway's "
          f"alone;\n  at concurrency {max(CONCURRENCY)} on {os.cpu_count()} CPUs the added time is "
          "mostly queueing for the CPU that the gateway spends per request")  # fmt: skip
    return added


# -- part 2: the CLI -------------------------------------------------------------------------


@dataclass
class Command:
    label: str
    argv: list[str]
    expect: str | None  # stdout, or None: not checked
    times: list[float] = field(default_factory=list)


def run_cli(commands: list[Command], runs: int, env: dict[str, str], cwd: Path) -> None:
    for i in range(runs + CLI_WARM_UP):
        shift = i % len(commands)  # rotate, so no command always follows the same one
        for command in commands[shift:] + commands[:shift]:
            t0 = time.perf_counter()
            done = subprocess.run(command.argv, env=env, cwd=cwd, capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
            elapsed = time.perf_counter() - t0
            if done.returncode != 0 or command.expect not in (None, done.stdout):
                raise RuntimeError(f"{command.label}: exit {done.returncode}, stdout "
                                   f"{done.stdout!r}, stderr {done.stderr!r}")  # fmt: skip
            if i >= CLI_WARM_UP:
                command.times.append(elapsed)


def print_cli(commands: list[Command], runs: int, llmroute: str) -> None:
    cache = "off (PYTHONDONTWRITEBYTECODE)" if sys.flags.dont_write_bytecode else "on"
    print(f"== CLI: {runs} rounds after {CLI_WARM_UP} warm-up, each command a subprocess "
          f"(spawn -> exit); llmroute = {llmroute}; bytecode cache {cache}")  # fmt: skip
    print(f"{'command':<44}{'p50 s':>8}{'p90 s':>8}{'mean s':>8}{'min s':>8}{'loop of 50':>12}")
    for c in commands:
        xs = c.times
        p90 = statistics.quantiles(xs, n=10, method="inclusive")[8] if len(xs) > 1 else xs[0]
        mean = statistics.fmean(xs)
        print(f"{c.label:<44}{statistics.median(xs):>8.3f}{p90:>8.3f}{mean:>8.3f}"
              f"{min(xs):>8.3f}{mean * 50:>11.1f}s")  # fmt: skip


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="requests per path and row (part 1)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (part 1)")
    parser.add_argument("--cli-runs", type=int, default=50, help="rounds of commands (part 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: -n 200 --rounds 4 "
                        "--cli-runs 3")  # fmt: skip
    args = parser.parse_args()
    n, rounds, runs = (200, 4, 3) if args.quick else (args.n, args.rounds, args.cli_runs)
    llmroute = shutil.which("llmroute", path=str(Path(sys.executable).parent))
    if llmroute is None:
        raise SystemExit("no llmroute console script next to this Python: pip install -e .")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop children, clean up
    started, load = time.perf_counter(), os.getloadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="llmroute-serve-")))
        env = child_env(tmp)
        fake_url, fake_pid = stack.enter_context(fake_provider(env))
        config = write_config(tmp / "routes.toml", fake_url)
        served = stack.enter_context(gateway(llmroute, config, env, tmp))
        pids = {"direct": fake_pid, "gateway": served.process.pid}
        results, sent = asyncio.run(measure_http(fake_url, served.url, pids, n, rounds))

        ask = [llmroute, "ask", "--config", str(config), PROMPT]
        commands = [
            Command("python -c pass", [sys.executable, "-c", "pass"], ""),
            Command("llmroute --help", [llmroute, "--help"], None),
            Command("llmroute ask ping (through the gateway)", ask, ANSWER + "\n"),
            Command("llmroute ask --direct ping (in process)",
                    [*ask[:2], "--direct", *ask[2:]], ANSWER + "\n"),
        ]  # fmt: skip
        run_cli(commands, runs, env, tmp)
        sent += runs + CLI_WARM_UP
        counted = served.wait_served(sent)
    wall = time.perf_counter() - started

    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
        f"{load[0]:.2f} at start and {os.getloadavg()[0]:.2f} at the end; wall {wall:.0f} s"
    )
    added = print_http(results, rounds)
    print()
    print_cli(commands, runs, llmroute)
    print()
    if counted != sent:
        print(f"WARNING: the gateway's access log counts {counted} answered chat requests, "
              f"{sent} were sent to it: some went elsewhere")  # fmt: skip
    else:
        print(f"the gateway's access log counts the {sent} chat requests sent to it (part 1 and "
              "the asks through it), and no others")  # fmt: skip
    for what, plus in added:
        verdict = "meets" if plus <= TARGET_ADDED_MS else "MISSES"
        print(f"target: gateway adds {plus:.3f} ms p50 ({what}; ≤ {TARGET_ADDED_MS:g} ms: "
              f"{verdict})")  # fmt: skip
    through = statistics.fmean(commands[2].times)
    verdict = "meets" if through <= TARGET_ASK_S else "MISSES"
    print(f"target: `llmroute ask` through the gateway takes {through:.3f} s per call, mean "
          f"(≤ {TARGET_ASK_S:g} s: {verdict}); in process {statistics.fmean(commands[3].times):.3f}"
          f" s; python -c pass {statistics.fmean(commands[0].times):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
