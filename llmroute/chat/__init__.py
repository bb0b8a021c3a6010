"""`llmroute chat`: a conversation over the router. `session` and `commands` are pure (state and
parsing); `repl` is the terminal loop, `lines` reads input, `note` renders the per-reply note."""
