"""Where `chat` input comes from: a terminal (line editing, history, completion) or a pipe.

Both raise EOFError at the end of input and KeyboardInterrupt on Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Protocol, TextIO

from llmroute.chat.commands import USAGE
from llmroute.cli.stdin import read_line

log = logging.getLogger("llmroute")

PROMPT = "> "
MORE = "... "  # inside a multi-line block
HISTORY_LENGTH = 1000


class Lines(Protocol):
    interactive: bool

    def read(self, prompt: str) -> str:
        """The next line, without its newline."""

    def typed(self) -> str:
        """What was typed on the line when Ctrl-C came."""

    def close(self) -> None: ...


class PipedLines:
    """stdin that is not a terminal: one line at a time, no prompt, no echo."""

    interactive = False

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._number = 0

    def read(self, prompt: str) -> str:
        self._number += 1
        line = read_line(self._stream, self._number) if self._stream else None
        if line is None:
            raise EOFError
        return line.removesuffix("\n").removesuffix("\r")

    def typed(self) -> str:
        return ""

    def close(self) -> None:
        pass


class TerminalLines:
    """A terminal: GNU readline when Python has it (editing, history kept in `history`, Tab
    completes commands), else plain input(). Prompts go to stderr when stdout is redirected,
    so that stdout keeps only the replies."""

    interactive = True

    def __init__(self, history: Path | None) -> None:
        self._history = history
        self._readline = _readline()
        self._loaded = 0
        if self._readline is not None:
            self._start(self._readline)

    def read(self, prompt: str) -> str:
        if sys.stdout.isatty():
            return input(prompt)
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return input()

    def typed(self) -> str:
        """What was on the line when Ctrl-C came ('' without readline)."""
        return self._readline.get_line_buffer() if self._readline is not None else ""

    def close(self) -> None:
        rl = self._readline
        if rl is None or self._history is None:
            return
        try:
            self._history.parent.mkdir(parents=True, exist_ok=True)
            self._history.touch(mode=0o600)  # prompts can be private: like a shell's history
            added = rl.get_current_history_length() - self._loaded
            rl.set_history_length(HISTORY_LENGTH)
            rl.append_history_file(max(0, added), str(self._history))
        except OSError as exc:
            log.info("chat history not saved to %s: %s", self._history, exc)

    def _start(self, rl: ModuleType) -> None:
        if self._history is not None and self._history.is_file():
            try:
                rl.read_history_file(str(self._history))
            except OSError as exc:
                log.info("chat history not read from %s: %s", self._history, exc)
        self._loaded = rl.get_current_history_length()
        rl.set_completer(_complete)
        rl.parse_and_bind("tab: complete")


def _readline() -> ModuleType | None:
    try:
        import readline
    except ImportError:  # no readline on this platform: plain input() still works
        return None
    return readline


def _complete(text: str, state: int) -> str | None:
    """Tab after `/` at the start of the line offers the commands."""
    import readline

    if readline.get_begidx() != 0 or not text.startswith("/"):
        return None
    matches = [f"/{name} " for name in USAGE if f"/{name}".startswith(text)]
    return matches[state] if state < len(matches) else None
