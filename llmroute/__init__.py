"""llmroute: OpenAI-compatible chat requests through a chain of providers and key pools."""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # not `typing`'s: importing it costs a shell loop's start-up
if TYPE_CHECKING:
    from typing import Any

    from llmroute.attempt import Attempt, Candidate, Result, Usage
    from llmroute.config import Config, load_config
    from llmroute.requestlog import LogPolicy
    from llmroute.router import Router

# Lazy: `import llmroute` must stay cheap for the CLI's start-up (the openai SDK is heavy).
_EXPORTS = {
    "Router": "llmroute.router",
    "Result": "llmroute.attempt",
    "Attempt": "llmroute.attempt",
    "Candidate": "llmroute.attempt",
    "Usage": "llmroute.attempt",
    "Config": "llmroute.config",
    "load_config": "llmroute.config",
    "LogPolicy": "llmroute.requestlog",
}
__all__ = [
    "Attempt", "Candidate", "Config", "LogPolicy", "Result", "Router", "Usage", "load_config",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llmroute' has no attribute {name!r}")
