"""A response's headers and body as the caller reads them: header names lowered, gzip and
deflate decoded, SSE lines split."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from llmroute.http1.errors import ReadError


def header_map(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Names in lower case; a repeated header's values joined by ", " (as httpx does)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class Inflater:
    """A gzip or deflate body decoded as it comes; a corrupt or cut one is a ReadError."""

    def __init__(self, encoding: str, url: str) -> None:
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
        self._encoding, self._url = encoding, url

    def feed(self, data: bytes) -> bytes:
        try:
            return self._zlib.decompress(data)
        except zlib.error as exc:
            raise self._broken(str(exc)) from None

    def finish(self) -> None:
        if not self._zlib.eof:
            raise self._broken("it ends before its end")

    def _broken(self, why: str) -> ReadError:
        return ReadError(f"the server sent a corrupt {self._encoding} body ({why})", self._url)


def inflater_for(encoding: str, url: str) -> Inflater | None:
    """For the encodings request.ACCEPT_ENCODING asks for; any other is a server's error."""
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return Inflater(encoding, url)
    raise ReadError(f"the server sent a body encoded as {encoding!r}, which was not asked", url)


def split_lines(text: str) -> tuple[list[str], str]:
    """Whole lines, and the rest (a CR at the very end may be half of a CRLF)."""
    if "\r" in text:
        keep_cr = text.endswith("\r")
        text = text[:-1] if keep_cr else text
        text = text.replace("\r\n", "\n").replace("\r", "\n") + ("\r" if keep_cr else "")
    *lines, rest = text.split("\n")
    return lines, rest
