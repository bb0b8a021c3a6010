"""The client's errors: a small tree of its own, mapped to the SDK's types in `sse.sdk_errors`."""

from __future__ import annotations


class HTTPClientError(Exception):
    """Something went wrong between us and the server; `url` is where we were going."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class InvalidURL(HTTPClientError):
    """The URL cannot be requested (a scheme other than http/https, a bad port, no host)."""


class ConnectError(HTTPClientError):
    """No connection: refused, unreachable, a name that does not resolve, a TLS failure."""


class ReadError(HTTPClientError):
    """The connection broke, or the server sent something that is not HTTP."""


class ReadTimeout(HTTPClientError):
    """Nothing came within the timeout: connecting, waiting for the headers or the next bytes."""
