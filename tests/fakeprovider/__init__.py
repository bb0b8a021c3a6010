"""A fault-injecting, OpenAI-compatible HTTP server for llmroute's tests.

    with FakeServer() as server:
        groq = server.provider("groq", dialect="groq", models=["llama-3.1-8b-instant"])
        key = groq.key("gsk_fake1_abcdefghijklmnop")
        key.script(Reply.rate_limited(reset=30.0), Reply.ok("hello"))
        ...  # point the client at groq.base_url

The `fake_server` pytest fixture lives in tests.fakeprovider.fixtures.
"""

from .dialects import DIALECTS
from .limits import RefillBucket, SlidingWindow, WindowState
from .log import LoggedRequest
from .provider import FakeKey, FakeProvider
from .replies import (
    CutReply,
    DialectReply,
    OkReply,
    RawReply,
    Reply,
    ResetReply,
    StallReply,
    Stream,
    ToolCall,
)
from .resets import go_duration
from .server import FakeServer
from .tokens import prompt_tokens, request_cost, text_tokens

__all__ = [
    "DIALECTS",
    "CutReply",
    "DialectReply",
    "FakeKey",
    "FakeProvider",
    "FakeServer",
    "LoggedRequest",
    "OkReply",
    "RawReply",
    "RefillBucket",
    "Reply",
    "ResetReply",
    "SlidingWindow",
    "StallReply",
    "Stream",
    "ToolCall",
    "WindowState",
    "go_duration",
    "prompt_tokens",
    "request_cost",
    "text_tokens",
]
