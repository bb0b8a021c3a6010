"""What a line typed into `llmroute chat` means: a message, a slash command, or a hint.

Pure: lines in, commands out. A bad command becomes a `Hint` (one line saying how to use it),
never an exception. `Composer` gathers `\"\"\"` … `\"\"\"` blocks into one message.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK = '"""'


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class SetTask:
    name: str


@dataclass(frozen=True)
class SetModel:
    spec: str | None  # None: back to the task's route


@dataclass(frozen=True)
class SetSystem:
    text: str | None  # None: no system prompt


@dataclass(frozen=True)
class Save:
    path: str


@dataclass(frozen=True)
class Retry:
    pass


@dataclass(frozen=True)
class Undo:
    pass


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Exit:
    pass


@dataclass(frozen=True)
class Hint:
    """Not a command: a one-line hint for what was typed."""

    message: str


Command = Send | SetTask | SetModel | SetSystem | Save | Retry | Undo | Clear | Help | Exit | Hint

USAGE = {
    "task": ("/task NAME", "route the next turns by this task (unpins /model)"),
    "model": ("/model [PROVIDER:MODEL]", "pin one model; alone: back to the task's route"),
    "system": ("/system [TEXT]", "set the system prompt; alone: remove it"),
    "retry": ("/retry", "ask the last prompt again (maybe on another provider)"),
    "undo": ("/undo", "take back the last prompt and its reply"),
    "clear": ("/clear", "forget the conversation (the system prompt stays)"),
    "save": ("/save PATH", "write the conversation to PATH as JSON"),
    "help": ("/help", "show this help"),
    "exit": ("/exit", "leave (so do Ctrl-D, and Ctrl-C at an empty prompt)"),
}
_NO_ARGUMENT: dict[str, Command] = {
    "retry": Retry(),
    "undo": Undo(),
    "clear": Clear(),
    "help": Help(),
    "exit": Exit(),
}
_ALIASES = {"quit": "exit", "q": "exit", "?": "help", "h": "help"}


def help_text() -> str:
    width = max(len(usage) for usage, _ in USAGE.values())
    rows = [f"  {usage:<{width}}  {what}" for usage, what in USAGE.values()]
    return "\n".join(
        [
            "Type a message and press Enter; the whole conversation goes with it.",
            *rows,
            f"  {BLOCK:<{width}}  on a line of its own: start or end a multi-line message",
            f"  {'//TEXT':<{width}}  send a message that begins with /",
        ]
    )


def parse_line(line: str) -> Command | None:
    """One line of input; None for a blank line."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("//"):
        return Send(text[1:])
    if not text.startswith("/"):
        return Send(text)
    name, _, argument = text[1:].partition(" ")
    name = _ALIASES.get(name.lower(), name.lower())
    return _command(name, argument.strip())


def _command(name: str, argument: str) -> Command:
    if name in _NO_ARGUMENT:
        return Hint(f"/{name} takes no argument") if argument else _NO_ARGUMENT[name]
    if name == "system":
        return SetSystem(argument or None)
    if name == "save":
        return Save(argument) if argument else _usage(name)
    if name == "task":
        return SetTask(argument) if argument and " " not in argument else _usage(name)
    if name == "model":
        if not argument:
            return SetModel(None)
        provider, colon, model = argument.partition(":")
        if colon and provider and model and " " not in argument:
            return SetModel(argument)
        return _usage(name)
    return Hint(
        f"unknown command /{name}: /help lists the commands (start a message with // to send "
        "a line that begins with /)"
    )


def _usage(name: str) -> Hint:
    usage, what = USAGE[name]
    return Hint(f"usage: {usage} ({what})")


class Composer:
    """Lines in, commands out. A line that starts with \"\"\" opens a block: every line up to
    one that is only \"\"\" makes one message, sent as typed (no commands inside)."""

    def __init__(self) -> None:
        self._block: list[str] | None = None

    @property
    def in_block(self) -> bool:
        return self._block is not None

    def feed(self, line: str) -> Command | None:
        """The command this line completes, or None (a blank line, or a block still open)."""
        if self._block is None:
            stripped = line.strip()
            if not stripped.startswith(BLOCK):
                return parse_line(line)
            rest = stripped[len(BLOCK) :]
            if rest.endswith(BLOCK):  # """one line"""
                return _message([rest[: -len(BLOCK)]])
            self._block = [rest] if rest.strip() else []
            return None
        if line.strip() == BLOCK:
            lines, self._block = self._block, None
            return _message(lines)
        self._block.append(line)
        return None

    def discard(self) -> bool:
        """Drop an open block (Ctrl-C); True when there was one."""
        had, self._block = self._block is not None, None
        return had


def _message(lines: list[str]) -> Send | None:
    text = "\n".join(lines).strip("\n")
    return Send(text) if text.strip() else None
