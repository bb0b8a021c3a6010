"""What went wrong with one upstream attempt, as a kind the router can act on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class FailureKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    CONTEXT_TOO_LONG = "context_too_long"
    BAD_REQUEST = "bad_request"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str  # already redacted: no secret survives classification
    status: int | None = None
    code: str | None = None
    # Seconds from the failure until the provider says a retry can succeed, if it said so.
    retry_after: float | None = None
    # The whole provider is unreachable (connection refused), not just this key.
    provider_down: bool = False
    # The response's headers, when there was a response: limits are learned from failures too.
    headers: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        status = f" {self.status}" if self.status else ""
        return f"{self.kind}{status}: {self.message}"


class UpstreamProtocolError(Exception):
    """A 2xx answer that is not a usable chat completion (error object, no choices)."""


class UpstreamStreamError(UpstreamProtocolError):
    """An error event inside a stream (OpenAI, Groq, vLLM and OpenRouter send them)."""


class UnsendableRequestError(Exception):
    """The request could not be put on the wire to this candidate: its provider's URL cannot
    be connected to, or its key cannot be sent in a header. The candidate's problem alone."""

    def __init__(self, message: str, *, key_problem: bool, request_problem: bool = False) -> None:
        super().__init__(message)
        self.key_problem = key_problem
        self.request_problem = request_problem  # the request's own content: no one's fault
