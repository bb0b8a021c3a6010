"""Per-provider rate-limit headers and error bodies, modelled on what each provider sends.

A router must parse all of these shapes, so each dialect reproduces its provider's quirks:
Go-duration resets (OpenAI, Groq), float-second resets (Cerebras), epoch-millisecond resets
(OpenRouter), list-wrapped bodies without headers (Gemini), unwrapped bodies (Cerebras).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from .bodies import ORG
from .limits import WindowState
from .resets import ceil_seconds, epoch_ms, go_duration, until_next_minute


@dataclass(frozen=True)
class Limits:
    """The key's windows right now (None: no window configured, the dialect makes numbers up)."""

    requests: WindowState | None = None
    tokens: WindowState | None = None


@dataclass(frozen=True)
class Breach:
    """What a 429 reports: which window overflowed and when it frees (None: not said)."""

    metric: str  # "requests" or "tokens"
    limit: int
    used: int
    requested: int
    reset: float | None


@dataclass(frozen=True)
class Context:
    """The request facts an error message may quote."""

    model: str
    key: str | None
    now: float  # epoch seconds, for resets expressed as timestamps


@dataclass(frozen=True)
class Payload:
    """An HTTP answer before encoding. body None = empty body."""

    status: int
    body: Any
    headers: dict[str, str]


def exhausted(state: WindowState | None, breach: Breach) -> WindowState:
    """The window as a 429 reports it: nothing left, freeing at the breach's reset. A refill
    bucket's reset stays the time until full (the breach's is when one request fits)."""
    reset = breach.reset if breach.reset is not None else (state.reset if state else 60.0)
    if state is None:
        return WindowState(limit=breach.limit, remaining=0, reset=reset, per=60.0)
    if state.refill:
        reset = max(reset, state.reset)
    return replace(state, remaining=0, reset=reset)


# -- dialects ------------------------------------------------------------------------------


_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class Dialect:
    """OpenAI's shapes; subclasses override what their provider does differently."""

    name: ClassVar[str] = "openai"
    # The RPM limit a scripted 429 quotes when the key has no request window.
    default_rpm: ClassVar[int] = 3
    # Plausible fixed header values for keys without configured windows.
    fixed_requests: ClassVar[WindowState] = WindowState(10_000, 9_999, 0.006, 60.0)
    fixed_tokens: ClassVar[WindowState] = WindowState(2_000_000, 1_999_900, 0.003, 60.0)

    # -- headers on every response --

    def limit_headers(self, limits: Limits, now: float) -> dict[str, str]:
        requests = limits.requests or self.fixed_requests
        tokens = limits.tokens or self.fixed_tokens
        headers: dict[str, str] = {}
        for metric, state in (("requests", requests), ("tokens", tokens)):
            headers[f"x-ratelimit-limit-{metric}"] = str(state.limit)
            headers[f"x-ratelimit-remaining-{metric}"] = str(state.remaining)
            headers[f"x-ratelimit-reset-{metric}"] = go_duration(state.reset)
        return headers

    # -- generic error envelope --

    def envelope(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> Any:
        return {"error": {"message": message, "type": type_, "param": param, "code": code}}

    # -- 429s --

    def rate_limited(self, ctx: Context, breach: Breach, limits: Limits) -> Payload:
        limits = self._exhaust(limits, breach)
        headers = self.limit_headers(limits, ctx.now)
        if breach.reset is not None:
            headers["retry-after-ms"] = str(math.ceil(breach.reset * 1000))
            headers["retry-after"] = str(ceil_seconds(breach.reset))
        body = {
            "error": {
                "message": self._rate_message(ctx, breach),
                "type": breach.metric,
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
        return Payload(429, body, headers)

    def _exhaust(self, limits: Limits, breach: Breach) -> Limits:
        if breach.metric == "tokens":
            return replace(limits, tokens=exhausted(limits.tokens, breach))
        return replace(limits, requests=exhausted(limits.requests, breach))

    def _rate_message(self, ctx: Context, breach: Breach) -> str:
        unit = "RPM" if breach.metric == "requests" else "TPM"
        text = (
            f"Rate limit reached for {ctx.model} in organization {ORG} on {breach.metric} per "
            f"min ({unit}): Limit {breach.limit}, Used {breach.used}, "
            f"Requested {breach.requested}."
        )
        if breach.reset is not None:
            text += f" Please try again in {go_duration(breach.reset)}."
        return text

    def quota_exhausted(self, ctx: Context, reset: float, limits: Limits) -> Payload:
        limit = self.fixed_requests.limit
        breach = Breach("requests", limit, limit, 1, reset)
        headers = self.limit_headers(self._exhaust(limits, breach), ctx.now)
        message = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors."
        )
        body = self.envelope(429, message, "insufficient_quota", "insufficient_quota")
        return Payload(429, body, headers)

    # -- auth --

    def unauthorized(self, ctx: Context) -> Any:
        message = (
            f"Incorrect API key provided: {ctx.key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return self.envelope(401, message, "invalid_request_error", "invalid_api_key")

    def forbidden(self, ctx: Context) -> Any:
        message = f"You do not have access to the model `{ctx.model}` with this key."
        return self.envelope(403, message, "permission_error", "permission_denied")

    # -- request errors --

    def context_length_exceeded(self, ctx: Context) -> Any:
        message = (
            "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9000 tokens."
        )
        return self.envelope(
            400, message, "invalid_request_error", "context_length_exceeded", "messages"
        )


class Groq(Dialect):
    """OpenAI's headers, but -requests is the per-DAY window and -tokens the per-minute one."""

    name = "groq"
    default_rpm = 30
    fixed_requests = WindowState(14_400, 14_399, 6.0, 86_400.0)
    fixed_tokens = WindowState(6_000, 5_900, 1.0, 60.0)

    def envelope(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> Any:
        error: dict[str, Any] = {"message": message, "type": type_, "code": code}
        if param is not None:
            error["param"] = param
        return {"error": error}

    def rate_limited(self, ctx: Context, breach: Breach, limits: Limits) -> Payload:
        # Groq's -requests headers are the per-DAY window: a per-minute 429 leaves them alone
        # (zeroing them would read as "daily cap spent") unless the test configured a request
        # window, which the headers then report as it is.
        if breach.metric == "tokens" or limits.requests is not None:
            limits = self._exhaust(limits, breach)
        headers = self.limit_headers(limits, ctx.now)
        if breach.reset is not None:
            headers["retry-after"] = str(ceil_seconds(breach.reset))
        body = self.envelope(
            429, self._rate_message(ctx, breach), breach.metric, "rate_limit_exceeded"
        )
        return Payload(429, body, headers)

    def _rate_message(self, ctx: Context, breach: Breach) -> str:
        unit = "RPM" if breach.metric == "requests" else "TPM"
        text = (
            f"Rate limit reached for model `{ctx.model}` in organization `{ORG}` service tier "
            f"`on_demand` on {breach.metric} per minute ({unit}): Limit {breach.limit}, "
            f"Used {breach.used}, Requested {breach.requested}."
        )
        if breach.reset is not None:
            text += f" Please try again in {go_duration(breach.reset)}."
        return text

    def quota_exhausted(self, ctx: Context, reset: float, limits: Limits) -> Payload:
        payload = super().quota_exhausted(ctx, reset, limits)
        # Groq's daily 429 carries a retry-after, unlike OpenAI's billing quota.
        payload.headers["retry-after"] = str(ceil_seconds(reset))
        return payload

    def unauthorized(self, ctx: Context) -> Any:
        return self.envelope(
            401, f"Invalid API Key: {ctx.key}", "invalid_request_error", "invalid_api_key"
        )


class Cerebras(Dialect):
    """Float-second resets, per-day request and per-minute token headers, unwrapped bodies."""

    name = "cerebras"
    default_rpm = 30
    fixed_requests = WindowState(14_400, 14_399, 33_011.4, 86_400.0)
    fixed_tokens = WindowState(60_000, 59_900, 12.5, 60.0)

    def limit_headers(self, limits: Limits, now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        # The -day numbers stay fixed: a window configured for a test is a per-minute limit,
        # and remaining-requests-day = 0 would tell a router the daily cap is spent.
        spans = [
            ("requests-day", self.fixed_requests),
            ("tokens-minute", limits.tokens or self.fixed_tokens),
        ]
        if limits.requests is not None:
            spans.append(("requests-minute", limits.requests))
        for span, state in spans:
            headers[f"x-ratelimit-limit-{span}"] = str(state.limit)
            headers[f"x-ratelimit-remaining-{span}"] = str(state.remaining)
            headers[f"x-ratelimit-reset-{span}"] = f"{state.reset:.3f}"
        return headers

    def envelope(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> Any:
        # Cerebras sends its error fields at the top level, without an "error" wrapper.
        return {"message": message, "type": type_, "param": param, "code": code}

    def rate_limited(self, ctx: Context, breach: Breach, limits: Limits) -> Payload:
        headers = self.limit_headers(limits, ctx.now)
        span = "requests-minute" if breach.metric == "requests" else "tokens-minute"
        state = exhausted(limits.requests if breach.metric == "requests" else limits.tokens, breach)
        headers[f"x-ratelimit-limit-{span}"] = str(state.limit)
        headers[f"x-ratelimit-remaining-{span}"] = "0"
        headers[f"x-ratelimit-reset-{span}"] = f"{state.reset:.3f}"
        if breach.metric == "requests":
            body = self.envelope(
                429,
                "Requests per minute limit exceeded - too many requests sent.",
                "too_many_requests_error",
                "request_quota_exceeded",
                "quota",
            )
        else:
            body = self.envelope(
                429,
                "Tokens per minute limit exceeded - too many tokens processed.",
                "too_many_requests_error",
                "token_quota_exceeded",
                "quota",
            )
        return Payload(429, body, headers)

    def quota_exhausted(self, ctx: Context, reset: float, limits: Limits) -> Payload:
        headers = self.limit_headers(limits, ctx.now)
        headers["x-ratelimit-remaining-requests-day"] = "0"
        headers["x-ratelimit-reset-requests-day"] = f"{reset:.3f}"
        body = self.envelope(
            429,
            "Requests per day limit exceeded - too many requests sent.",
            "too_many_requests_error",
            "request_quota_exceeded",
            "quota",
        )
        return Payload(429, body, headers)

    def unauthorized(self, ctx: Context) -> Any:
        return self.envelope(
            401, f"Wrong API Key: {ctx.key}", "invalid_request_error", "wrong_api_key", "api_key"
        )


class OpenRouter(Dialect):
    """X-RateLimit-* headers with an epoch-millisecond reset; errors carry a numeric code."""

    name = "openrouter"
    default_rpm = 20
    # The reset of the fixed numbers is the next minute boundary (see limit_headers).
    fixed_requests = WindowState(20, 19, 0.0, 60.0)

    def limit_headers(self, limits: Limits, now: float) -> dict[str, str]:
        state = limits.requests or self.fixed_requests
        reset = state.reset if limits.requests is not None else until_next_minute(now)
        return {
            "X-RateLimit-Limit": str(state.limit),
            "X-RateLimit-Remaining": str(state.remaining),
            "X-RateLimit-Reset": str(epoch_ms(now, reset)),
        }

    def envelope(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> Any:
        return {"error": {"message": message, "code": status}}

    def _quota_body(self, window: str, limit: int, reset_ms: int | None) -> Any:
        quoted = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0"}
        if reset_ms is not None:
            quoted["X-RateLimit-Reset"] = str(reset_ms)
        return {
            "error": {
                "message": f"Rate limit exceeded: {window}. ",
                "code": 429,
                "metadata": {"headers": quoted, "provider_name": None},
            },
            "user_id": "user_x",
        }

    def rate_limited(self, ctx: Context, breach: Breach, limits: Limits) -> Payload:
        headers = self.limit_headers(limits, ctx.now)
        headers.update({"X-RateLimit-Limit": str(breach.limit), "X-RateLimit-Remaining": "0"})
        window = limits.requests if breach.metric == "requests" else None
        reset = None if breach.reset is None else exhausted(window, breach).reset
        reset_ms = None if reset is None else epoch_ms(ctx.now, reset)
        if reset_ms is not None:
            headers["X-RateLimit-Reset"] = str(reset_ms)
        body = self._quota_body("free-models-per-min", breach.limit, reset_ms)
        return Payload(429, body, headers)

    def quota_exhausted(self, ctx: Context, reset: float, limits: Limits) -> Payload:
        reset_ms = epoch_ms(ctx.now, reset)
        headers = self.limit_headers(limits, ctx.now)
        headers.update(
            {
                "X-RateLimit-Limit": "50",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset_ms),
            }
        )
        body = self._quota_body("free-models-per-day", 50, reset_ms)
        body["error"]["message"] += "Add 10 credits to unlock 1000 free model requests per day"
        return Payload(429, body, headers)

    def unauthorized(self, ctx: Context) -> Any:
        return self.envelope(401, f"User not found for API key {ctx.key}", "auth", None)


class Gemini(Dialect):
    """No rate-limit headers; errors are google.rpc Status objects inside a JSON list."""

    name = "gemini"
    default_rpm = 10

    def limit_headers(self, limits: Limits, now: float) -> dict[str, str]:
        return {}

    def envelope(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> Any:
        grpc = _GRPC_STATUS.get(status, "UNKNOWN")
        return [{"error": {"code": status, "message": message, "status": grpc}}]

    def _quota_body(
        self, ctx: Context, metric: str, quota_id: str, value: int, reset: float | None
    ) -> Any:
        message = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits.\n"
            f"* Quota exceeded for metric: {metric}, limit: {value}, model: {ctx.model}"
        )
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": quota_id,
                        "quotaDimensions": {"model": ctx.model, "location": "global"},
                        "quotaValue": str(value),
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ]
        if reset is not None:
            message += f"\nPlease retry in {reset:.1f}s."
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    # Half up, not Python's round-half-even: 2.5 s is "3s".
                    "retryDelay": f"{math.floor(reset + 0.5)}s",
                }
            )
        error = {
            "code": 429,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": details,
        }
        return [{"error": error}]

    def rate_limited(self, ctx: Context, breach: Breach, limits: Limits) -> Payload:
        if breach.metric == "requests":
            metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
            quota_id = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
        else:
            metric = (
                "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
            )
            quota_id = "GenerateContentInputTokensPerModelPerMinute-FreeTier"
        body = self._quota_body(ctx, metric, quota_id, breach.limit, breach.reset)
        return Payload(429, body, {})

    def quota_exhausted(self, ctx: Context, reset: float, limits: Limits) -> Payload:
        metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        quota_id = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        return Payload(429, self._quota_body(ctx, metric, quota_id, 250, reset), {})

    def unauthorized(self, ctx: Context) -> Any:
        message = f"API key not valid: {ctx.key}. Please pass a valid API key."
        return self.envelope(401, message, "", None)


class LlamaCpp(Dialect):
    """llama.cpp's server: no rate-limit headers, {"error": {"code", "message", "type"}}."""

    name = "llamacpp"

    def limit_headers(self, limits: Limits, now: float) -> dict[str, str]:
        return {}

    def envelope(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> Any:
        return {"error": {"code": status, "message": message, "type": type_}}

    def rate_limited(self, ctx: Context, breach: Breach, limits: Limits) -> Payload:
        body = self.envelope(429, "Too many requests", "rate_limit_error", None)
        return Payload(429, body, {})

    def quota_exhausted(self, ctx: Context, reset: float, limits: Limits) -> Payload:
        body = self.envelope(429, "Daily quota exceeded", "rate_limit_error", None)
        return Payload(429, body, {})

    def unauthorized(self, ctx: Context) -> Any:
        return self.envelope(401, f"Invalid API Key: {ctx.key}", "authentication_error", None)

    def context_length_exceeded(self, ctx: Context) -> Any:
        return {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 9000,
                "n_ctx": 8192,
            }
        }


DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (Dialect(), Groq(), Cerebras(), OpenRouter(), Gemini(), LlamaCpp())
}
