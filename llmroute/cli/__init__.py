"""The command line: a thin Typer layer over the router library.

Each command is a declaration, `<command>.py` (its options and help; it builds the options
object and imports its runtime only when it runs, so that `--help` stays fast), and at most one
runtime module, `<command>_run.py`, which opens what it needs, does the work and prints.
Rendering lives in `*_view.py` and `report.py`; `boundary.py` turns errors into exit codes.
"""
