"""`llmroute bench`: measure candidates (or a whole task's route) through the router.

target.py picks what to measure, plan.py what it will spend, runner.py sends the requests,
stats.py and ranking.py turn samples into figures and a suggested route order, outcome.py
shapes them as JSON and CSV. Everything but runner.py is pure; the command lives in
llmroute.cli.bench (its options) and llmroute.cli.bench_run, its rendering in
llmroute.cli.bench_view.
"""
