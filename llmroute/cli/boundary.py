"""The CLI boundary: every error becomes one sentence on stderr and an exit code, and a reader
of stdout that went away (`| head`) is not an error."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

from llmroute.cli.report import Report
from llmroute.errors import (
    ConfigError,
    LLMRouteError,
    RequestFailedError,
    RequestRejectedError,
    UsageError,
)

EXIT_OK = 0
EXIT_FAILED = 1  # every candidate failed
EXIT_USAGE = 2  # usage or configuration error
EXIT_REJECTED = 3  # the request itself was rejected
EXIT_INTERRUPTED = 130

log = logging.getLogger("llmroute")


def exit_code(exc: LLMRouteError) -> int:
    if isinstance(exc, RequestRejectedError):
        return EXIT_REJECTED
    if isinstance(exc, ConfigError | UsageError):
        return EXIT_USAGE
    return EXIT_FAILED


def guarded(work: Callable[[], int], report: Report, *, json_output: bool = False) -> int:
    try:
        return work()
    except LLMRouteError as exc:
        if isinstance(exc, RequestFailedError | RequestRejectedError):
            report.attempts(exc.attempts)
        if json_output:
            _json_error(exc)
        report.error(str(exc))
        return exit_code(exc)
    except KeyboardInterrupt:
        report.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        report.error(
            f"internal error ({type(exc).__name__}: {exc}); rerun with -vv for the traceback "
            "and report it"
        )
        return EXIT_FAILED


def _json_error(exc: LLMRouteError) -> None:
    attempts = getattr(exc, "attempts", ())
    payload = {
        "error": {"type": type(exc).__name__, "exit_code": exit_code(exc), "message": str(exc)},
        "attempts": [a.to_dict() for a in attempts],
    }
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
