"""The pure parts of `llmroute chat`: `session` (the conversation's state), `commands` (what a
typed line means) and `note` (the per-reply note as text). The terminal loop and line input
live with the CLI, in `llmroute.cli.chat_run` and `llmroute.cli.chat_lines`."""
