"""Running `ask`: read the prompt, build the router, send the request, print the answer and
the report."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmroute.attempt import Result
from llmroute.cli.boundary import guarded
from llmroute.cli.options import RequestOptions
from llmroute.cli.report import Report
from llmroute.cli.stdin import build_messages, read_prompt
from llmroute.cli.stdout import emit
from llmroute.errors import StreamBrokenError

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


def run_ask(
    options: AskOptions,
    *,
    messages: list[dict[str, str]] | None = None,
    unreachable: str | None = None,
) -> int:
    """`messages`: the prompt, already read (by the fast path, whose gateway then did not
    answer: `unreachable` says so under -v)."""
    request = options.request
    report = Report.for_stderr(quiet=request.quiet, verbose=request.verbose)
    if unreachable:
        log.info("%s", unreachable)
    return guarded(lambda: _ask(options, report, messages), report, json_output=options.json_output)


def _ask(options: AskOptions, report: Report, messages: list[dict[str, str]] | None) -> int:
    if messages is None:
        prompt = read_prompt(options.prompt, sys.stdin)
        messages = build_messages(prompt, options.request.system)
    result = None if _in_process_only(options) else _through_gateway(options, report, messages)
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


def _in_process_only(options: AskOptions) -> bool:
    """`--direct`; or a say over the request log, which a gateway keeps by its own policy (it
    logs as `serve`), so the request is routed here, where the flag is honoured."""
    log_flags = options.request.log
    if options.direct:
        return True
    if log_flags.off or log_flags.content is not None:
        log.info("routing in this process: --no-log / --log-content apply to its own log")
        return True
    return False


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
    from llmroute.gateway.client import (
        GatewayCall,
        GatewayUnreachable,
        content_of,
        find_gateway,
        unreachable_note,
    )

    request = options.request
    env = load_environment()
    config = config_file(request.config, env)
    target = find_gateway(env, str(state_dir()), str(config.resolve()) if config else None)
    if target is None:
        return None
    settings = {
        "deadline": request.deadline, "timeout": request.timeout,
        "ttft_timeout": request.ttft_timeout,
    }  # fmt: skip
    call = GatewayCall(
        target, messages, model=request.target, params=request.params, settings=settings
    )
    try:
        call.open()
    except GatewayUnreachable as exc:
        log.info("%s", unreachable_note(target, exc))
        return None
    if not options.stream:
        response = call.complete()
        return call.result(content_of(response), response)
    parts = []
    try:
        for text in call.stream():
            parts.append(text)
            emit(text)
    except StreamBrokenError as broken:
        report.broken_line(broken.partial)
        raise
    return call.result("".join(parts))


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
