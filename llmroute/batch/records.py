"""The output line of each job: its answer, or an error object with a kind and a message."""

from __future__ import annotations

from typing import Any

from llmroute.attempt import Result
from llmroute.batch.jobs import BadLine, Job
from llmroute.errors import ConfigError, LLMRouteError, RequestRejectedError, UsageError


def answer_record(job: Job, result: Result) -> dict[str, Any]:
    c = result.candidate
    return {
        "id": job.id,
        "content": result.content,
        "provider": c.provider,
        "key": c.key.alias,
        "model": c.model,
        "latency_s": round(result.latency_s, 4),
        "usage": result.usage.to_dict() if result.usage else None,
        "attempts": sum(1 for a in result.attempts if a.called),
    }


def error_record(job: Job, error: LLMRouteError) -> dict[str, Any]:
    attempts = getattr(error, "attempts", ())
    return {
        "id": job.id,
        "error": {"kind": error_kind(error), "message": str(error)},
        "attempts": sum(1 for a in attempts if a.called),
    }


def bad_line_record(bad: BadLine) -> dict[str, Any]:
    return {"id": bad.id, "line": bad.line, "error": {"kind": "bad_input", "message": bad.message}}


def error_kind(error: LLMRouteError) -> str:
    if isinstance(error, RequestRejectedError):
        return "rejected"  # the request is wrong: retrying will not help
    if isinstance(error, ConfigError | UsageError):
        return "config"
    return "failed"  # every candidate failed or was busy: --retry-failed may do better
