"""`python -m llmroute` = `llmroute`."""

from llmroute.cli.app import main

main()
