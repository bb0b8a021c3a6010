"""`python -m llmroute` = `llmroute`."""

from llmroute.cli.entry import main

main()
