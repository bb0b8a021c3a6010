"""Providers and their keys: configuration, reply scripts and rate-limit windows.

A test thread configures these while handler threads consume them, so everything a handler
touches on a key goes through the key's lock.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .dialects import DIALECTS, Breach, Dialect, Limits
from .limits import RefillBucket, SlidingWindow, Window
from .replies import Reply

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Admission:
    """A key's answer to one request: the reply to send, or the window that refused it."""

    reply: Reply | None
    breach: Breach | None
    limits: Limits  # the windows after this request was counted (or refused)


class FakeKey:
    """A valid API key of one provider, with its reply script and optional limits."""

    def __init__(self, secret: str, provider: FakeProvider) -> None:
        self.secret = secret
        self.provider = provider
        self.default: Reply = Reply.ok()  # answers once the script is used up
        self._script: deque[Reply] = deque()
        self._requests: Window | None = None
        self._tokens: Window | None = None
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return self.secret

    def __repr__(self) -> str:
        return f"FakeKey({self.provider.name}:{self.secret})"

    def script(self, *replies: Reply) -> FakeKey:
        """Queue replies, consumed one per request in order (appends to what is queued)."""
        with self._lock:
            self._script.extend(replies)
        return self

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._script)

    def limit(
        self,
        *,
        requests: int | None = None,
        tokens: int | None = None,
        per: float,
        refill: bool = False,
    ) -> FakeKey:
        """At most `requests` requests / `tokens` tokens per `per` seconds: sliding windows, or
        with `refill` buckets refilled continuously (OpenAI's and Groq's reset-to-full).

        Each call sets only the kinds it names, so the two kinds may have different periods.
        Requests refused by a window are not counted in it, like real providers.
        """
        if requests is None and tokens is None:
            raise ValueError("limit() needs requests= and/or tokens=")
        shape = RefillBucket if refill else SlidingWindow
        with self._lock:
            if requests is not None:
                self._requests = shape(requests, per)
            if tokens is not None:
                self._tokens = shape(tokens, per)
        return self

    def clear_limits(self) -> None:
        with self._lock:
            self._requests = self._tokens = None

    def limits(self) -> Limits:
        with self._lock:
            return self._snapshot(time.monotonic())

    def _snapshot(self, now: float) -> Limits:
        return Limits(
            requests=self._requests.state(now) if self._requests else None,
            tokens=self._tokens.state(now) if self._tokens else None,
        )

    def admit(self, cost_of: Callable[[Reply], int]) -> Admission:
        """Check the windows for the next reply and, if they allow it, consume and count it.

        The next reply is only peeked at first: a request refused by a window must not eat a
        scripted reply, or the test's script would shift. cost_of(reply) gives its tokens.
        """
        with self._lock:
            now = time.monotonic()
            reply = self._script[0] if self._script else self.default
            cost = cost_of(reply)
            breach = self._breach(cost, now)
            if breach is not None:
                return Admission(None, breach, self._snapshot(now))
            if self._script:
                self._script.popleft()
            if self._requests:
                self._requests.add(1, now)
            if self._tokens:
                self._tokens.add(cost, now)
            return Admission(reply, None, self._snapshot(now))

    def _breach(self, cost: int, now: float) -> Breach | None:
        for metric, window, requested in (
            ("requests", self._requests, 1),
            ("tokens", self._tokens, cost),
        ):
            if window is None:
                continue
            wait = window.wait_for(requested, now)
            if wait > 0:
                return Breach(metric, window.limit, window.used(now), requested, wait)
        return None


class FakeProvider:
    """One provider served under /<name>/v1, speaking one dialect."""

    def __init__(
        self,
        name: str,
        dialect: str,
        models: Iterable[str] | None,
        base: Callable[[], str],
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"provider name must be one URL path segment, got {name!r}")
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; one of {sorted(DIALECTS)}")
        self.name = name
        self.dialect_name = dialect
        self.models: tuple[str, ...] | None = None if models is None else tuple(models)
        self.latency = 0.0  # seconds added before every reply
        self._base = base  # the server's root URL, known once it has started
        self._keys: dict[str, FakeKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeProvider({self.name!r}, dialect={self.dialect_name!r})"

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.dialect_name]

    @property
    def base_url(self) -> str:
        return f"{self._base()}/{self.name}/v1"

    def key(self, secret: str) -> FakeKey:
        """Register a valid key (idempotent: the same secret gives the same FakeKey)."""
        with self._lock:
            if secret not in self._keys:
                self._keys[secret] = FakeKey(secret, self)
            return self._keys[secret]

    @property
    def keys(self) -> list[FakeKey]:
        with self._lock:
            return list(self._keys.values())

    def find_key(self, secret: str | None) -> FakeKey | None:
        if secret is None:
            return None
        with self._lock:
            return self._keys.get(secret)

    def accepts(self, model: str) -> bool:
        return self.models is None or model in self.models
