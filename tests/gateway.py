"""`llmroute serve` as a real subprocess for tests: started on a free port, its stderr (the
access log) collected line by line, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 30.0  # the first import of the SDK on a loaded 2-core machine
_ADDRESS = re.compile(r"llmroute gateway on (http://\S+)/v1")


class Gateway:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._started = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

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

    def log_lines(self, fragment: str = "/v1/chat/completions") -> list[str]:
        return [line for line in self.lines if fragment in line]

    def wait_for_log(self, count: int, fragment: str = "/v1/chat/completions") -> list[str]:
        """The access log is written when a request ends: wait for `count` such lines."""
        deadline = time.monotonic() + 10
        while len(self.log_lines(fragment)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.log_lines(fragment)

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


@contextmanager
def running_gateway(
    config: Path, env: Mapping[str, str], *args: str, cwd: Path | None = None
) -> Iterator[Gateway]:
    """A gateway over `config`, with the provider keys in `env`, stopped on the way out."""
    process = subprocess.Popen(
        serve_command(config, *args),
        env={**os.environ, **env}, cwd=cwd, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    gateway = Gateway(process)
    try:
        gateway.wait_started()
        yield gateway
    finally:
        gateway.stop()
