"""The upstream seam's own choices over real HTTP: when a request counts as sent, and which
proxy the environment names for it."""

from __future__ import annotations

import time

import pytest

from llmroute.attempt import Candidate
from llmroute.keys import ApiKey
from llmroute.upstream import OpenAIUpstream, SendStamp, env_proxy
from tests.fakeprovider import FakeServer

KEY = "sk-upstream-test-0000000000"


async def test_the_send_stamp_is_set_once_the_body_is_written(fake_server: FakeServer) -> None:
    provider = fake_server.provider("fake", dialect="openai")
    provider.key(KEY)
    upstream = OpenAIUpstream()
    candidate = Candidate("fake", ApiKey("fake#1", "FAKE_KEY", KEY), "m")
    stamp, called = SendStamp(time.time), time.time()
    try:
        reply = await upstream.chat(candidate, provider.base_url, [{"role": "user",
                                    "content": "hi"}], {}, 5.0, stamp)  # fmt: skip
    finally:
        await upstream.aclose()
    assert reply.content
    assert stamp.at is not None and called <= stamp.at <= time.time()


@pytest.mark.parametrize(
    ("url", "proxy"),
    [("https://api.example.com/v1/chat/completions", "http://proxy:3128"),
     ("http://plain.example.com/v1/chat/completions", "http://plain-proxy:3128"),
     ("http://127.0.0.1:8080/v1/chat/completions", None),
     ("https://internal.example.org/v1/chat/completions", None)],
)  # fmt: skip
def test_the_proxy_is_the_environments(
    url: str, proxy: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,.example.org")
    assert env_proxy(url) == proxy
