"""The small tree of errors llmroute raises. Every one carries a sentence a user can act on."""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence

    from llmroute.attempt import Attempt


class LLMRouteError(Exception):
    """Base of every error llmroute raises on purpose."""


class ConfigError(LLMRouteError):
    """The configuration cannot be used (exit 2). The message names file, table and key."""


class UsageError(LLMRouteError):
    """The command or call was used wrongly (exit 2)."""


class StateFileError(ConfigError):
    """The state store's file cannot be used, at start or while in use (exit 2). The message
    names the file and what to do."""


class LogFileError(ConfigError):
    """The request log's file cannot be read (exit 2); the message names the file."""


class UnknownRouteError(ConfigError):
    """No task or provider by the name a request asked for (exit 2; a gateway's 404)."""


class NoUsableCandidateError(ConfigError):
    """A task has no candidate at all, e.g. because no API key variable is set (exit 2)."""


class RequestFailedError(LLMRouteError):
    """Every candidate failed or is cooling down past the deadline (exit 1)."""

    def __init__(
        self,
        message: str,
        attempts: Sequence[Attempt],
        retry_at: float | None = None,
        waited_s: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.attempts = tuple(attempts)
        # Epoch seconds at which a retry could first succeed, when known.
        self.retry_at = retry_at
        self.waited_s = waited_s  # spent waiting for cooldowns or budget before giving up


class RequestRejectedError(LLMRouteError):
    """The request itself is wrong (bad_request, or too long for every candidate) (exit 3)."""

    def __init__(self, message: str, attempts: Sequence[Attempt]) -> None:
        super().__init__(message)
        self.attempts = tuple(attempts)


class StreamBrokenError(RequestFailedError):
    """A streamed answer broke after its first token: the text so far is all there is (exit 1).
    Answers from two models are never spliced, so there is no fallback past this point."""

    def __init__(self, message: str, attempts: Sequence[Attempt], partial: str) -> None:
        super().__init__(message, attempts)
        self.partial = partial
