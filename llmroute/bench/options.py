"""What the user asked of a bench, as given on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchOptions:
    task: str | None
    models: tuple[str, ...]
    all_tasks: bool
    route: str | None
    requests: int
    concurrency: int
    prompt: str | None
    prompt_file: Path | None
    max_tokens: int | None
    rank_by: str
    max_share: float
    yes: bool
    json_output: bool
    csv_output: bool
    quiet: bool
    config: Path | None
    timeout: float | None
    deadline: float | None
    ttft_timeout: float | None
