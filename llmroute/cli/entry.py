"""`llmroute`, the console script: `ask` through a running gateway by the fast path, every
other command (and every `ask` the fast path does not take) by the Typer app."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        if sys.argv[1:2] == ["ask"]:
            from llmroute.cli.quick_ask import quick_ask

            code = quick_ask(sys.argv[2:])
            if code is not None:
                sys.exit(code)
        from llmroute.cli.app import app

        app(prog_name="llmroute")
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
