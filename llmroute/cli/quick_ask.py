"""`llmroute ask` through a running gateway without loading the CLI: no Typer, no Rich, no
router, no `http.client`; a shell loop of asks then costs little more than Python's start-up.

It takes only what it understands as Typer would (the same parameter names and values that
`cli.ask.ask` receives) and hands everything else to the full CLI before doing anything:
another option, a value Typer would refuse, `--direct`, `--help`, no gateway to go to. Its
common outcome, an answer with no fallback to list and stderr not a terminal, is printed here;
every other one (errors, fallback tables, colour, `--json`) by the full CLI's own renderers,
loaded then, so the output is the same either way.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from llmroute.cli.stdin import build_messages, read_prompt
from llmroute.cli.stdout import emit
from llmroute.cli.summary import plain_line, summary_text
from llmroute.environment import config_file, load_environment, state_dir
from llmroute.errors import ConfigError, StreamBrokenError
from llmroute.gateway.client import (
    GatewayCall,
    GatewayTarget,
    GatewayUnreachable,
    content_of,
    find_gateway,
    unreachable_note,
)

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from typing import Any

FLAGS = {"--json": "json_output", "--no-stream": "no_stream", "-q": "quiet", "--quiet": "quiet"}
VALUES = {
    "-t": "task", "--task": "task", "-m": "model", "--model": "model", "-s": "system",
    "--system": "system", "--config": "config", "--temperature": "temperature",
    "--max-tokens": "max_tokens", "--timeout": "timeout", "--deadline": "deadline",
    "--ttft-timeout": "ttft_timeout",
}  # fmt: skip
# The lowest value each number option takes (as in cli.options).
FLOATS = {"temperature": 0.0, "timeout": 0.1, "deadline": 0.1, "ttft_timeout": 0.1}
DEFAULTS: dict[str, Any] = {
    "prompt": None, "task": None, "model": None, "system": None, "temperature": None,
    "max_tokens": None, "option": None, "json_output": False, "no_stream": False,
    "quiet": False, "direct": False, "config": None, "timeout": None, "deadline": None,
    "ttft_timeout": None, "verbose": 0, "no_log": False, "log_content": None,
}  # fmt: skip


def quick_ask(args: list[str]) -> int | None:
    """The exit code of `llmroute ask ARGS` answered through a gateway; None: not here (the
    full CLI takes it, nothing having been read or sent)."""
    options = parse(args)
    if options is None:
        return None
    env = load_environment()
    try:
        config = config_file(options["config"], env)
    except ConfigError:
        return None  # the full CLI says so, as it always has
    target = find_gateway(env, str(state_dir()), str(config.resolve()) if config else None)
    if target is None:
        return None
    try:
        return _ask(options, target)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the CLI boundary's, below
        return _failed(options, exc)


def parse(args: list[str]) -> dict[str, Any] | None:
    """`ask`'s parameters, as Typer would pass them, or None for anything this does not
    handle exactly as Typer does."""
    options, rest = dict(DEFAULTS), list(args)
    while rest:
        arg = rest.pop(0)
        name, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in FLAGS and not equals:
            options[FLAGS[name]] = True
        elif arg == "--verbose" or (len(arg) > 1 and arg == "-" + "v" * (len(arg) - 1)):
            options["verbose"] += 1 if arg == "--verbose" else len(arg) - 1
        elif name in VALUES:
            if not equals:
                if not rest or rest[0].startswith("-"):
                    return None
                value = rest.pop(0)
            key = VALUES[name]
            options[key] = _typed(key, value)
            if options[key] is None:
                return None
        elif arg and not arg.startswith("-") and options["prompt"] is None:
            options["prompt"] = arg
        else:
            return None
    return options


def _typed(key: str, value: str) -> Any:
    """The value as Typer converts it; None where Typer would refuse it (then Typer says
    why)."""
    if key == "max_tokens":
        return int(value) if value.isdigit() and int(value) >= 1 else None
    if key == "config":
        return Path(value)
    if key not in FLOATS:
        return value
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= FLOATS[key] else None


def _ask(options: dict[str, Any], target: GatewayTarget) -> int:
    prompt = read_prompt(options["prompt"], sys.stdin)
    messages = build_messages(prompt, options["system"])
    json_output = options["json_output"]
    stream = not (options["no_stream"] or json_output)
    params = {k: options[k] for k in ("temperature", "max_tokens") if options[k] is not None}
    settings = {name: options[name] for name in ("deadline", "timeout", "ttft_timeout")}
    model = options["model"] or options["task"]
    call = GatewayCall(target, messages, model=model, params=params, settings=settings)
    try:
        call.open()
    except GatewayUnreachable as exc:
        return _in_process(options, messages, unreachable_note(target, exc))
    response: dict[str, Any] = {}
    if stream:
        content = "".join(_streamed(call))
    else:
        response = call.complete()
        content = content_of(response)
        if json_output:
            result = call.result(content, response).to_dict()
            emit(json.dumps(result, ensure_ascii=False) + "\n")
        else:
            emit(content)
    if not json_output and not content.endswith("\n"):
        emit("\n")
    _report(options, call, content, response)
    return 0


def _streamed(call: GatewayCall) -> list[str]:
    parts = []
    for text in call.stream():
        parts.append(text)
        emit(text)
    return parts


def _report(options: dict[str, Any], call: GatewayCall, content: str, response: Any) -> None:
    """The report's line, printed here when Rich would print the same; else by Report."""
    if options["quiet"]:
        return
    report = call.report
    attempts = report.get("attempts") or []
    usage = report.get("usage")
    text = summary_text(
        alias=str(report["key"]), model=str(report["model"]),
        latency_s=float(report.get("latency_s") or 0.0), ttft_s=report.get("ttft_s"),
        tokens=(int(usage["prompt_tokens"]), int(usage["completion_tokens"])) if usage else None,
        called=sum(1 for a in attempts if a.get("outcome") != "skipped"),
    )  # fmt: skip
    line = plain_line(text, sys.stderr)
    if line is not None and len(attempts) <= 1:  # no fallbacks: no table
        sys.stderr.write(line)
        sys.stderr.flush()
        return
    from llmroute.cli.report import Report

    renderer = Report.for_stderr(quiet=False, verbose=options["verbose"])
    renderer.result(call.result(content, response))


def _failed(options: dict[str, Any], exc: BaseException) -> int:
    """What the full CLI's boundary says and returns for `exc`."""
    from llmroute.cli.boundary import guarded
    from llmroute.cli.report import Report

    report = Report.for_stderr(quiet=options["quiet"], verbose=options["verbose"])
    stream = not (options["no_stream"] or options["json_output"])
    if stream and isinstance(exc, StreamBrokenError):
        report.broken_line(exc.partial)

    def again() -> int:
        raise exc

    return guarded(again, report, json_output=options["json_output"])


def _in_process(options: dict[str, Any], messages: list[dict[str, str]], note: str) -> int:
    """The gateway did not answer: route here, as the full CLI would, with the prompt read."""
    from llmroute.cli.ask import ask_options
    from llmroute.cli.ask_run import run_ask

    direct = ask_options(**{**options, "direct": True})
    return run_ask(direct, messages=messages, unreachable=note)
