"""`llmroute usage`: where requests and tokens went, and each daily limit's headroom."""

from __future__ import annotations

from typing import Annotated

import typer

from llmroute.cli.options import ConfigOpt


def usage(
    since: Annotated[
        str, typer.Option("--since", help="From then on: today, 24h, 7d, 2026-12-01.")
    ] = "today",
    by: Annotated[
        str, typer.Option("--by", help="Rows per provider, key, model, task, day or hour.")
    ] = "provider",
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV: a header, one row each.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Where requests and tokens went, and how much of each daily limit is left.

    From the request log: requests answered and failed, fallbacks taken, 429s met, tokens in
    and out, latency (p50, p95) and time to first token; then, for every budget with a daily
    limit (in the config, or learned from the provider's headers), what today (UTC) has used
    of it and when it resets.

    By provider, key or model, an attempt counts where it went: a 429 against the key that
    sent it, an answer for the key that gave it, a failed request for the last one tried.
    """
    from llmroute.cli.usage_run import UsageOptions, run_usage

    options = UsageOptions(
        since=since, by=by, json_output=json_output, csv_output=csv_output, config=config
    )
    raise typer.Exit(run_usage(options))
