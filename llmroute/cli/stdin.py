"""Reading what users pipe in: UTF-8 only, bounded, and a closed stdin is no input.

cron and some daemons run commands with stdin closed (`llmroute ask hello <&-`); a prompt given
as an argument must still work then. Undecodable or oversized input is the user's to fix, so it
is a sentence and exit 2, never a traceback or a MemoryError.
"""

from __future__ import annotations

import codecs

from llmroute.errors import UsageError

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

MAX_STDIN_BYTES = 16 * 1024 * 1024
_MIB = 1024 * 1024


def piped_text(stdin: TextIO | None, *, required: bool) -> str:
    """What was piped in ("" from a terminal). A closed or unreadable stdin is no input,
    unless the input is `required` (there is no prompt argument)."""
    try:
        if stdin is None or stdin.isatty():
            return ""
        raw = _read_bounded(stdin)
    except (OSError, ValueError) as exc:  # a closed descriptor: EBADF, or a closed file object
        if not required:
            return ""
        raise UsageError(f"cannot read stdin ({exc}); give the prompt as an argument") from None
    return decode(raw, "stdin")


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


def _read_bounded(stdin: TextIO) -> bytes:
    binary: BinaryIO | None = getattr(stdin, "buffer", None)
    raw = binary.read(MAX_STDIN_BYTES + 1) if binary else stdin.read(MAX_STDIN_BYTES + 1).encode()
    if len(raw) > MAX_STDIN_BYTES:
        raise UsageError(
            f"stdin holds more than {MAX_STDIN_BYTES // _MIB} MiB: send a smaller part, or one "
            "prompt per line with `llmroute batch`"
        )
    return raw


def decode(raw: bytes, where: str) -> str:
    """UTF-8 (a byte-order mark is dropped), or a sentence saying where it is not."""
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = bom + exc.start  # an offset in what was read, BOM included
        raise UsageError(
            f"{where} is not UTF-8 text: byte {at} is 0x{raw[at]:02x}; convert "
            "it first, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def require_text(value: str, where: str) -> str:
    """A command-line value: Python turns argv bytes that are not UTF-8 into lone surrogates,
    which no request can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"{where} is not UTF-8 text (character {exc.start}); convert it first, e.g. "
            "`iconv -f latin1 -t utf-8`"
        ) from None
    return value


def read_line(stdin: TextIO, number: int) -> str | None:
    """One line of piped input, decoded (None at the end); `number` names it in an error."""
    binary: BinaryIO | None = getattr(stdin, "buffer", None)
    if binary is None:
        return stdin.readline(MAX_STDIN_BYTES) or None
    raw = binary.readline(MAX_STDIN_BYTES)
    return decode(raw, f"stdin line {number}") if raw else None
