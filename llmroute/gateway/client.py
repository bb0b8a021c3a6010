"""`llmroute ask` through a running gateway: the standard library's HTTP client only.

The point is start-up: a process that asks a resident gateway needs neither the openai SDK
nor the router (most of a second between them), so a shell loop of asks costs what Python's
own start-up costs. The gateway sends back its account of the request (`x-llmroute-report`),
so the report on stderr, `--json` and the exit code are what the in-process path gives.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmroute.attempt import Attempt, Result
from llmroute.errors import (
    ConfigError,
    LLMRouteError,
    RequestFailedError,
    RequestRejectedError,
    StreamBrokenError,
)
from llmroute.gateway.discovery import announcement_path, read_announcement

URL_ENV = "LLMROUTE_URL"
TOKEN_ENV = "LLMROUTE_SERVER_TOKEN"
REPORT_HEADER = "x-llmroute-report"  # as in gateway.wire, which this module must not import
SLACK_S = 30.0  # the gateway keeps the deadline; this only guards against a hung socket


class GatewayUnreachable(Exception):
    """Nothing listens there: nothing was sent, routing in process is safe."""


@dataclass(frozen=True, kw_only=True)
class GatewayTarget:
    url: str  # http://host:port
    token: str | None
    found: str  # how: "LLMROUTE_URL" or the announcement file


def find_gateway(
    env: Mapping[str, str], state_dir: Path, config: Path | None
) -> GatewayTarget | None:
    """`LLMROUTE_URL` always; else a local gateway that announced itself, if it is alive and
    serves `config` (the file this process would load; None: the built-in registry)."""
    token = env.get(TOKEN_ENV) or None
    if env.get(URL_ENV):
        return GatewayTarget(url=_base(env[URL_ENV]), token=token, found=URL_ENV)
    path = announcement_path(state_dir)
    announced = read_announcement(path)
    if announced is None or not _alive(announced.pid):
        return None
    wanted = str(config.resolve()) if config is not None else None
    if announced.config != wanted:
        return None
    return GatewayTarget(url=announced.url, token=token, found=str(path))


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
    """One chat request to a gateway; `complete()`, or iterate `stream()` then `.result`."""

    def __init__(
        self,
        target: GatewayTarget,
        body: Mapping[str, Any],
        settings: Mapping[str, float | None],
    ) -> None:
        self.target, self.body = target, dict(body)
        self.headers = {"content-type": "application/json", REPORT_HEADER: "1"}
        for name, value in settings.items():
            if value is not None:
                self.headers[f"x-llmroute-{name.replace('_', '-')}"] = repr(value)
        if target.token:
            self.headers["authorization"] = f"Bearer {target.token}"
        self.timeout = max([v for v in settings.values() if v] or [60.0]) + SLACK_S
        self.result: Result | None = None

    def complete(self) -> Result:
        response = self._send(stream=False)
        with response:
            payload = _json(response.read())
            if response.status >= 400:
                raise self._error(response.status, payload)
            report = _dict(_json(response.getheader(REPORT_HEADER, "{}").encode()))
        result = self._result(report)
        return replace(result, content=_content(payload), response=_dict(payload))

    def stream(self) -> Iterator[str]:
        response = self._send(stream=True)
        with response:
            if response.status >= 400:
                raise self._error(response.status, _json(response.read()))
            yield from self._events(response)

    def _events(self, response: http.client.HTTPResponse) -> Iterator[str]:
        parts: list[str] = []
        report: dict[str, Any] = {}
        for raw in response:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith(": llmroute "):
                report = _dict(_json(line[len(": llmroute ") :].encode()))
            elif line == "data: [DONE]":
                result = self._result(_dict(report.get("result")))
                self.result = replace(result, content="".join(parts))
                return
            elif line.startswith("data:"):
                chunk = _dict(_json(line[5:].encode()))
                if "error" in chunk:
                    raise self._broken(report, chunk, "".join(parts))
                text = _delta_text(chunk)
                if text:
                    parts.append(text)
                    yield text
        raise StreamBrokenError(
            f"the gateway at {self.target.url} closed the stream before the answer ended; "
            "the text above is incomplete",
            (),
            "".join(parts),
        )

    def _result(self, report: Mapping[str, Any]) -> Result:
        if not {"provider", "key", "model"} <= report.keys():
            raise ConfigError(
                f"the server at {self.target.url} sent no llmroute report: it is not an "
                f"llmroute gateway; unset {URL_ENV}, or point it at `llmroute serve`"
            )
        return Result.from_dict(report)

    def _send(self, *, stream: bool) -> http.client.HTTPResponse:
        split = urlsplit(self.target.url)
        connection = http.client.HTTPConnection(
            split.hostname or "127.0.0.1", split.port or 80, timeout=self.timeout
        )
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise GatewayUnreachable(f"{self.target.url}: {exc.strerror or exc}") from None
        body = json.dumps({**self.body, "stream": stream}).encode()
        connection.request("POST", "/v1/chat/completions", body=body, headers=self.headers)
        return connection.getresponse()

    def _error(self, status: int, payload: object) -> LLMRouteError:
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
        account = _dict(_dict(report.get("broken")).get("error"))
        message = str(account.get("message") or _dict(chunk.get("error")).get("message"))
        attempts = _attempts(_dict(account.get("llmroute")))
        return StreamBrokenError(message, attempts, partial)


def _as_error(message: str, account: Mapping[str, Any]) -> LLMRouteError:
    """The error the in-process path would have raised, for the same exit code and report."""
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
    return tuple(Attempt.from_dict(a) for a in account.get("attempts") or ())


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _content(payload: object) -> str:
    choices = _dict(payload).get("choices") or [{}]
    message = _dict(_dict(choices[0]).get("message"))
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _delta_text(chunk: Mapping[str, Any]) -> str:
    for choice in chunk.get("choices") or ():
        content = _dict(_dict(choice).get("delta")).get("content")
        if isinstance(content, str):
            return content
    return ""
