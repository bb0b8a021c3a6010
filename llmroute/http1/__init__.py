"""A lean HTTP/1.1 client for the chat calls, the hot path of every request.

httpx (under the openai SDK) spends more CPU on one POST than the rest of the router does on
the whole request: a gateway pays it on every request it forwards. This client does the one
thing the chat call needs: POST a prepared body on a kept-alive connection, and hand back the
status, the headers and the body (read whole, or line by line for a stream). Responses are
parsed by httptools, the C parser uvicorn serves with; connections are asyncio's.

What it leaves to the caller: proxies (a URL that the environment sends through one goes by
httpx; see `proxied`), redirects (an API answers, it does not redirect), and HTTP/2. Its errors
are a small tree of its own; `sse.sdk_errors` maps them to the SDK's exception types, so
`classify` keeps one table.
"""

from llmroute.http1.client import Client, Response
from llmroute.http1.errors import ConnectError, HTTPClientError, InvalidURL, ReadError, ReadTimeout
from llmroute.http1.request import Target, proxied, request_bytes, with_body

__all__ = [
    "Client", "ConnectError", "HTTPClientError", "InvalidURL", "ReadError", "ReadTimeout",
    "Response", "Target", "proxied", "request_bytes", "with_body",
]  # fmt: skip
