"""`llmroute ask` through a running gateway: HTTP/1.1 on a plain socket, standard library only.

The point is start-up: a process that asks a resident gateway needs neither the openai SDK nor
the router (most of a second between them), nor `http.client` (its email parser costs more
than the request). Answers come back as the gateway's JSON: the answer, and its account of the
request (`x-llmroute-report`), from which the caller prints the same report, `--json` and exit
code as the in-process path. Errors become llmroute's own (imported only when one happens).
"""

from __future__ import annotations

import json
import os
import socket
from urllib.parse import urlsplit

from llmroute.gateway.discovery import announcement_path, read_announcement

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from llmroute.attempt import Attempt, Result
    from llmroute.errors import LLMRouteError, StreamBrokenError

URL_ENV = "LLMROUTE_URL"
TOKEN_ENV = "LLMROUTE_SERVER_TOKEN"
REPORT_HEADER = "x-llmroute-report"  # as in gateway.wire, which this module must not import
CONNECT_TIMEOUT_S = 5.0  # a gateway that does not accept by then is not there: route here
LIMIT = 64 * 1024  # of a status or header line


class GatewayUnreachable(Exception):
    """Nothing listens there: nothing was sent, routing in process is safe."""


class GatewayTarget:
    def __init__(self, *, url: str, token: str | None, found: str) -> None:
        self.url = url  # http://host:port
        self.token = token
        self.found = found  # how: "LLMROUTE_URL" or the announcement file


def find_gateway(
    env: Mapping[str, str], state_dir: str, config: str | None
) -> GatewayTarget | None:
    """`LLMROUTE_URL` always; else a local gateway that announced itself, if it is alive and
    serves `config` (the file this process would load, resolved; None: the built-in
    registry)."""
    token = env.get(TOKEN_ENV) or None
    if env.get(URL_ENV):
        return GatewayTarget(url=_base(env[URL_ENV]), token=token, found=URL_ENV)
    path = announcement_path(state_dir)
    announced = read_announcement(path)
    if announced is None or not _alive(announced.pid) or announced.config != config:
        return None
    return GatewayTarget(url=announced.url, token=token, found=path)


def unreachable_note(target: GatewayTarget, exc: GatewayUnreachable) -> str:
    return f"the gateway found by {target.found} did not answer ({exc}): routing here"


def _base(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class GatewayCall:
    """One chat request to a gateway: `open()`, then `complete()`, or iterate `stream()`
    and read `.report`. Answers are the gateway's JSON; `result()` makes a Result of them."""

    def __init__(
        self,
        target: GatewayTarget,
        messages: Sequence[Mapping[str, str]],
        *,
        model: str | None,
        params: Mapping[str, Any],
        settings: Mapping[str, float | None],
    ) -> None:
        """`model`: a task, a pinned provider:model, or None (the default task); `settings`:
        deadline, timeout and ttft_timeout, each None for the gateway's own."""
        self.target = target
        self.body = {"messages": messages, **params, **({"model": model} if model else {})}
        self.headers = {"content-type": "application/json", REPORT_HEADER: "1"}
        for name, value in settings.items():
            if value is not None:
                self.headers[f"x-llmroute-{name.replace('_', '-')}"] = repr(value)
        if target.token:
            self.headers["authorization"] = f"Bearer {target.token}"
        self.report: dict[str, Any] = {}  # the gateway's account, once the answer is in
        self._socket: socket.socket | None = None

    def open(self) -> None:
        """Connect; GatewayUnreachable when nothing answers (nothing was sent)."""
        try:
            split = urlsplit(self.target.url)
            address = (split.hostname or "127.0.0.1", split.port or 80)
            self._socket = socket.create_connection(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, ValueError) as exc:
            raise GatewayUnreachable(f"{self.target.url}: {_reason(exc)}") from None
        # No read timeout: the gateway keeps the request's deadline (its own, or the one sent
        # here), and says nothing while it waits for a cooldown; a gateway gone closes the
        # connection, and Ctrl-C ends the wait.
        self._socket.settimeout(None)

    def complete(self) -> dict[str, Any]:
        """The provider's answer as the gateway passed it on; its account in `.report`."""
        with self._send(stream=False) as response:
            payload = _json(b"".join(response.body()))
            if response.status >= 400:
                raise self._error(response.status, payload)
            self.report = self._checked(_dict(_json(response.header(REPORT_HEADER, "{}"))))
        return _dict(payload)

    def stream(self) -> Iterator[str]:
        """The answer's text as it comes; `.report` once it ended with `[DONE]`."""
        with self._send(stream=True) as response:
            if response.status >= 400:
                raise self._error(response.status, _json(b"".join(response.body())))
            yield from self._events(response)

    def _events(self, response: Response) -> Iterator[str]:
        parts: list[str] = []
        report: dict[str, Any] = {}
        for raw in response.lines():
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith(": llmroute "):
                report = _dict(_json(line[len(": llmroute ") :]))
            elif line == "data: [DONE]":
                self.report = self._checked(_dict(report.get("result")))
                return
            elif line.startswith("data:"):
                chunk = _dict(_json(line[5:]))
                if "error" in chunk:
                    raise self._broken(report, chunk, "".join(parts))
                text = _delta_text(chunk)
                if text:
                    parts.append(text)
                    yield text
        from llmroute.errors import StreamBrokenError

        raise StreamBrokenError(
            f"the gateway at {self.target.url} closed the stream before the answer ended; "
            "the text above is incomplete",
            (),
            "".join(parts),
        )

    def result(self, content: str, response: Mapping[str, Any] | None = None) -> Result:
        """The in-process path's Result, from `.report` and the answer."""
        from dataclasses import replace

        from llmroute.attempt import Result

        result = Result.from_dict(self.report)
        return replace(result, content=content, response=response or {})

    def _checked(self, report: dict[str, Any]) -> dict[str, Any]:
        if not {"provider", "key", "model"} <= report.keys():
            from llmroute.errors import ConfigError

            raise ConfigError(
                f"the server at {self.target.url} sent no llmroute report: it is not an "
                f"llmroute gateway; unset {URL_ENV}, or point it at `llmroute serve`"
            )
        return report

    def _send(self, *, stream: bool) -> Response:
        if self._socket is None:
            self.open()
        assert self._socket is not None
        body = json.dumps({**self.body, "stream": stream}).encode()
        host = urlsplit(self.target.url).netloc
        head = [f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n"
                f"content-length: {len(body)}\r\n"]  # fmt: skip
        head += [f"{name}: {value}\r\n" for name, value in self.headers.items()]
        self._socket.sendall("".join([*head, "\r\n"]).encode("latin-1") + body)
        return Response(self._socket)

    def _error(self, status: int, payload: object) -> LLMRouteError:
        from llmroute.errors import ConfigError

        error = _dict(_dict(payload).get("error"))
        message = str(error.get("message") or f"the gateway answered HTTP {status}")
        if status == 401:
            return ConfigError(
                f"the gateway at {self.target.url} wants a token: set {TOKEN_ENV} to the "
                "token it was started with"
            )
        return _as_error(message, _dict(error.get("llmroute")))

    def _broken(
        self, report: Mapping[str, Any], chunk: Mapping[str, Any], partial: str
    ) -> StreamBrokenError:
        from llmroute.errors import StreamBrokenError

        account = _dict(_dict(report.get("broken")).get("error"))
        message = str(account.get("message") or _dict(chunk.get("error")).get("message"))
        attempts = _attempts(_dict(account.get("llmroute")))
        return StreamBrokenError(message, attempts, partial)


class Response:
    """An HTTP/1.1 response read off the socket: status, headers, then the body (plain,
    chunked, or up to the close) as it arrives."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._file = sock.makefile("rb")
        status = self._file.readline(LIMIT).split(None, 2)
        self.status = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
        self.headers: dict[str, str] = {}
        while (line := self._file.readline(LIMIT)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def header(self, name: str, default: str) -> str:
        return self.headers.get(name, default)

    def body(self) -> Iterator[bytes]:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(self._file.readline(LIMIT).split(b";")[0].strip() or b"0", 16):
                yield self._file.read(size)
                self._file.readline(LIMIT)  # the CRLF after each chunk
        elif self.headers.get("content-length", "").isdigit():
            yield self._file.read(int(self.headers["content-length"]))
        else:
            yield self._file.read()

    def lines(self) -> Iterator[bytes]:
        """The body's lines as they arrive; a body cut short ends early."""
        rest = b""
        for piece in self.body():
            *whole, rest = (rest + piece).split(b"\n")
            yield from whole
        if rest:
            yield rest

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()
        self._socket.close()


def _reason(exc: BaseException) -> str:
    return str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)


def _as_error(message: str, account: Mapping[str, Any]) -> LLMRouteError:
    """The error the in-process path would have raised, for the same exit code and report."""
    from llmroute.errors import ConfigError, RequestFailedError, RequestRejectedError

    attempts = _attempts(account)
    code = account.get("exit_code")
    if code == 3:
        return RequestRejectedError(message, attempts)
    if code == 2:
        return ConfigError(message)
    retry_at = account.get("retry_at")
    known = float(retry_at) if isinstance(retry_at, int | float) else None
    return RequestFailedError(message, attempts, known)


def _attempts(account: Mapping[str, Any]) -> tuple[Attempt, ...]:
    from llmroute.attempt import Attempt

    return tuple(Attempt.from_dict(a) for a in account.get("attempts") or ())


def _json(raw: str | bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def content_of(payload: Mapping[str, Any]) -> str:
    """The first choice's text of a completed answer."""
    choices = payload.get("choices") or [{}]
    message = _dict(_dict(choices[0]).get("message"))
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _delta_text(chunk: Mapping[str, Any]) -> str:
    for choice in chunk.get("choices") or ():
        content = _dict(_dict(choice).get("delta")).get("content")
        if isinstance(content, str):
            return content
    return ""
