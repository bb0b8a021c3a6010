"""Input lines → jobs. A bad line is a result of its own (with its line number), not a crash."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmroute import jsontext

REQUEST_FIELDS = ("max_tokens", "temperature")


@dataclass(frozen=True)
class Job:
    id: str | int  # as given in the input, and written back the same way
    line: int
    messages: tuple[Mapping[str, Any], ...]
    task: str | None = None  # a task name or "provider:model"; None: the batch's own
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadLine:
    line: int
    id: str | int | None
    message: str


def key_of(job_id: object) -> str:
    """Ids compare as text: `7` in one run and `"7"` in a resumed file are the same job."""
    return str(job_id)


def split_lines(data: bytes) -> list[bytes]:
    """Lines end at `\n` only (JSON strings may hold U+2028 or U+0085; text line splitting
    would cut those jobs in two); a `\r` before it goes too."""
    return [line.removesuffix(b"\r") for line in data.split(b"\n")]


def read_jobs(lines: Iterable[bytes], *, text: bool = False) -> Iterator[Job | BadLine]:
    """JSONL objects (`id` and `prompt` [+ `system`] or `messages`; optional `task`, `model`,
    `max_tokens`, `temperature`), or with `text`, one prompt per line (id = line number).
    Each line is decoded and parsed on its own: a bad one is that line's error alone."""
    for number, raw in enumerate(lines, start=1):
        bom = 3 if number == 1 and raw.startswith(b"\xef\xbb\xbf") else 0  # the file's BOM
        try:
            line = raw[bom:].decode("utf-8")
        except UnicodeDecodeError as exc:
            at = bom + exc.start
            yield BadLine(number, None, f"line {number} is not UTF-8 text (byte {at})")
            continue
        if not line.strip():
            continue
        if text:
            yield Job(number, number, ({"role": "user", "content": line},))
        else:
            yield parse_line(line, number)


def parse_line(line: str, number: int) -> Job | BadLine:
    try:
        data = jsontext.loads(line)
    except ValueError as exc:  # JSONDecodeError, NaN, overflow, too deep, too many digits
        where = f", column {exc.colno}" if hasattr(exc, "colno") else ""
        reason = getattr(exc, "msg", str(exc))
        return BadLine(number, None, f"line {number} is not JSON ({reason}{where})")
    if not isinstance(data, dict):
        return BadLine(number, None, f"line {number} is not a JSON object")
    try:  # "\ud800" is valid JSON but not text: no request (nor output line) can carry it
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return BadLine(
            number,
            None,
            f"line {number} holds a lone surrogate ({exc.object[exc.start]!a}), not text",
        )
    job_id = data.get("id")
    if not isinstance(job_id, str | int) or isinstance(job_id, bool) or job_id == "":
        return BadLine(number, None, f'line {number} has no "id" (a string or a number)')
    messages = _messages(data)
    if isinstance(messages, str):
        return BadLine(number, str(job_id), f"line {number}: {messages}")
    task = data.get("model") or data.get("task")
    if task is not None and not isinstance(task, str):
        return BadLine(number, str(job_id), f'line {number}: "task"/"model" must be a string')
    params = {k: data[k] for k in REQUEST_FIELDS if data.get(k) is not None}
    return Job(job_id, number, messages, task, params)


def _messages(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...] | str:
    """The chat messages of a line, or why there are none."""
    if "messages" in data:
        messages = data["messages"]
        valid = (
            isinstance(messages, list)
            and messages
            and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m
                for m in messages
            )
        )
        return tuple(messages) if valid else '"messages" must be a list of {role, content}'
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return 'no "prompt" (a non-empty string) or "messages"'
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        return '"system" must be a string'
    head = ({"role": "system", "content": system},) if system else ()
    return (*head, {"role": "user", "content": prompt})
