"""Running `ask`: read the prompt, build the router, send the request, print the answer and
the report."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from llmroute.attempt import Result
from llmroute.cli.boundary import emit, guarded
from llmroute.cli.options import RequestOptions
from llmroute.cli.report import Report
from llmroute.cli.stdin import piped_text, require_text
from llmroute.errors import StreamBrokenError, UsageError

if TYPE_CHECKING:
    from llmroute.requestlog import LogPolicy

log = logging.getLogger("llmroute")


@dataclass(frozen=True, kw_only=True)
class AskOptions:
    """`ask`'s own options, on top of those it shares with `chat`."""

    request: RequestOptions
    prompt: str | None = None
    json_output: bool = False
    stream: bool = True
    direct: bool = False  # route in this process even when a gateway is there


def run_ask(options: AskOptions) -> int:
    request = options.request
    report = Report.for_stderr(quiet=request.quiet, verbose=request.verbose)
    return guarded(lambda: _ask(options, report), report, json_output=options.json_output)


def _ask(options: AskOptions, report: Report) -> int:
    prompt = read_prompt(options.prompt, sys.stdin)
    messages = build_messages(prompt, options.request.system)
    result = None if options.direct else _through_gateway(options, report, messages)
    if result is None:
        result = _in_process(options, report, messages)
    if not options.stream:
        if options.json_output:
            emit(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        else:
            emit(result.content)
    if not options.json_output and not result.content.endswith("\n"):
        emit("\n")
    report.result(result)
    return 0


def read_prompt(argument: str | None, stdin: TextIO | None) -> str:
    """Stdin first, then the argument, separated by a blank line; either may be absent."""
    piped = piped_text(stdin, required=not argument)
    argument = require_text(argument, "the prompt argument") if argument else argument
    parts = [p for p in (piped.strip("\n"), (argument or "").strip("\n")) if p.strip()]
    if not parts:
        raise UsageError(
            'nothing to ask: give a prompt, e.g. llmroute ask "hello", or pipe text in'
        )
    return "\n\n".join(parts)


def build_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def _in_process(options: AskOptions, report: Report, messages: list[dict[str, str]]) -> Result:
    import asyncio  # here, not at the top: a gateway's client does not pay for it

    run = _stream if options.stream else _complete
    return asyncio.run(run(options.request, report, messages))


def _through_gateway(
    options: AskOptions, report: Report, messages: list[dict[str, str]]
) -> Result | None:
    """Ask a running gateway (LLMROUTE_URL, or a local one serving the same config); None when
    there is none, or it did not answer and nothing was sent: then route in process."""
    from llmroute.environment import config_file, load_environment, state_dir
    from llmroute.gateway.client import GatewayCall, GatewayUnreachable, find_gateway

    request = options.request
    env = load_environment()
    target = find_gateway(env, state_dir(), config_file(request.config, env))
    if target is None:
        return None
    body = {"messages": messages, **request.params}
    if request.target:
        body["model"] = request.target
    settings = {
        "deadline": request.deadline, "timeout": request.timeout,
        "ttft_timeout": request.ttft_timeout,
    }  # fmt: skip
    call = GatewayCall(target, body, settings)
    try:
        if not options.stream:
            return call.complete()
        try:
            for text in call.stream():
                emit(text)
        except StreamBrokenError as broken:
            report.broken_line(broken.partial)
            raise
    except GatewayUnreachable as exc:
        log.info("the gateway found by %s did not answer (%s): routing here", target.found, exc)
        return None
    assert call.result is not None  # a stream that ended with [DONE] has its result
    return call.result


async def _complete(
    request: RequestOptions, report: Report, messages: list[dict[str, str]]
) -> Result:
    from llmroute.router import Router

    async with Router.from_path(request.config, observer=report.event, log=_log(request)) as router:
        return await router.complete(
            request.target, messages, deadline=request.deadline, timeout=request.timeout,
            **request.params,
        )  # fmt: skip


async def _stream(
    request: RequestOptions, report: Report, messages: list[dict[str, str]]
) -> Result:
    """Each piece of the answer goes out as it arrives; a break keeps what was shown."""
    from llmroute.router import Router

    async with Router.from_path(request.config, observer=report.event, log=_log(request)) as router:
        stream = router.stream(
            request.target, messages, deadline=request.deadline, timeout=request.timeout,
            ttft_timeout=request.ttft_timeout, **request.params,
        )  # fmt: skip
        async with stream:
            try:
                async for text in stream:
                    emit(text)
            except StreamBrokenError as broken:
                report.broken_line(broken.partial)
                raise
        return stream.result


def _log(request: RequestOptions) -> LogPolicy | None:
    return request.log.policy("ask")
