"""The gateway's bearer token (`--token`, LLMROUTE_SERVER_TOKEN), and its refusal to listen on
a non-loopback address without one; over real HTTP, `llmroute serve` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakeprovider import FakeServer
from tests.gateway import (
    Gateway,
    Shared,
    chat_body,
    curl,
    post_raw,
    serve_command,
    shared_gateway,
    split_http,
)
from tests.world import World, assert_no_secret, make_world

TOKEN = "gw-token-HHHHHHHHHHHHHHHHHHHH8"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def by_option(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """A gateway given `--token` on loopback."""
    with shared_gateway(tmp_path_factory.mktemp("gateway-token"), "--token", TOKEN) as shared:
        yield shared


@pytest.fixture(scope="module")
def by_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """A gateway given LLMROUTE_SERVER_TOKEN, listening on every address (which needs it)."""

    def token_in_env(world: World) -> None:
        world.env["LLMROUTE_SERVER_TOKEN"] = TOKEN

    tmp = tmp_path_factory.mktemp("gateway-env-token")
    with shared_gateway(tmp, "--host", "0.0.0.0", configure=token_in_env) as shared:
        yield shared


@pytest.fixture(params=["--token", "LLMROUTE_SERVER_TOKEN"])
def gateway(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    shared: Shared = request.getfixturevalue(
        "by_option" if request.param == "--token" else "by_env"
    )
    shared.reset()
    yield shared.gateway
    assert_no_secret(*shared.gateway.lines)
    assert all(TOKEN not in line for line in shared.gateway.lines)


def openai_error(body: bytes | str) -> dict[str, str]:
    data = json.loads(body)
    assert set(data) == {"error"} and set(data["error"]) == {"message", "type", "code"}
    return dict(data["error"])


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
    ids=["none", "wrong", "not-bearer", "longer", "empty"],
)
def test_a_request_without_the_right_bearer_is_401_in_openai_shape(
    gateway: Gateway, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    response = post_raw(
        f"{gateway.base_url}/chat/completions", json.dumps(chat_body()).encode(), headers
    )
    assert response.status == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = openai_error(response.body)
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert TOKEN not in response.body.decode()
    assert gateway.wait_for_line("POST /v1/chat/completions 401")


def test_the_sdk_with_a_wrong_key_gets_an_authentication_error(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="other", messages=HELLO)
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
        for protected in (
            client.models.list,
            lambda: client.get("/llmroute/state", cast_to=object),
        ):
            with pytest.raises(openai.AuthenticationError):
                protected()


def test_the_right_bearer_is_served_streamed_and_not(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key=TOKEN, max_retries=0) as client:
        completion = client.chat.completions.create(model="other", messages=HELLO)
        assert completion.choices[0].message.content == "echo: hello"
        stream = client.chat.completions.create(model="other", messages=HELLO, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "echo: hello"
        assert "fast" in {m.id for m in client.models.list()}
        assert client.get("/llmroute/state", cast_to=object)


def test_health_stays_open(gateway: Gateway) -> None:
    done = curl(f"{gateway.url}/health")
    status, _, body = split_http(done.stdout)
    assert (status, json.loads(body)) == (200, {"status": "ok"})


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serving_beyond_loopback_without_a_token_exits_2_with_a_sentence(
    fake_server: FakeServer, isolated_env: Path, host: str
) -> None:
    world = make_world(fake_server, state=f"sqlite://{isolated_env / 'state.sqlite3'}")
    config = world.write_config(isolated_env / "routes.toml")
    done = subprocess.run(
        serve_command(config, "--host", host), capture_output=True, text=True, timeout=60,
        env={**os.environ, **world.env}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    message = " ".join(done.stderr.split())
    assert f"refusing to serve on {host} without a token" in message
    assert "--token" in message and "LLMROUTE_SERVER_TOKEN" in message
    assert "llmroute gateway on" not in done.stderr  # it never listened
    assert not list((isolated_env.parent / "home").rglob("gateway.json"))  # nor announced
    assert_no_secret(done.stdout, done.stderr)
