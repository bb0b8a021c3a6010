"""The lean HTTP/1.1 client under the chat calls, against real sockets on 127.0.0.1: servers
scripted byte by byte (asyncio) for what the fake provider does not do (close-delimited and
compressed bodies, CRLF split across reads, malformed responses, idle connections dropped by
the server), and a TLS server with a certificate from a throwaway CA (trustme)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import openai
import pytest
import trustme

from llmroute import http1
from llmroute.classify import classify
from llmroute.failures import FailureKind
from llmroute.sse import HTTP, sdk_errors
from llmroute.upstream import ChatRoute

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = b'{"ok": true}'


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request: its head and its Content-Length body; b"" once the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    return head + await reader.readexactly(length)


@asynccontextmanager
async def server(
    make: Callable[[Server], Handler], tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    """A server on 127.0.0.1 whose connections are each served by `make(server)`."""
    scripted = Server()
    scripted.handler = make(scripted)
    listening = await asyncio.start_server(scripted.serve, "127.0.0.1", 0, ssl=tls)
    port = listening.sockets[0].getsockname()[1]
    scripted.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"
    try:
        yield scripted
    finally:
        listening.close()
        for writer in scripted.writers:
            writer.close()


class Server:
    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.base_url = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            assert self.handler is not None
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def answering(*responses: bytes, keep_open: bool = True) -> Callable[[Server], Handler]:
    """A handler that answers each request on a connection with the next response."""

    def make(scripted: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for response in responses:
                request = await read_request(reader)
                if not request:
                    return
                scripted.requests.append(request)
                writer.write(response)
                await writer.drain()
            if keep_open:
                await reader.read()  # until the client closes

        return handle

    return make


def ok(body: bytes = BODY, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


@asynccontextmanager
async def client() -> AsyncIterator[http1.Client]:
    lean = http1.Client(tls=ssl.create_default_context)
    try:
        yield lean
    finally:
        await lean.aclose()


async def post(lean: http1.Client, base_url: str, timeout: float | None = 5.0) -> http1.Response:
    target = http1.Target.parse(base_url)
    head = http1.request_bytes(target, "chat/completions", [("authorization", "Bearer k")])
    return await lean.post(target, http1.with_body(head, b"{}"), timeout=timeout, sent=lambda: None)


async def test_a_kept_alive_connection_serves_the_next_request() -> None:
    async with server(answering(ok(), ok(b'{"n": 2}'))) as running, client() as lean:
        first = await post(lean, running.base_url)
        assert (first.status_code, await first.aread()) == (200, BODY)
        await first.aclose()
        second = await post(lean, running.base_url)
        assert await second.aread() == b'{"n": 2}'
        await second.aclose()
    assert running.connections == 1
    assert running.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in running.requests[0]


async def test_a_connection_the_server_dropped_while_idle_is_replaced() -> None:
    # The server answers one request per connection and then closes it, without saying so.
    async with server(answering(ok(), keep_open=False)) as running, client() as lean:
        for _ in range(3):
            response = await post(lean, running.base_url)
            assert await response.aread() == BODY
            await response.aclose()
    assert running.connections == 3


async def test_a_connection_whose_response_was_not_read_is_not_reused() -> None:
    big = b"x" * 100_000
    async with server(answering(ok(big), ok())) as running, client() as lean:
        response = await post(lean, running.base_url)
        await response.aclose()  # unread: the connection is dropped, not pooled
        again = await post(lean, running.base_url)
        assert await again.aread() == big  # a new connection, and its first response
        await again.aclose()
    assert running.connections == 2


TWO_LOOPS = """
import asyncio, ssl
from llmroute import http1
from tests.fakeprovider import FakeServer

with FakeServer() as server:
    provider = server.provider("p", dialect="openai")
    provider.key("k")
    target = http1.Target.parse(provider.base_url)
    head = http1.request_bytes(target, "chat/completions", [("authorization", "Bearer k")])
    lean = http1.Client(tls=ssl.create_default_context)

    async def ask():
        body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
        response = await lean.post(target, http1.with_body(head, body), timeout=5,
                                   sent=lambda: None)
        await response.aread()
        await response.aclose()
        return response.status_code

    # The first loop leaves a pooled connection behind; the second cannot use it.
    print(asyncio.run(ask()), asyncio.run(ask()))
"""


def test_a_client_used_again_under_a_new_event_loop_connects_afresh() -> None:
    # In a process of its own: the first loop's socket is abandoned with that loop.
    done = subprocess.run([sys.executable, "-c", TWO_LOOPS], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)  # fmt: skip
    assert done.stdout.split() == ["200", "200"], done.stderr


@pytest.mark.parametrize(
    ("response", "body"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world", id="chunked"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the close",
            b"until the close", id="close-delimited"),
        pytest.param(ok(gzip.compress(BODY), "content-encoding: gzip"), BODY, id="gzip"),
    ],
)  # fmt: skip
async def test_bodies_in_every_framing(response: bytes, body: bytes) -> None:
    keep = b"transfer-encoding" in response or b"content-length" in response
    async with server(answering(response, keep_open=keep)) as running, client() as lean:
        answer = await post(lean, running.base_url)
        assert await answer.aread() == body
        await answer.aclose()


async def test_lines_split_across_reads_and_crlf_split_in_two() -> None:
    parts = [b'data: {"a"', b": 1}\r", b"\n\r\ndata: [DONE]\r\n", b"\r\n"]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")  # fmt: skip
        for part in parts:
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await reader.read()

    async with server(lambda _: handle) as running, client() as lean:
        answer = await post(lean, running.base_url)
        lines = [line async for line in answer.aiter_lines()]
        await answer.aclose()
    assert lines == ['data: {"a": 1}', "", "data: [DONE]", ""]


async def test_repeated_headers_are_joined_and_names_lowered() -> None:
    response = ok(BODY, "X-RateLimit-Remaining-Requests: 9", "Via: a", "Via: b")
    async with server(answering(response)) as running, client() as lean:
        answer = await post(lean, running.base_url)
        await answer.aread()
        await answer.aclose()
    assert answer.headers["x-ratelimit-remaining-requests"] == "9"
    assert answer.headers["via"] == "a, b"


async def failure_of(call: Callable[[], Awaitable[object]]) -> FailureKind:
    """What classify makes of the client's error, once sdk_errors has mapped it."""
    with pytest.raises(openai.APIError) as raised, sdk_errors():
        await call()
    failure = classify(raised.value, now=0.0, redact=str)
    assert failure is not None
    return failure.kind


async def test_malformed_and_cut_responses_are_connection_failures() -> None:
    garbage = answering(b"SMTP ready\r\n\r\n", keep_open=False)
    cut = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part", keep_open=False)
    for make in (garbage, cut):
        async with server(make) as running, client() as lean:

            async def call(url: str = running.base_url) -> bytes:
                return await (await post(lean, url)).aread()

            assert await failure_of(call) is FailureKind.UNAVAILABLE


async def test_a_silent_server_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with server(lambda _: silent) as running, client() as lean:
        assert await failure_of(lambda: post(lean, running.base_url, 0.2)) is FailureKind.TIMEOUT


async def test_a_refused_connection_says_refused() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    async with client() as lean:
        with pytest.raises(openai.APIConnectionError) as raised, sdk_errors():
            await post(lean, f"http://127.0.0.1:{port}/v1")
    failure = classify(raised.value, now=0.0, redact=str)
    assert failure is not None and failure.provider_down
    assert failure.message == "connection refused"


async def test_a_name_with_two_addresses_both_refusing_says_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = []
    for _ in range(2):  # two closed ports: two refusals with different messages
        listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        ports.append(listening.sockets[0].getsockname()[1])
        listening.close()
        await listening.wait_closed()
    loop = asyncio.get_running_loop()

    async def two_addresses(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)) for p in ports]

    monkeypatch.setattr(loop, "getaddrinfo", two_addresses)
    async with client() as lean:
        with pytest.raises(openai.APIConnectionError) as raised, sdk_errors():
            await post(lean, f"http://localhost:{ports[0]}/v1")
    failure = classify(raised.value, now=0.0, redact=str)
    assert failure is not None and failure.message == "connection refused"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


async def test_tls_with_a_trusted_certificate(authority: trustme.CA) -> None:
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(served)

    def trusting() -> ssl.SSLContext:
        context = ssl.create_default_context()
        authority.configure_trust(context)
        return context

    async with server(answering(ok(), ok()), tls=served) as running:
        lean = http1.Client(tls=trusting)
        try:
            for _ in range(2):
                answer = await post(lean, running.base_url)
                assert await answer.aread() == BODY
                await answer.aclose()
        finally:
            await lean.aclose()
        assert running.connections == 1  # one handshake, then kept alive
        async with client() as untrusting:  # the system's roots do not know this CA
            assert await failure_of(lambda: post(untrusting, running.base_url)) is (
                FailureKind.UNAVAILABLE
            )


@pytest.mark.parametrize(
    ("url", "authority_", "path"),
    [
        ("https://api.groq.com/openai/v1", "api.groq.com", "/openai/v1/"),
        ("http://localhost:11434/v1/", "localhost:11434", "/v1/"),
        ("http://[::1]:8080/v1", "[::1]:8080", "/v1/"),
        ("http://example.com", "example.com", "/"),
    ],
)
def test_targets_from_base_urls(url: str, authority_: str, path: str) -> None:
    target = http1.Target.parse(url)
    assert (target.authority, target.path) == (authority_, path)


@pytest.mark.parametrize("url", ["ftp://x/v1", "http://x:99999/v1", "http:///v1", "x:1"])
def test_base_urls_that_cannot_be_used(url: str) -> None:
    with pytest.raises(http1.InvalidURL):
        http1.Target.parse(url)


def test_a_header_with_a_line_break_is_refused() -> None:
    target = http1.Target.parse("http://x/v1")
    with pytest.raises(http1.InvalidURL):
        http1.request_bytes(target, "chat/completions", [("x-evil", "a\r\nHost: y")])


def test_proxied_urls_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert not http1.proxied("https://api.groq.com/openai/v1/chat/completions")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert http1.proxied("https://api.groq.com/openai/v1/chat/completions")
    assert not http1.proxied("http://127.0.0.1:8000/v1/chat/completions")  # not https
    monkeypatch.setenv("NO_PROXY", "groq.com")
    assert not http1.proxied("https://api.groq.com/openai/v1/chat/completions")


def test_the_request_error_names_where_it_went() -> None:
    error = http1.ConnectError("cannot connect", "http://127.0.0.1:1/v1/")
    with pytest.raises(openai.APIConnectionError) as raised, sdk_errors():
        raise error
    assert isinstance(raised.value.request, HTTP.Request)
    assert str(raised.value.request.url) == "http://127.0.0.1:1/v1/"


async def test_a_timeout_while_reading_the_body_closes_the_connection() -> None:
    closed = asyncio.Event()

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await reader.read()  # until the client closes
        closed.set()

    async with server(lambda _: stalls) as running, client() as lean:
        answer = await post(lean, running.base_url, timeout=0.1)
        with pytest.raises(http1.ReadTimeout):
            await answer.aread()
        await asyncio.wait_for(closed.wait(), 5)  # given up at once, not left open


async def test_a_request_is_never_sent_twice() -> None:
    """A kept-alive connection that breaks after taking the request may have been answered
    upstream (and billed): the failure goes to the router, the request is not resent."""

    def make(running: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            running.requests.append(await read_request(reader))
            writer.write(ok())
            running.requests.append(await read_request(reader))
            await asyncio.sleep(0.1)  # works on it, then the connection breaks

        return handle

    async with server(make) as running, client() as lean:
        first = await post(lean, running.base_url)
        await first.aread()
        await first.aclose()
        assert await failure_of(lambda: post(lean, running.base_url)) is FailureKind.UNAVAILABLE
    assert len(running.requests) == 2 and running.connections == 1


async def test_an_interim_response_is_not_the_answer() -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n"

    async def hints_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(early)
        await writer.drain()
        await asyncio.sleep(0.05)  # the hints arrive on their own, the answer later
        writer.write(ok())
        await read_request(reader)
        writer.write(ok(b'{"n": 2}'))
        await reader.read()

    async with server(lambda _: hints_first) as running, client() as lean:
        first = await post(lean, running.base_url)
        assert (first.status_code, await first.aread()) == (200, BODY)
        await first.aclose()
        second = await post(lean, running.base_url)
        assert await second.aread() == b'{"n": 2}'  # its own answer, on the same connection
        await second.aclose()
    assert running.connections == 1


@pytest.mark.parametrize(
    "body", [b"not gzip at all", gzip.compress(BODY)[:-9]], ids=["corrupt", "cut"]
)
async def test_encodings_asked_for_and_a_broken_body(body: bytes) -> None:
    broken = ok(body, "content-encoding: gzip")
    async with server(answering(broken, keep_open=False)) as running, client() as lean:

        async def call() -> bytes:
            return await (await post(lean, running.base_url)).aread()

        assert await failure_of(call) is FailureKind.UNAVAILABLE
    assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in running.requests[0]


def test_a_chat_route_never_shows_its_key() -> None:
    secret = "sk-live-0123456789abcdef"
    route = ChatRoute(
        client=None,  # type: ignore[arg-type]
        url="https://api.example.com/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        target=None,
        head=f"Authorization: Bearer {secret}\r\n".encode(),
    )
    assert secret not in repr(route)


async def test_an_abandoned_line_iterator_leaves_a_pooled_connection_alone() -> None:
    """A reader that stops early (an error event) and gives the response back: the iterator
    it dropped is closed later, when collected, and must not cut the connection that by then
    carries the next request."""
    sse = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked"
           b"\r\n\r\n1c\r\ndata: {\"error\": \"stopped\"}\n\n\r\n0\r\n\r\n")  # fmt: skip

    async def slow_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sse)
        await read_request(reader)
        await asyncio.sleep(0.1)  # the dropped iterators are closed while this one waits
        writer.write(ok())
        await reader.read()

    async with server(lambda _: slow_second) as running, client() as lean:
        answer = await post(lean, running.base_url)
        async for _ in answer.aiter_lines():
            break  # the whole body is in: the connection goes back to the pool
        await answer.aclose()
        gc.collect()
        second = await post(lean, running.base_url)  # on that pooled connection
        assert await second.aread() == BODY
        await second.aclose()
    assert running.connections == 1
