"""The bookkeeping of one request: attempts so far, what this request may no longer try."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from llmroute.attempt import OK, SKIPPED, Attempt, Candidate
from llmroute.cooldowns import Cooldown
from llmroute.errors import RequestFailedError, RequestRejectedError
from llmroute.failures import Failure, FailureKind

K = FailureKind
DEADLINE_REACHED = "the request deadline was reached"
Observe = Callable[[Any], None]


class RequestRun:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.attempts: list[Attempt] = []
        self.called_this_pass = False
        self.waited_s = 0.0  # slept waiting for the earliest candidate
        self._ruled_out: set[Candidate] = set()  # too large, or timed out on our own limits
        self._context_floor: int | None = None  # after context_too_long: need a larger window
        self._skipped: set[Candidate] = set()  # candidates already on record
        self._waiting: list[tuple[float, Candidate, str]] = []

    def admits(self, candidate: Candidate, observe: Observe) -> bool:
        """False for a candidate this request has ruled out (too large, context too small)."""
        if candidate in self._ruled_out:
            return False
        if self._context_floor is None:
            return True
        window = candidate.context_window
        if window is not None and window > self._context_floor:
            return True
        self._skip(
            candidate, "its context window is not larger than the one that overflowed", observe
        )
        return False

    def wait_for(
        self, candidate: Candidate, cooldown: Cooldown, now: float, observe: Observe
    ) -> None:
        if cooldown.disabled:
            # A model its provider does not serve stays a 404 for whoever asks for it next.
            status = 404 if cooldown.kind == K.NOT_FOUND else None
            self._skip(candidate, f"disabled after {cooldown.reason}", observe, status)
            return
        left = max(0.0, cooldown.until - now)
        self._skip(candidate, f"cooling down {left:.1f}s more after {cooldown.reason}", observe)
        self._waiting.append((cooldown.until, candidate, cooldown.reason))

    def no_budget(
        self, candidate: Candidate, free_at: float | None, now: float, observe: Observe
    ) -> None:
        if free_at is None:
            return
        self._skip(candidate, f"no budget for {max(0.0, free_at - now):.1f}s", observe)
        self._waiting.append((free_at, candidate, "no budget"))

    def failed(self, candidate: Candidate, failure: Failure, latency_s: float) -> Attempt:
        self.called_this_pass = True
        self._skipped.add(candidate)  # its failure is on record; a later skip would repeat it
        attempt = Attempt(
            candidate=candidate, outcome=failure.kind, reason=failure.message,
            status=failure.status, latency_s=latency_s,
        )  # fmt: skip
        self.attempts.append(attempt)
        if failure.kind is K.TOO_LARGE:
            self._ruled_out.add(candidate)
        elif failure.kind is K.CONTEXT_TOO_LONG:
            window = candidate.context_window or 0
            self._context_floor = max(self._context_floor or 0, window)
        elif failure.kind is K.BAD_REQUEST:
            raise RequestRejectedError(
                f"{candidate.provider} rejected the request ({failure}); fix the request: "
                "other providers would reject it too",
                self.attempts,
            )
        return attempt

    def rule_out(self, candidate: Candidate) -> None:
        """Not again for this request (the same limits would fail it the same way); other
        requests may still use it."""
        self._ruled_out.add(candidate)

    def answered(
        self, candidate: Candidate, latency_s: float, ttft_s: float | None = None
    ) -> Attempt:
        attempt = Attempt(
            candidate=candidate, outcome=OK, status=200, latency_s=latency_s, ttft_s=ttft_s
        )
        self.attempts.append(attempt)
        return attempt

    def broke(
        self,
        candidate: Candidate,
        failure: Failure,
        reason: str,
        latency_s: float,
        ttft_s: float | None,
    ) -> Attempt:
        """A stream cut after its first content: the request ends here, unanswered."""
        attempt = Attempt(
            candidate=candidate, outcome=failure.kind, reason=reason, status=failure.status,
            latency_s=latency_s, ttft_s=ttft_s,
        )  # fmt: skip
        self.attempts.append(attempt)
        return attempt

    def next_pass(self) -> None:
        self.called_this_pass = False
        self._waiting.clear()

    def soonest(self) -> tuple[float, Candidate, str] | None:
        finite = [w for w in self._waiting if math.isfinite(w[0])]
        return min(finite, key=lambda w: w[0]) if finite else None

    def check_rejected(self) -> None:
        """A prompt too long for every candidate left is the request's fault: exit 3."""
        if self._context_floor is not None and not self._waiting:
            raise RequestRejectedError(
                "the prompt is longer than the context window of every candidate; shorten it, "
                "or declare a model with a larger context_window in the config",
                self.attempts,
            )

    def fail(self, now: float, retry_at: float | None) -> None:
        called = [a for a in self.attempts if a.outcome != SKIPPED]
        if now >= self.deadline:
            why = DEADLINE_REACHED
        elif not called and not self.attempts:
            why = "no candidate is available"
        else:
            why = "every candidate failed or is unavailable"
        hint = (
            f"; retry after {time.strftime('%H:%M:%S', time.localtime(retry_at))}"
            if retry_at is not None
            else ""
        )
        raise RequestFailedError(f"{why}{hint}", self.attempts, retry_at, self.waited_s)

    def _skip(
        self, candidate: Candidate, reason: str, observe: Observe, status: int | None = None
    ) -> None:
        if candidate in self._skipped:
            return
        self._skipped.add(candidate)
        attempt = Attempt(candidate=candidate, outcome=SKIPPED, reason=reason, status=status)
        self.attempts.append(attempt)
        observe(attempt)
