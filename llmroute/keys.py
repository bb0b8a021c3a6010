"""API keys: the secret is kept out of every repr, log line and error message."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property


def mask(secret: str) -> str:
    """`gsk_…a1b2`: enough to tell keys apart, never enough to use one."""
    if len(secret) < 12:
        return "…"
    return f"{secret[:4]}…{secret[-4:]}"


@dataclass(frozen=True)
class ApiKey:
    """One key of a provider's pool, named by its alias (`groq#2`)."""

    alias: str
    env_var: str | None
    secret: str = field(repr=False, compare=False)

    @property
    def masked(self) -> str:
        return mask(self.secret) if self.env_var else "(no key)"

    @cached_property  # asked for by every scope of every attempt
    def fingerprint(self) -> str:
        """A short, one-way id of the secret: state about a key is void once the key changes."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:12]

    def __str__(self) -> str:
        return self.alias


KEYLESS_SECRET = "no-key"  # local servers (Ollama, llama.cpp) ignore the Authorization header


class Redactor:
    """Replaces every known secret in a text by its masked form."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str) -> None:
        if secret and secret != KEYLESS_SECRET:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, mask(secret))
        return text
