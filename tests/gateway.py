"""`llmroute serve` as a real subprocess for tests: started on a free port, its stderr (the
access log) collected line by line, stopped with SIGTERM. Also what the gateway tests share:
a world + gateway a whole module can use, curl, raw HTTP, and the kernel's view of the TCP
connections (to prove that nothing is left open)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmroute.state import open_store
from tests.fakeprovider import FakeServer, Reply
from tests.world import World, make_world

START_TIMEOUT_S = 30.0  # the first import of the SDK on a loaded 2-core machine
_ADDRESS = re.compile(r"llmroute gateway on (http://\S+)/v1")
# What the test process's environment must not hand to a gateway (as conftest's isolated_env).
_LEAKY_PREFIXES = ("LLMROUTE_", "GROQ_", "CEREBRAS_", "SAMBANOVA_", "OPENROUTER_", "GEMINI_",
                   "OPENAI_", "XDG_")  # fmt: skip


class Gateway:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._mark = 0
        self._started = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            found = _ADDRESS.search(line)
            if found and not self.url:
                self.url = found.group(1)
                self._started.set()
        self._started.set()  # it ended: wake the waiter to report why

    def wait_started(self) -> None:
        if not self._started.wait(START_TIMEOUT_S) or not self.url:
            self.process.kill()
            raise AssertionError("the gateway did not start:\n" + "\n".join(self.lines))

    def wait_ready(self) -> None:
        """Until it answers: its address is announced before uvicorn runs (and handles
        signals), and a signal sent in between would find Python's default handlers."""

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError("the gateway exited:\n" + self.text())
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/health")
                return connection.getresponse().status == 200
            except OSError:
                return False
            finally:
                connection.close()

        wait_until(healthy, START_TIMEOUT_S, "the gateway to answer /health")

    def mark(self) -> None:
        """From now on, `log_lines` and `wait_for_line` see only lines written after this."""
        self._mark = len(self.lines)

    def log_lines(self, fragment: str = "/v1/chat/completions") -> list[str]:
        return [line for line in self.lines[self._mark :] if fragment in line]

    def wait_for_log(self, count: int, fragment: str = "/v1/chat/completions") -> list[str]:
        """The access log is written when a request ends: wait for `count` such lines."""
        deadline = time.monotonic() + 10
        while len(self.log_lines(fragment)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.log_lines(fragment)

    def wait_for_line(self, *fragments: str, timeout: float = 10.0) -> str:
        """The first access-log line (since the mark) that has every fragment."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [ln for ln in self.lines[self._mark :] if all(f in ln for f in fragments)]
            return bool(found)

        wait_until(seen, timeout, f"an access-log line with {fragments}:\n{self.text()}")
        return found[0]

    def text(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


def serve_command(config: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "llmroute",
        "serve",
        "--port",
        "0",
        "--config",
        str(config),
        *args,
    ]


def clean_env(home: Path) -> dict[str, str]:
    """os.environ without the variables that would leak into a gateway (keys, LLMROUTE_*, XDG),
    with HOME and the XDG directories under `home`: for gateways that outlive one test, which
    conftest's per-test `isolated_env` cannot prepare."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env["HOME"] = str(home)
    for sub in ("config", "state", "cache", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[f"XDG_{sub.upper()}_HOME"] = str(home / sub)
    return env


def launch_gateway(
    config: Path,
    env: Mapping[str, str],
    *args: str,
    cwd: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> Gateway:
    """A gateway starting (see `ready`); `base` replaces os.environ under `env`."""
    process = subprocess.Popen(
        serve_command(config, *args),
        env={**(os.environ if base is None else base), **env}, cwd=cwd, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    return Gateway(process)


def ready(*gateways: Gateway) -> None:
    """Wait until each answers (they start side by side); stop them all if one does not."""
    try:
        for gateway in gateways:
            gateway.wait_started()
            gateway.wait_ready()
    except BaseException:
        for gateway in gateways:
            gateway.stop()
        raise


def start_gateway(
    config: Path,
    env: Mapping[str, str],
    *args: str,
    cwd: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> Gateway:
    """A started gateway; the caller stops it. `base` replaces os.environ under `env`."""
    gateway = launch_gateway(config, env, *args, cwd=cwd, base=base)
    ready(gateway)
    return gateway


@contextmanager
def running_gateway(
    config: Path,
    env: Mapping[str, str],
    *args: str,
    cwd: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> Iterator[Gateway]:
    """A gateway over `config`, with the provider keys in `env`, stopped on the way out."""
    gateway = start_gateway(config, env, *args, cwd=cwd, base=base)
    try:
        yield gateway
    finally:
        gateway.stop()


# -- a world and a gateway that a whole module shares -------------------------------------


@dataclass
class Shared:
    """One fake server, world and gateway for a module's tests; `reset()` before each test
    puts back what a test may change: scripts, defaults and limits of the fake keys, the
    fake's log, the gateway's state store (cooldowns, cursors, budgets) and the log mark."""

    world: World
    gateway: Gateway
    state: str  # the store URL the gateway uses
    home: Path

    def reset(self) -> None:
        for provider in self.world.server.providers.values():
            provider.latency = 0.0
            for key in provider.keys:
                key.clear_script()
                key.clear_limits()
                key.default = Reply.ok()
        store = open_store(self.state)
        try:
            store.clear()
        finally:
            store.close()
        self.world.server.clear_log()
        self.gateway.mark()


@contextmanager
def shared_gateway(
    tmp: Path, *args: str, configure: Callable[[World], None] | None = None
) -> Iterator[Shared]:
    with FakeServer() as server:
        state = f"sqlite://{tmp / 'state.sqlite3'}"
        world = make_world(server, state=state)
        if configure is not None:
            configure(world)
        config = world.write_config(tmp / "routes.toml")
        work = tmp / "work"
        work.mkdir(exist_ok=True)
        base = clean_env(tmp / "home")
        with running_gateway(config, world.env, *args, cwd=work, base=base) as gateway:
            yield Shared(world, gateway, state, tmp / "home")


# -- clients and observers -------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.01)


def chat_body(model: str | None = "other", content: str = "hi", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": content}], **fields}
    if model is not None:
        body["model"] = model
    return body


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post_raw(
    url: str, body: bytes, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> RawResponse:
    """POST exactly these bytes (no client-side validation), and the response as it came."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        sent = {"content-type": "application/json", **(headers or {})}
        connection.request("POST", parts.path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        found = {k.lower(): v for k, v in response.getheaders()}
        return RawResponse(response.status, found, data)
    finally:
        connection.close()


def curl(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """curl, silent but for errors, with the response headers in stdout (`-i`)."""
    return subprocess.run(
        ["curl", "-sS", "-i", "--max-time", str(int(timeout)), *args],
        capture_output=True, text=True, timeout=timeout + 10,
    )  # fmt: skip


def split_http(output: str) -> tuple[int, dict[str, str], str]:
    """curl -i's output: (status, headers with lower-cased names, body)."""
    text = output.replace("\r\n", "\n")
    while text.startswith("HTTP/1.1 100"):  # `Expect: 100-continue` before a large upload
        text = text.partition("\n\n")[2]
    head, _, body = text.partition("\n\n")
    status_line, *header_lines = head.split("\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def sse_data(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order (comments and blank lines dropped)."""
    return [line[len("data: ") :] for line in body.split("\n") if line.startswith("data: ")]


# -- TCP connections as the kernel sees them (Linux /proc/net/tcp) ---------------------------

TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}  # fmt: skip


@dataclass(frozen=True)
class Socket:
    local_port: int
    remote_port: int
    state: str


def sockets() -> list[Socket]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, state = fields[1], fields[2], fields[3]
            found.append(
                Socket(int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16),
                       TCP_STATES.get(state, state))
            )  # fmt: skip
    return found


def served_connections(port: int) -> list[Socket]:
    """The server side of the connections accepted on `port` that it has not closed yet: a
    connection its client closed but the server kept is CLOSE_WAIT, and counts."""
    done = {"LISTEN", "TIME_WAIT", "CLOSE", "LAST_ACK"}
    return [s for s in sockets() if s.local_port == port and s.state not in done]


def live_connections(port: int) -> list[Socket]:
    """The server side of the connections on `port` whose client has not hung up."""
    return [s for s in sockets() if s.local_port == port and s.state == "ESTABLISHED"]


# -- the reservations a gateway holds (its budget in flight), read from its SQLite store ------


def in_flight(state: str) -> int:
    """How many reservations are held in the SQLite store `state` (sqlite://PATH): attempts
    sent and not settled. A request that ends, however it ends, must leave none."""
    path = state[len("sqlite://") :]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT count(*) FROM pending").fetchall()
    except sqlite3.OperationalError:  # no table yet: nothing was ever reserved
        return 0
    finally:
        db.close()
    return int(rows[0][0])


# -- load: many concurrent clients in a process of their own ----------------------------------


async def _load(count: int, model: str, urls: list[str]) -> dict[str, Any]:
    """`count` requests at once with openai.AsyncOpenAI, spread over `urls` in turn; every
    other one streams. Returns the answers in order and how long they all took."""
    import asyncio

    import openai

    clients = [
        openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)
        for url in urls
    ]

    async def ask(n: int) -> str:
        client = clients[n % len(clients)]
        messages: Any = [{"role": "user", "content": f"question {n}"}]
        if n % 2:
            stream = await client.chat.completions.create(
                model=model, messages=messages, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        completion = await client.chat.completions.create(model=model, messages=messages)
        return completion.choices[0].message.content or ""

    started = time.monotonic()
    try:
        answers = await asyncio.gather(*(ask(n) for n in range(count)), return_exceptions=True)
    finally:
        for client in clients:
            await client.close()
    elapsed = time.monotonic() - started
    return {"elapsed": elapsed, "answers": [a if isinstance(a, str) else repr(a) for a in answers]}


def run_load(count: int, model: str, gateways: list[Gateway]) -> dict[str, Any]:
    """The clients run in a process of their own, as they would: in the test's process they
    would compete with the fake provider for the GIL and skew the times it counts requests at."""
    urls = [g.base_url for g in gateways]
    done = subprocess.run(
        [sys.executable, "-m", "tests.gateway", "load", str(count), model, *urls],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


if __name__ == "__main__":
    import asyncio

    if sys.argv[1:2] == ["load"]:
        result = asyncio.run(_load(int(sys.argv[2]), sys.argv[3], sys.argv[4:]))
        sys.stdout.write(json.dumps(result) + "\n")
