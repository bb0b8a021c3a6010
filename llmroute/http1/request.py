"""Where a request goes and what it says: a base URL taken apart once, and the request's bytes
(its head built once per key, its body added per call)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from llmroute.http1.errors import InvalidURL

DEFAULT_PORTS = {"http": 80, "https": 443}
ACCEPT_ENCODING = ("Accept-Encoding", "gzip, deflate")  # what body.Inflater reads


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where requests go: a base URL taken apart once."""

    url: str  # the base URL, ending in "/"
    tls: bool
    host: str
    port: int
    path: str  # the base URL's path, ending in "/"
    authority: str  # the Host header

    @classmethod
    def parse(cls, base_url: str) -> Target:
        url = base_url if base_url.endswith("/") else base_url + "/"
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError as exc:  # a port out of range or not a number
            raise InvalidURL(str(exc), url) from None
        if parts.scheme not in DEFAULT_PORTS:
            raise InvalidURL(f"the scheme {parts.scheme!r} is not http or https", url)
        if not parts.hostname or port is None:
            raise InvalidURL("no host", url)
        host = parts.hostname
        named = f"[{host}]" if ":" in host else host
        default = port == DEFAULT_PORTS[parts.scheme]
        return cls(
            url=url, tls=parts.scheme == "https", host=host, port=port,
            path=parts.path or "/", authority=named if default else f"{named}:{port}",
        )  # fmt: skip


def proxied(url: str) -> bool:
    """The environment sends this URL through a proxy (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY)."""
    proxies = getproxies()
    scheme = urlsplit(url).scheme
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(urlsplit(url).hostname or "")


def request_bytes(target: Target, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The request line and headers, up to the body's length: the same for every request of
    one client, so built once (`with_body` adds the rest)."""
    if any("\r" in part or "\n" in part for header in headers for part in header):
        raise InvalidURL("a header holds a line break", target.url)
    lines = [f"POST {target.path}{path} HTTP/1.1", f"Host: {target.authority}"]
    given = [(n, v) for n, v in headers if n.lower() not in ("host", "accept-encoding")]
    lines += [f"{name}: {value}" for name, value in (*given, ACCEPT_ENCODING)]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def with_body(head: bytes, body: bytes) -> bytes:
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
