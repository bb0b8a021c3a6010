"""Kept-alive connections per origin on asyncio, each response parsed by httptools: one
request at a time per connection, its response read whole or line by line."""

from __future__ import annotations

import asyncio
import codecs
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import cast

import httptools

from llmroute.http1.body import header_map, inflater_for, split_lines
from llmroute.http1.errors import ConnectError, HTTPClientError, ReadError, ReadTimeout
from llmroute.http1.request import Target

KEEPALIVE_S = 5.0  # an idle connection older than this is closed, not reused (as httpx)
IDLE_PER_ORIGIN = 64  # kept-alive connections per origin; more are closed when released
PAUSE_AT = 1 << 20  # unread body bytes at which reading pauses until the reader catches up


class Connection(asyncio.Protocol):
    """One kept-alive connection: a response at a time, fed by the event loop into httptools."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._begin()

    def _begin(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.head_done = self.complete = self.keep_alive = False
        self.sending = False  # a request is out, its response not all in
        self.error: HTTPClientError | None = None
        self._close_delimited = False

    # -- the event loop's side -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self.sending:  # nothing was asked: the stream is out of step
            self._fail(ReadError("the server sent data that nothing asked for", self.target.url))
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ReadError(f"the server sent a malformed response ({exc})", self.target.url))
            self.abort()

    def eof_received(self) -> bool:
        if self.head_done and self._close_delimited:  # a body that runs until the close
            self.complete = True
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            why = f" ({exc})" if exc else ""
            self._fail(ReadError(f"the server closed the connection{why}", self.target.url))
        self._wake()

    # -- httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._interim():
            return
        self.head_done = True
        self.keep_alive = self.parser.should_keep_alive()  # the parser's own answer, now
        names = {name.lower() for name, _ in self.raw_headers}
        self._close_delimited = not names & {b"content-length", b"transfer-encoding"}
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_AT and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim():  # 100 Continue, 103 Early Hints: the answer is still to come
            self.raw_headers = []
            return
        self.complete, self.sending = True, False
        self._wake()

    def _interim(self) -> bool:
        return 100 <= self.parser.get_status_code() < 200

    # -- the request's side --------------------------------------------------------------

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self._begin()
        self.sending = True
        self.transport.write(data)

    async def wait(self) -> None:
        """Until the event loop has something new for the reader."""
        if self.error is not None:
            raise self.error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        data = b"".join(self.body)
        self.body.clear()
        if self.buffered > PAUSE_AT and self.transport is not None:
            self.transport.resume_reading()
        self.buffered = 0
        return data

    @property
    def idle(self) -> bool:
        """Nothing to read on the socket: a server that closed it meanwhile (or sent anything
        at all) makes it readable, whether or not the event loop has seen that yet."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return True
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
        return not readable

    @property
    def reusable(self) -> bool:
        return (
            self.complete and self.keep_alive and not self.closed and not self.body
        )  # fmt: skip

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: HTTPClientError) -> None:
        self.error = self.error or error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Response:
    """A response whose headers are in; its body is read with `aread` or `aiter_lines`, and
    `aclose` gives the connection back (when the body was read to its end) or drops it."""

    def __init__(self, client: Client, connection: Connection, timeout: float | None) -> None:
        self._client, self._connection, self._timeout = client, connection, timeout
        self.url = connection.target.url
        self.status_code = connection.parser.get_status_code()
        self.headers: Mapping[str, str] = header_map(connection.raw_headers)
        self.content = b""
        encoding = self.headers.get("content-encoding", "identity").lower()
        self._inflater = inflater_for(encoding, self.url)
        self._closed = False

    async def aread(self) -> bytes:
        self.content = b"".join([part async for part in self.aiter_bytes()])
        return self.content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        connection = self._connection
        try:
            while True:
                data = connection.take()
                if data:
                    yield self._inflater.feed(data) if self._inflater else data
                elif connection.complete:
                    if self._inflater:
                        self._inflater.finish()
                    return
                else:
                    async with _limit(self._timeout, self.url):
                        await connection.wait()
        except BaseException:  # a timeout, a cancel, a break: the rest is never read
            # Unless the response was given back already: an abandoned iterator is closed
            # when it is collected, by then its connection may carry another request.
            if not self._closed:
                connection.abort()
            raise

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Lines as SSE splits them (LF, CRLF or CR), decoded as UTF-8."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        async for data in self.aiter_bytes():
            pending += decoder.decode(data)
            lines, pending = split_lines(pending)
            for line in lines:
                yield line
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending.rstrip("\r")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.release(self._connection)


class Client:
    """Kept-alive connections per origin, taken one per request and given back once its
    response was read to the end."""

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls_factory = tls
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, int, bool], list[Connection]] = {}

    async def post(
        self,
        target: Target,
        request: bytes,
        *,
        timeout: float | None,
        sent: Callable[[], None],
    ) -> Response:
        """Send `request` (built by `request_bytes`); return once the response's headers are
        in. A request is sent once: a connection that breaks before answering is a failure
        for the router to judge, as it was with httpx (the server may have seen it)."""
        connection = self._reuse(target) or await self._connect(target, timeout)
        try:
            connection.send(request)
            sent()
            while not connection.head_done:
                async with _limit(timeout, target.url):
                    await connection.wait()
            return Response(self, connection, timeout)
        except BaseException:
            connection.abort()
            raise

    def release(self, connection: Connection) -> None:
        if not connection.reusable:
            connection.abort()
            return
        connection.idle_since = time.monotonic()
        target = connection.target
        idle = self._idle.setdefault((target.host, target.port, target.tls), [])
        if len(idle) >= IDLE_PER_ORIGIN:
            connection.abort()
            return
        idle.append(connection)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.abort()

    def _reuse(self, target: Target) -> Connection | None:
        idle = self._idle.get((target.host, target.port, target.tls))
        too_old = time.monotonic() - KEEPALIVE_S
        loop = asyncio.get_running_loop()
        while idle:
            connection = idle.pop()
            if connection.loop is not loop:  # a router used again under a new event loop
                continue  # its loop is gone, and the connection with it
            if not connection.closed and connection.idle_since > too_old and connection.idle:
                return connection
            connection.abort()
        return None

    async def _connect(self, target: Target, timeout: float | None) -> Connection:
        connection = Connection(target)
        try:
            async with _limit(timeout, target.url):
                await self._open(connection, target)
        except OSError as exc:  # refused, unreachable, unresolved, TLS (an OSError too)
            raise ConnectError(f"cannot connect to {target.authority} ({exc})", target.url) from exc
        return connection

    async def _open(self, connection: Connection, target: Target) -> None:
        """Each address the name resolves to, in turn. A server that is down refuses on all
        of them (`localhost`: ::1 and 127.0.0.1), and that is said as one refusal: asyncio
        would say "Multiple exceptions" and lose what they were."""
        loop = asyncio.get_running_loop()
        tls = self._context() if target.tls else None
        addresses = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        failures: list[OSError] = []
        for family, _, _, _, address in addresses:
            try:
                await loop.create_connection(
                    lambda: connection, str(address[0]), int(address[1]), family=family,
                    ssl=tls, server_hostname=target.host if tls else None,
                )  # fmt: skip
                return
            except OSError as exc:
                failures.append(exc)
        refused = [f for f in failures if isinstance(f, ConnectionRefusedError)]
        raise refused[0] if len(refused) == len(failures) else failures[-1]

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self._tls_factory()
        return self._tls


def _limit(timeout: float | None, url: str) -> AbstractAsyncContextManager[object]:
    return _Timeout(timeout, url) if timeout is not None else nullcontext()


class _Timeout:
    """asyncio.timeout, raising ReadTimeout (ours, for sdk_errors to map) instead."""

    def __init__(self, seconds: float, url: str) -> None:
        self._timeout = asyncio.timeout(seconds)
        self._url = url

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._timeout.__aexit__(*exc_info)  # type: ignore[arg-type]
        except TimeoutError:
            raise ReadTimeout("no answer within the timeout", self._url) from None
