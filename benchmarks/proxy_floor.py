"""The floor under `llmroute serve`'s added latency on this machine: what any Python hop costs.

The same load as benchmarks.serve part 1 (the openai SDK, concurrency 1, complete), sent to the
fake provider directly and through three bare ASGI apps on uvicorn (httptools, uvloop), each a
child process of its own, with no router, state or log:
  - fixed: answers a canned completion without any upstream call;
  - http1: forwards the body to the fake on llmroute's HTTP client (`llmroute.http1`);
  - httpx: forwards it on httpx, the openai SDK's HTTP client (what llmroute used before).
Added = a path's p50 minus the direct one. CPU ms/req = the CPU time of the process the SDK
talks to, per request. Rounds interleave the paths, so all see the same noisy machine.

    python -m benchmarks.proxy_floor [-n 1000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

from benchmarks.serve import KEY, MESSAGES, ROOT, child_env, cpu_time, fake_provider, stop

PROXY = """\
import json, socket, sys
import uvicorn
from llmroute import http1
import openai

mode, upstream, key = sys.argv[1], sys.argv[2], sys.argv[3]
CANNED = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bonjour, le monde!"},
                 "finish_reason": "stop"}]}).encode()
HEADERS = [("authorization", "Bearer " + key), ("content-type", "application/json")]
target = http1.Target.parse(upstream)
head = http1.request_bytes(target, "chat/completions", HEADERS)
lean = http1.Client(tls=lambda: None)
httpx = openai.DefaultAsyncHttpxClient()

async def forward(body):
    if mode == "fixed":
        return CANNED
    request = json.loads(body)
    request["model"] = "m"
    data = json.dumps(request).encode()
    if mode == "http1":
        response = await lean.post(target, http1.with_body(head, data), timeout=30,
                                   sent=lambda: None)
        content = await response.aread()
        await response.aclose()
        return content
    response = await httpx.post(upstream + "/chat/completions", content=data,
                                 headers=dict(HEADERS))
    return response.content

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    out = await forward(body)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
print(port, flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
            loop="uvloop", http="httptools")
"""
MODES = ("fixed", "http1", "httpx")


async def measure(paths: dict[str, tuple[str, int]], n: int, rounds: int) -> None:
    clients = {
        name: openai.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0)
        for name, (url, _) in paths.items()
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu = dict.fromkeys(paths, 0.0)
    for i in range(rounds + 1):  # round 0 warms up
        order = list(paths) if i % 2 else list(paths)[::-1]
        for name in order:
            pid = paths[name][1]
            before = cpu_time(pid) or 0.0
            for _ in range(max(1, n // rounds)):
                t0 = time.perf_counter()
                answer = await clients[name].chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
                if i:
                    times[name].append(time.perf_counter() - t0)
                assert answer.choices[0].message.content
            if i:
                cpu[name] += (cpu_time(pid) or 0.0) - before
    base = statistics.median(times["direct"])
    print(f"{'path':<8}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'CPU ms/req':>12}")
    for name, xs in times.items():
        p50 = statistics.median(xs)
        p99 = statistics.quantiles(xs, n=100, method="inclusive")[98]
        print(f"{name:<8}{p50 * 1e3:>9.3f}{p99 * 1e3:>9.3f}{(p50 - base) * 1e3:>+11.3f}"
              f"{cpu[name] / len(xs) * 1e3:>12.2f}")  # fmt: skip
    for client in clients.values():
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="requests per path")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(Path(tmp))
        with fake_provider(env) as (url, fake_pid):
            command = [sys.executable, "-c", PROXY]
            proxies = {
                mode: subprocess.Popen(
                    [*command, mode, url, KEY], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
                )
                for mode in MODES
            }
            try:
                paths = {"direct": (url, fake_pid)}
                for mode, process in proxies.items():
                    assert process.stdout is not None
                    port = int(process.stdout.readline())
                    paths[mode] = (f"http://127.0.0.1:{port}/v1", process.pid)
                time.sleep(0.5)  # uvicorn listening
                print(f"== {args.n} completions per path, concurrency 1, {args.rounds} rounds")
                asyncio.run(measure(paths, args.n, args.rounds))
            finally:
                for process in proxies.values():
                    stop(process)


if __name__ == "__main__":
    main()
