"""Options shared by several commands, declared once so they read and behave the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
PairsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-o", "--option", metavar="KEY VALUE", help="Extra request parameter (repeatable)."
    ),
]
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
