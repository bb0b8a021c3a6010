"""Options shared by several commands, declared once so they read and behave the same; and
`RequestOptions`, the one object that carries the shared options of `ask` and `chat`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from llmroute.requestlog import LogPolicy

TaskOpt = Annotated[
    str | None, typer.Option("-t", "--task", help="Task whose route to use (see the config).")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("-m", "--model", help="Pin one provider:model, bypassing the task's route."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: $LLMROUTE_CONFIG, ./routes.toml, XDG)."),
]
SystemOpt = Annotated[str | None, typer.Option("-s", "--system", help="System prompt.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", min=0.0)]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1)]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0.1,
        help="Seconds per upstream attempt, and the longest pause inside a streamed answer.",
    ),
]
DeadlineOpt = Annotated[
    float | None,
    typer.Option(
        "--deadline", min=0.1, help="Seconds for a request across its fallbacks (default 60)."
    ),
]
TtftOpt = Annotated[
    float | None,
    typer.Option(
        "--ttft-timeout", min=0.1, help="Seconds to the first token before falling back (20)."
    ),
]
VerboseOpt = Annotated[
    int, typer.Option("-v", "--verbose", count=True, help="Log every attempt (-vv: debug).")
]
NoLogOpt = Annotated[
    bool, typer.Option("--no-log", help="Keep these requests out of the request log.")
]
LogContentOpt = Annotated[
    bool | None,
    typer.Option(
        "--log-content/--no-log-content",
        help="Keep prompts and answers in the request log, or only who answered and how "
        "(default: [settings] log_content).",
    ),
]


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    """`--no-log` and `--log-content/--no-log-content`, as every routing command takes them."""

    off: bool = False
    content: bool | None = None

    def policy(self, source: str, *, content_default: bool = True) -> LogPolicy | None:
        """What the router is told: None when the requests are not to be logged."""
        from llmroute.requestlog import LogPolicy

        if self.off:
            return None
        return LogPolicy(source, self.content, content_default)


@dataclass(frozen=True, kw_only=True)
class RequestOptions:
    """What `ask` and `chat` both take: where to route, what to send, how long to wait."""

    task: str | None = None
    model: str | None = None  # a pinned `provider:model`, which wins over the task
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # request parameters (`-o`, ...)
    quiet: bool = False
    config: Path | None = None
    timeout: float | None = None
    deadline: float | None = None
    ttft_timeout: float | None = None
    verbose: int = 0
    log: LogOptions = LogOptions()

    @property
    def target(self) -> str | None:
        """What the router routes by: the pinned model, else the task."""
        return self.model or self.task


def since_option(text: str | None, now: float) -> float | None:
    """`--since` as epoch seconds; a form it does not know is a usage error (exit 2)."""
    from llmroute.errors import UsageError
    from llmroute.timespan import parse_since

    if text is None:
        return None
    try:
        return parse_since(text, now)
    except ValueError as exc:
        raise UsageError(f"--since {exc}") from None
