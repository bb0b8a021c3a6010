"""FakeServer: lifecycle of the HTTP server, the provider registry and the request log.

Stopping must be prompt even with stalled handlers or idle keep-alive connections, so the
server tracks its connections and threads itself (instead of socketserver's unbounded join),
wakes its accept loop through a socket pair, and handlers wait on a shared Event.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .handler import FakeHandler, HandlerContext
from .log import LoggedRequest, RequestLog
from .provider import FakeKey, FakeProvider

HOST = "127.0.0.1"
JOIN_TIMEOUT = 5.0  # per handler thread on stop(); they exit at once unless the fake has a bug


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the workers itself, with a deadline
    request_queue_size = 128  # the router tests fire bursts of concurrent requests

    def __init__(self, context: HandlerContext) -> None:
        handler = type("BoundFakeHandler", (FakeHandler,), {"context": context})
        self._conns: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        self._guard = threading.Lock()
        super().__init__((HOST, 0), handler)
        self.timeout = 0  # handle_request() is only called when a connection is queued

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fakeprovider-conn-{client_address[1]}",
            daemon=True,
        )
        with self._guard:
            self._conns.add(request)
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(worker)
        worker.start()

    def shutdown_request(self, request: Any) -> None:
        with self._guard:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client hanging up mid-request is routine here, not a fake bug
        super().handle_error(request, client_address)

    def abort_connections(self) -> None:
        """Wake handlers blocked reading an idle keep-alive connection (or writing)."""
        with self._guard:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by its handler
                conn.shutdown(socket.SHUT_RDWR)

    def join_workers(self, timeout: float) -> None:
        with self._guard:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout)


class FakeServer:
    """An OpenAI-compatible fake serving several providers under /<provider>/v1."""

    def __init__(self) -> None:
        self._providers: dict[str, FakeProvider] = {}
        self._registry_lock = threading.Lock()
        self._log = RequestLog()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._loop: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self.port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeServer:
        """Bind a free port on 127.0.0.1 and serve; ready to accept when this returns."""
        if self._httpd is not None or self._stopping.is_set():
            raise RuntimeError("a FakeServer can be started only once")
        context = HandlerContext(self._find_provider, self._log, self._stopping)
        self._httpd = _HTTPServer(context)  # bound and listening: connects queue from now
        self.port = self._httpd.server_address[1]
        self._wake = socket.socketpair()
        self._loop = threading.Thread(target=self._serve, name="fakeprovider-accept", daemon=True)
        self._loop.start()
        return self

    def _serve(self) -> None:
        # Our own accept loop: serve_forever() only notices shutdown() every poll_interval,
        # which would add up to that much to every test's teardown.
        assert self._httpd is not None and self._wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake[0]:
                        return
                    self._httpd.handle_request()  # timeout 0: accepts what is queued, never waits

    def stop(self) -> None:
        """Close the port, cut every stall short, drop connections and join all threads."""
        if self._httpd is None:
            return
        self._stopping.set()
        assert self._wake is not None and self._loop is not None
        self._wake[1].send(b"x")
        self._loop.join()
        self._httpd.server_close()
        self._httpd.abort_connections()
        self._httpd.join_workers(JOIN_TIMEOUT)
        for sock in self._wake:
            sock.close()
        self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeServer not started: call start() first")
        return f"http://{HOST}:{self.port}"

    # -- providers -------------------------------------------------------------------------

    def provider(
        self, name: str, dialect: str = "openai", models: Iterable[str] | None = None
    ) -> FakeProvider:
        """Register (or get back) a provider served under /<name>/v1."""
        with self._registry_lock:
            existing = self._providers.get(name)
            if existing is not None:
                if existing.dialect_name != dialect:
                    raise ValueError(f"provider {name!r} already uses {existing.dialect_name!r}")
                return existing
            created = FakeProvider(name, dialect, models, lambda: self.url)
            self._providers[name] = created
            return created

    @property
    def providers(self) -> dict[str, FakeProvider]:
        with self._registry_lock:
            return dict(self._providers)

    def _find_provider(self, name: str) -> FakeProvider | None:
        with self._registry_lock:
            return self._providers.get(name)

    def refused_base_url(self) -> str:
        """A base URL whose port has nothing listening, so connecting is refused."""
        # Binding without listen() reserves a free port; once closed, connects get an RST.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        return f"http://{HOST}:{port}/v1"

    # -- request log -----------------------------------------------------------------------

    @property
    def log(self) -> list[LoggedRequest]:
        """All requests so far, in arrival order (a copy)."""
        return self._log.entries()

    def calls(
        self,
        provider: str | FakeProvider | None = None,
        key: str | FakeKey | None = None,
        outcome: str | None = None,
    ) -> list[LoggedRequest]:
        """The log filtered by provider (name or object), key (string or FakeKey), outcome."""
        name = provider.name if isinstance(provider, FakeProvider) else provider
        return self._log.filter(provider=name, key=key, outcome=outcome)

    def clear_log(self) -> None:
        self._log.clear()
