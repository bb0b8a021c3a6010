"""`llmroute serve`: the engine behind an OpenAI-compatible HTTP API, for any client.

Imported only by the command that serves: Starlette and uvicorn cost start-up that the other
commands must not pay.
"""
