"""The gateway's own CPU per request, with no sockets: what is left of `llmroute serve`'s cost
once the network is taken away.

The ASGI app (`gateway.app.build_app`) is called directly, in this process, with a canned chat
request, over an upstream that answers at once with a canned completion and OpenAI-style
rate-limit headers (so the learned windows are updated as in real use). The baseline, in the
same run, calls that canned upstream alone. Rows: the memory store, the SQLite store as `serve`
opens it (checkpoints in a thread), and the same with the request log on (its writer thread's
CPU counts: process time).

    python -m benchmarks.gateway_cpu [-n 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from llmroute.attempt import Candidate, Usage
from llmroute.config import parse_config
from llmroute.gateway.access import Message
from llmroute.gateway.app import build_app
from llmroute.requestlog import LogPolicy
from llmroute.router import Router
from llmroute.state import open_store
from llmroute.upstream import Reply, SendStamp

WARM_UP = 200
HEADERS = {
    "x-ratelimit-limit-requests": "14400", "x-ratelimit-remaining-requests": "14399",
    "x-ratelimit-reset-requests": "6s", "x-ratelimit-limit-tokens": "6000000",
    "x-ratelimit-remaining-tokens": "5999000", "x-ratelimit-reset-tokens": "1s",
}  # fmt: skip
ANSWER = json.dumps({
    "id": "c", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bonjour, le monde!"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
})  # fmt: skip
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "ping"}]}).encode()


class CannedUpstream:
    """Answers every chat at once, as a provider would: its JSON decoded, its headers."""

    def prepare(self, candidate: Candidate, base_url: str) -> None:
        pass

    async def chat(
        self,
        candidate: Candidate,
        base_url: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
        stamp: SendStamp,
    ) -> Reply:
        json.dumps({**params, "model": candidate.model, "messages": messages}).encode()
        stamp.mark()
        return Reply(
            content="Bonjour, le monde!", usage=Usage(5, 5), finish_reason="stop",
            headers=HEADERS, response=json.loads(ANSWER),
        )  # fmt: skip

    async def aclose(self) -> None:
        pass


def request_scope() -> dict[str, Any]:
    return {
        "type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(BODY)).encode())],
        "http_version": "1.1", "scheme": "http", "root_path": "",
        "server": ("127.0.0.1", 4141), "client": ("127.0.0.1", 50000),
    }  # fmt: skip


async def one_request(app: Callable[..., Awaitable[None]]) -> None:
    sent: list[Message] = []
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:  # the client stays connected: nothing more comes
            await asyncio.Event().wait()
        given = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(request_scope(), receive, send)
    assert sent[0]["status"] == 200, sent


async def cpu_per_request(work: Callable[[], Awaitable[None]], n: int) -> float:
    for _ in range(WARM_UP):
        await work()
    started = time.process_time()
    for _ in range(n):
        await work()
    return (time.process_time() - started) / n


async def measure(n: int, tmp: Path) -> list[tuple[str, float]]:
    config = parse_config({
        "providers": {"fake": {"base_url": "http://127.0.0.1:9/v1", "keys": ["BENCH_KEY"],
                               "limits": {"requests": "100000/minute"}}},
        "tasks": {"bench": {"route": ["fake:m"]}},
        "settings": {"default_task": "bench"},
    })  # fmt: skip
    canned = CannedUpstream()
    candidate = Candidate("fake", None, "m")  # type: ignore[arg-type]

    async def upstream_alone() -> None:
        await canned.chat(candidate, "", [], {}, 30.0, SendStamp(time.time))

    rows = [("the canned upstream alone (baseline)", await cpu_per_request(upstream_alone, n))]
    cases = [
        ("memory store", "memory", None),
        ("SQLite store", f"sqlite://{tmp}/a.sqlite3", None),
        ("SQLite store + request log", f"sqlite://{tmp}/b.sqlite3", LogPolicy("serve")),
    ]
    for label, url, log in cases:
        store = open_store(url)
        store.upkeep_in_background()  # as `serve` opens it
        router = Router(config, env={"BENCH_KEY": "sk-bench-0000000000000000"}, store=store,
                        upstream=canned, log=log)  # fmt: skip
        serve_one = partial(one_request, build_app(router))
        rows.append((f"gateway, {label}", await cpu_per_request(serve_one, n)))
        await router.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="requests per row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(measure(args.n, Path(tmp)))
    base = rows[0][1]
    print(f"== CPU per request, no sockets, {args.n} requests per row after {WARM_UP} warm-up")
    print(f"{'what':<44}{'CPU ms':>9}{'added ms':>10}")
    for label, seconds in rows:
        print(f"{label:<44}{seconds * 1e3:>9.3f}{(seconds - base) * 1e3:>+10.3f}")


if __name__ == "__main__":
    main()
