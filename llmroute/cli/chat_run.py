"""Running `chat`: read a line, do what it says, stream the reply to stdout, note it on stderr.

One router (and one event loop, an asyncio.Runner) serves the whole session; each turn is one
`runner.run()`. While a reply streams, the Runner turns Ctrl-C into the cancellation of that
turn only: the stream is closed, the prompt stays unanswered (for /retry), and the loop goes
on. Outside a turn, Ctrl-C is an ordinary KeyboardInterrupt, read at the prompt.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from llmroute.chat.commands import (
    Clear,
    Command,
    Composer,
    Exit,
    Help,
    Hint,
    Retry,
    Save,
    Send,
    SetModel,
    SetSystem,
    SetTask,
    Undo,
    help_text,
)
from llmroute.chat.note import note_line
from llmroute.chat.session import Session
from llmroute.cli.boundary import EXIT_OK, EXIT_USAGE, exit_code, guarded
from llmroute.cli.chat_lines import MORE, PROMPT, Lines, PipedLines, TerminalLines
from llmroute.cli.options import RequestOptions
from llmroute.cli.report import Report
from llmroute.cli.stdout import emit
from llmroute.errors import (
    ConfigError,
    LLMRouteError,
    RequestFailedError,
    RequestRejectedError,
)

if TYPE_CHECKING:
    from llmroute.attempt import Result
    from llmroute.router import Router


def run_chat(options: RequestOptions) -> int:
    report = Report.for_stderr(quiet=options.quiet, verbose=options.verbose)
    return guarded(lambda: _chat(options, report), report)


def _chat(options: RequestOptions, report: Report) -> int:
    from llmroute.environment import state_dir
    from llmroute.router import Router

    session = Session(task=options.task, model=options.model, system=options.system)
    with asyncio.Runner() as runner:
        router = Router.from_path(
            options.config, observer=report.event, log=options.log.policy("chat")
        )
        try:
            router.route(session.target)  # a wrong -t or -m fails before the first prompt
            lines: Lines = (
                TerminalLines(state_dir() / "chat_history")
                if sys.stdin is not None and sys.stdin.isatty()
                else PipedLines(sys.stdin)
            )
            try:
                return Chat(router, runner, session, report, options).loop(lines)
            finally:
                lines.close()
        finally:
            runner.run(router.aclose())


class Chat:
    def __init__(
        self,
        router: Router,
        runner: asyncio.Runner,
        session: Session,
        report: Report,
        options: RequestOptions,
    ) -> None:
        self.router, self.runner, self.session = router, runner, session
        self.report, self.options = report, options
        self.interactive = True
        self._at_line_start = True  # stdout: did the last reply end its line?
        self._reader_gone = False

    def loop(self, lines: Lines) -> int:
        self.interactive = lines.interactive
        if self.interactive:
            self._note(f"chat via {self._route_name()} · /help lists the commands · Ctrl-D leaves")
        composer = Composer()
        while True:
            try:
                line = lines.read(MORE if composer.in_block else PROMPT)
            except EOFError:
                return self._eof(composer)
            except KeyboardInterrupt:
                if not self.interactive:
                    raise
                sys.stderr.write("\n")
                if composer.discard() or lines.typed().strip():
                    continue  # Ctrl-C drops what was typed; at an empty prompt it leaves
                return EXIT_OK
            command = composer.feed(line)
            code = None if command is None else self.do(command)
            if code is not None:
                return code
            if self._reader_gone:  # stdout's reader went away (`| head`): stop asking
                return EXIT_OK

    def do(self, command: Command) -> int | None:
        """Carry out one command; an exit code ends the session."""
        match command:
            case Send(text):
                return self.turn(text)
            case Retry():
                prompt = self.session.retry()
                return self._hint("nothing to retry yet") if prompt is None else self.turn(prompt)
            case Undo():
                taken = self.session.undo()
                if taken is None:
                    return self._hint("nothing to undo")
                self._note(f"took back: {_short(taken[0])}")
            case Clear():
                self.session.clear()
                self._note("conversation cleared")
            case SetSystem(text):
                self.session.system = text
                self._note("system prompt set" if text else "system prompt removed")
            case SetTask(name) | SetModel(name):
                return self._reroute(command, name)
            case Save(path):
                return self._save(Path(path).expanduser())
            case Help():
                self.report.console.print(
                    help_text(), markup=False, highlight=False, soft_wrap=True
                )
            case Exit():
                return EXIT_OK
            case Hint(message):
                return self._hint(message)
        return None

    def turn(self, prompt: str) -> int | None:
        """Send the conversation and `prompt`; stream the reply. Only a whole reply is kept."""
        messages = self.session.ask(prompt)
        try:
            result = self.runner.run(self._stream(messages))
        except KeyboardInterrupt:
            if self._at_line_start:
                sys.stderr.write("\n")  # after the terminal's ^C
            self._end_line()
            if not self.interactive:
                raise
            self._note("reply cancelled (/retry asks again)")
            return None
        except LLMRouteError as exc:
            self._end_line()
            self._failed(exc)
            return None if self.interactive else exit_code(exc)
        self._end_line(always=not result.content)
        self.session.answered(result.content)
        self._note(note_line(result))
        return None

    def _failed(self, exc: LLMRouteError) -> None:
        """The sentence; and the attempts, unless one attempt said it all (at a terminal)."""
        if isinstance(exc, RequestFailedError | RequestRejectedError):
            called = sum(1 for a in exc.attempts if a.called)
            if called > 1 or not self.interactive:
                self.report.attempts(exc.attempts)
        self.report.error(str(exc))
        if self.interactive and isinstance(exc, RequestFailedError):
            self._note("/retry asks again")

    async def _stream(self, messages: list[dict[str, str]]) -> Result:
        o = self.options
        stream = self.router.stream(
            self.session.target, messages, deadline=o.deadline, timeout=o.timeout,
            ttft_timeout=o.ttft_timeout, **o.params,
        )  # fmt: skip
        async for text in stream:
            self._write(text)
        return stream.result

    def _reroute(self, command: SetTask | SetModel, name: str | None) -> int | None:
        try:
            self.router.route(name or self.session.task)
        except ConfigError as exc:
            return self._hint(str(exc))
        if isinstance(command, SetTask):
            self.session.task, self.session.model = name, None
        else:
            self.session.model = name
        self._note(f"now routing by {self._route_name()}")
        return None

    def _save(self, path: Path) -> int | None:
        text = json.dumps(self.session.to_dict(), indent=2, ensure_ascii=False) + "\n"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            return self._hint(f"could not save to {path}: {exc.strerror or exc}")
        self._note(f"saved {len(self.session.turns)} turn(s) to {path}")
        return None

    def _eof(self, composer: Composer) -> int:
        if self.interactive:
            sys.stderr.write("\n")
            return EXIT_OK
        if composer.in_block:
            self.report.error('the input ended inside a """ block; close it with a """ line')
            return EXIT_USAGE
        return EXIT_OK

    def _route_name(self) -> str:
        s = self.session
        return s.model or f"task {s.task or self.router.config.settings.default_task}"

    def _write(self, text: str) -> None:
        """To stdout at once. A reader that went away ends the session after this turn; the
        reply is still read to its end, so that it is accounted for like any other."""
        if not text:
            return
        self._at_line_start = text.endswith("\n")
        if not emit(text):
            self._reader_gone = True

    def _end_line(self, *, always: bool = False) -> None:
        """Every reply ends its line, so the note and the next prompt start on their own
        (`always`: an empty reply still gets its line)."""
        if always or not self._at_line_start:
            self._write("\n")

    def _note(self, text: str) -> None:
        self.report.note(text)

    def _hint(self, message: str) -> int | None:
        """A command that cannot be done: one line; in a script, the end (exit 2)."""
        self.report.error(message)
        return None if self.interactive else EXIT_USAGE


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
