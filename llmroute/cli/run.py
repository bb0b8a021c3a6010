"""Running `ask`: build the router, send the request, print the answer and the report."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmroute.attempt import Result
from llmroute.cli.boundary import guarded
from llmroute.cli.prompt import build_messages, read_prompt
from llmroute.cli.report import Report


@dataclass(frozen=True)
class AskRequest:
    prompt: str | None
    task: str | None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    json_output: bool = False
    stream: bool = True
    quiet: bool = False
    config: Path | None = None
    timeout: float | None = None
    deadline: float | None = None
    ttft_timeout: float | None = None
    verbose: int = 0


def run_ask(request: AskRequest) -> int:
    report = Report.for_stderr(quiet=request.quiet, verbose=request.verbose)
    return guarded(lambda: _ask(request, report), report, json_output=request.json_output)


def _ask(request: AskRequest, report: Report) -> int:
    prompt = read_prompt(request.prompt, sys.stdin)
    messages = build_messages(prompt, request.system)
    params = dict(request.params)
    if request.stream:
        result = asyncio.run(_stream(request, report, messages, params))
    else:
        result = asyncio.run(_complete(request, report, messages, params))
        if request.json_output:
            emit(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        else:
            emit(result.content)
    if not request.json_output and not result.content.endswith("\n"):
        emit("\n")
    report.result(result)
    return 0


async def _complete(
    request: AskRequest, report: Report, messages: list[dict[str, str]], params: dict[str, Any]
) -> Result:
    from llmroute.router import Router

    async with Router.from_path(request.config, observer=report.event) as router:
        return await router.complete(
            request.task, messages, deadline=request.deadline, timeout=request.timeout, **params
        )


async def _stream(
    request: AskRequest, report: Report, messages: list[dict[str, str]], params: dict[str, Any]
) -> Result:
    """Each piece of the answer goes out as it arrives; a break keeps what was shown."""
    from llmroute.errors import StreamBrokenError
    from llmroute.router import Router

    async with Router.from_path(request.config, observer=report.event) as router:
        stream = router.stream(
            request.task, messages, deadline=request.deadline, timeout=request.timeout,
            ttft_timeout=request.ttft_timeout, **params,
        )  # fmt: skip
        async with stream:
            try:
                async for text in stream:
                    emit(text)
            except StreamBrokenError as broken:
                report.broken_line(broken.partial)
                raise
        return stream.result


def emit(text: str) -> None:
    """Write to stdout; a reader that went away (`| head`) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
