"""The HTTP layer: read a request, ask dispatch() what to answer, execute the WirePlan.

http.server is used (rather than a framework) because faults need the raw socket: a reset is
an RST from SO_LINGER=0, a cut is a short body under a full Content-Length, a broken stream
is chunked encoding without its terminating chunk.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from .bodies import reason_phrase
from .dispatch import Incoming, dispatch
from .log import RequestLog
from .provider import FakeProvider
from .render import Pause, WirePlan


class HandlerContext:
    """What handlers share with the FakeServer that owns them."""

    def __init__(
        self,
        find_provider: Callable[[str], FakeProvider | None],
        log: RequestLog,
        stopping: threading.Event,
    ) -> None:
        self.find_provider = find_provider
        self.log = log
        self.stopping = stopping  # set by stop(): every wait below is cut short by it


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections to real APIs
    # TCP_NODELAY: headers and body (and each SSE event) leave at once; with Nagle, the
    # client's delayed ACK adds ~40 ms to every response written in two parts.
    disable_nagle_algorithm = True
    timeout = 30  # seconds an idle keep-alive connection may sit before we drop it
    context: HandlerContext  # set on a subclass by the server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log replaces stderr access logs, which would clutter test output

    def _serve(self) -> None:
        at = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        incoming = Incoming(self.command, self.path, self.headers.get("Authorization"), raw, at)
        plan = dispatch(incoming, self.context.find_provider, self.context.log)
        try:
            self._execute(plan)
        except OSError:
            # The client gave up (its timeout, or a reset) while we were answering.
            self.close_connection = True

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server stops first; True means stop and abandon the reply."""
        if seconds > 0 and self.context.stopping.wait(seconds):
            self.close_connection = True
            return True
        return self.context.stopping.is_set()

    def _execute(self, plan: WirePlan) -> None:
        if self._wait(plan.delay):
            return
        if plan.action == "reset":
            self._reset()
            return
        self.send_response(plan.status, reason_phrase(plan.status))
        for name, value in plan.headers.items():
            self.send_header(name, value)
        if plan.action == "stream":
            self._stream(plan)
            return
        self.send_header("Content-Length", str(len(plan.body)))
        self.end_headers()
        if plan.action == "cut":
            # The declared length promises the whole body; closing after half breaks it.
            self.wfile.write(plan.body[: len(plan.body) // 2])
            self.close_connection = True
            return
        self.wfile.write(plan.body)

    def _stream(self, plan: WirePlan) -> None:
        # Chunked encoding, so an abort is detectable: a missing final chunk is an error for
        # the client, whereas Connection: close would make any early EOF look like a clean end.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in plan.events:
            if isinstance(event, Pause):
                if self._wait(event.seconds):
                    return
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        if plan.abort:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        # SO_LINGER on with timeout 0 makes close() send an RST instead of a FIN. The fd is
        # really closed in finish(), when rfile/wfile release it; nothing is written before.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
