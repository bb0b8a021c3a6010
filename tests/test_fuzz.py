"""Property-based tests (issue 13, acceptance) over the three inputs users write: `routes.toml`
text, batch JSONL lines and stdin bytes, through the real CLI in process against the fake
provider.

For every generated input the CLI never prints "internal error" or a traceback, never shows a
key, and exits with a documented code (0, 1, 2 or 3; config mistakes 2); a batch answers every
valid line exactly once whatever surrounds it, and a rerun answers nothing new.

Deterministic and bounded: a fixed number of examples per property, `derandomize=True` and no
example database (nothing is written into the repository).
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from typer.testing import CliRunner

from llmroute.cli.app import app
from tests.fakeprovider import FakeServer
from tests.world import ALL_SECRETS, World, make_world, to_toml

# Hypothesis caches Unicode tables and source constants in ./.hypothesis: keep them out of the
# repository too (there is no example database: database=None below).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "llmroute-hypothesis")

# Shrinking a failure costs minutes (each example runs the CLI), so CI reports the failing
# example as generated; LLMROUTE_FUZZ_SHRINK=1 shrinks it to a minimal one when investigating.
PHASES = (Phase.explicit, Phase.generate, Phase.target)
if os.environ.get("LLMROUTE_FUZZ_SHRINK"):
    PHASES = (*PHASES, Phase.shrink, Phase.explain)

FUZZ = settings(
    phases=PHASES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the autouse isolated_env: one per test is enough
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
DOCUMENTED_EXITS = {0, 1, 2, 3}  # ask and batch: ok, failed, usage/config, rejected


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One fake server for every example of the module; state is in memory per invocation.
    A short deadline: a route that fails may wait for a cooldown, up to the deadline."""
    with FakeServer() as server:
        yield make_world(server, state="memory", deadline=2)


def run(world: World, args: list[str], stdin: bytes | None = None) -> Result:
    """The CLI in process; fails on anything that escaped its boundary or leaked."""
    result = CliRunner().invoke(app, args, input=stdin, env=world.env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception.with_traceback(result.exc_info[2] if result.exc_info else None)
    assert result.exit_code in DOCUMENTED_EXITS, result.stderr
    for text in (result.stdout, result.stderr):
        assert "internal error" not in text, text
        assert "Traceback" not in text, text
        for secret in ALL_SECRETS:
            assert secret not in text, "an API key leaked into output"
    return result


def stdout(result: Result) -> str:
    """stdout as written (click's `Result.stdout` turns CRLF into LF)."""
    return result.stdout_bytes.decode("utf-8")


def _flat(text: str) -> str:
    """stderr without the line breaks a console may put inside a long path."""
    return "".join(text.split("\n"))


# -- 1. routes.toml: valid configs, mutated --------------------------------------------------

ODD_NUMBERS = [
    "0",
    "-1",
    "nan",
    "+nan",
    "-nan",
    "inf",
    "+inf",
    "-inf",
    "1e400",
    "-1e400",
    "9" * 400,
    "-" + "9" * 30,
    "1e-9",
    "0.0",
    "-0.0",
    "5e-324",
    "1.7976931348623157e308",
    "18446744073709551616",
    "9223372036854775807",
    "0x7fffffff",
    "0o777",
    "0b1",
    "1_000",
    "0.05",
    "3.5",
    "1e9",
]
ODD_STRINGS = [
    '""',
    '" "',
    '"memory"',
    '"sqlite"',
    '"sqlite://state.db"',
    '"sqlite://."',
    '"sqlite://~/state.db"',
    '"sqlite://no/such/dir/state.db"',
    '"fast"',
    '"other"',
    '"nope"',
    '"groq:small"',
    '"groq:"',
    '":small"',
    '"0/1s"',
    '"1/0s"',
    '"-1/1s"',
    '"nan/1s"',
    '"1/inf"',
    '"10/minute"',
    '"key"',
    '"account"',
    '"GROQ_API_KEY"',
    "'literal \\ string'",
    '"""multi\nline"""',
    '"\\u0000"',
    '"\\ud800"',
    '"tab\\there"',
    '"caf\\u00e9"',
    '"\\u202e"',
]
KEYS = [
    "base_url",
    "keys",
    "timeout",
    "deadline",
    "ttft_timeout",
    "state",
    "default_task",
    "pacing",
    "route",
    "context_window",
    "requests",
    "tokens",
    "limit_scope",
    "limits_per",
    "enabled",
    "enable_env",
    "drop_params",
    "models",
    "limits",
    "providers",
    "tasks",
    "settings",
    '"quoted key"',
    "'lit'",
    "a.b",
    "ключ",
    '""',
]
HEADERS = [
    "[settings]",
    "[providers]",
    "[providers.groq]",
    "[providers.groq.limits]",
    "[providers.groq.models.small]",
    "[providers.new]",
    "[tasks]",
    "[tasks.fast]",
    "[tasks.new]",
    "[[tasks.fast]]",
    "[tasks.fast.route]",
    "[]",
    "[settings.timeout]",
    "[ providers . groq ]",
]
# Hosts and ports that fail (or answer) at once: no DNS name, no address that could stall.
HOSTS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "0.0.0.0",
    "256.256.256.256",
    "127.0.0.256",
    "1.2.3",
    "[::1",
    "::1",
    "127.0.0.1 ",
    " 127.0.0.1",
    "",
    "user:pw@127.0.0.1",
    "@",
    "[127.0.0.1]",
    "[::ffff:127.0.0.1]",
    "127.0.0.1\t",
    "127.0.0.1\x00",
    "127.0.0.1%00",
    "１２７.0.0.1",
    "[fe80::1%25lo]",
]
PORTS = [
    "",
    ":",
    ":0",
    ":-1",
    ":99999",
    ":65536",
    ":abc",
    ":+80",
    ": 80",
    ":0x50",
    ":{fake}",
    ":{refused}",
    ":0{fake}",
    ":{fake}{fake}",
]
SCHEMES = [
    "http://",
    "https://",
    "HTTP://",
    "ftp://",
    "file://",
    "ws://",
    "",
    "http:/",
    "http:",
    "//",
    "javascript:",
    " http://",
]
PATHS = [
    "/v1",
    "",
    "/",
    "/groq/v1",
    "/backup/v1",
    "/groq/v1/",
    "/v1 ",
    "/v1?x=1",
    "/v1#f",
    "/%zz",
    "/\u00fc",
    "//",
    "/../..",
    "/groq/v1\x00",
]
ODD_CHARS = st.sampled_from(
    [
        "\x00",
        "\x01",
        "\x1b",
        "\x7f",
        "\ufeff",
        "\u2028",
        "\u0085",
        "\u202e",
        "\r",
        "\t",
        "\\",
        '"',
        "'",
        "=",
        "[",
        "]",
        "#",
        "é",
        "日本",
        "\U0001f600",
        "\ufffd",
    ]
)
BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xe9",
    b"\xc3",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b"\x80",
]

toml_scalars = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.integers().map(str),
    st.floats().map(repr),  # nan, inf, 1e+300, -0.0: all TOML
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=12).map(json.dumps),  # control characters \u-escaped
    st.text(max_size=12).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.sampled_from(["true", "false", "True", "yes", "on", "null", "None"]),
    st.sampled_from(
        ["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27 07:32:00.999999-07:00"]
    ),
)
toml_values = st.one_of(
    toml_scalars,
    st.lists(toml_scalars, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.dictionaries(st.sampled_from(KEYS), toml_scalars, max_size=3).map(
        lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
    ),
)
urls = st.one_of(
    st.tuples(
        st.sampled_from(SCHEMES),
        st.sampled_from(HOSTS),
        st.sampled_from(PORTS),
        st.sampled_from(PATHS),
    ).map("".join),
    st.sampled_from(
        [
            "",
            " ",
            "not a url",
            "http://",
            "http:///v1",
            "://127.0.0.1",
            "127.0.0.1:{fake}/groq/v1",
            "http://127.0.0.1:{fake}/groq/v1 trailing",
            "https://127.0.0.1:{fake}/groq/v1",
        ]
    ),
    st.tuples(st.sampled_from(["http://127.0.0.1:{fake}/"]), st.text(max_size=8)).map("".join),
)
TABLES = [
    "settings",
    "providers.groq",
    "providers.backup",
    "providers.groq.limits",
    "providers.groq.models.small",
    "tasks.fast",
    "tasks.other",
]


def _strings(*items: str) -> st.SearchStrategy[str]:
    return st.sampled_from([json.dumps(i) for i in items])


def _lists(*items: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from([json.dumps(i) for i in items])


seconds = st.one_of(
    st.sampled_from([*ODD_NUMBERS, "0.1", "0.2", "30"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
rates = _strings(
    "0/1s",
    "1/0s",
    "10/minute",
    "1/1s",
    "1000000/1d",
    "5/m",
    " 3 / 1s",
    "3/1 s",
    "1e3/1s",
    "-1/1s",
    "nan/1s",
    "1/infs",
    "",
    "9" * 30 + "/1s",
)
# Values of the right type (mostly) for each key: such a config gets past the TOML parser and
# often past validation, to the request itself.
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "timeout": seconds,
    "deadline": seconds,
    "ttft_timeout": seconds,
    "state": st.sampled_from(ODD_STRINGS[:8]),
    "default_task": _strings("fast", "other", "deadfirst", "fallback", "nope", "groq:small", ""),
    "pacing": st.sampled_from(["true", "false"]),
    "keys": _lists(
        [],
        ["GROQ_API_KEY"],
        ["NOPE"],
        ["GROQ_API_KEY", "GROQ_API_KEY"],
        ["DEAD_1"],
        ["BACKUP_KEY", "GROQ_API_KEY_2"],
        [""],
        ["HOME"],
    ),
    "enabled": st.sampled_from(["true", "false"]),
    "enable_env": _strings("GROQ_API_KEY", "NOPE", "HOME", ""),
    "drop_params": _lists([], ["temperature"], ["messages"], ["model"], [""]),
    "limit_scope": _strings("key", "account", "provider", ""),
    "limits_per": _strings("key-model", "key", "account-model", "account", "model", ""),
    "context_window": st.one_of(st.integers().map(str), st.sampled_from(ODD_NUMBERS)),
    "requests": rates | rates.map(lambda r: f"[{r}, {r}]"),
    "tokens": rates | rates.map(lambda r: f"[{r}]"),
    "route": _lists(
        ["groq:small"],
        ["backup:big", "groq:small"],
        ["groq:nope"],
        ["dead:m"],
        [],
        ["groq"],
        ["nope:x"],
        ["groq:small", "groq:small"],
        [" groq : small "],
    ),
    "base_url": _strings(
        "http://127.0.0.1:{refused}/v1",
        "http://localhost:{fake}/groq/v1",
        "http://127.0.0.1:{fake}/backup/v1",
        "http://127.0.0.1:{fake}/nope/v1",
        "https://127.0.0.1:{fake}/groq/v1",
    ),
}
PROVIDERS = ["providers.groq", "providers.backup"]
HOME_TABLES: dict[str, list[str]] = {
    "timeout": ["settings", *PROVIDERS],
    "deadline": ["settings", *PROVIDERS],
    "ttft_timeout": ["settings", *PROVIDERS],
    **{key: ["settings"] for key in ("state", "default_task", "pacing")},
    **{
        key: PROVIDERS
        for key in ("keys", "enabled", "enable_env", "drop_params", "limit_scope", "limits_per")
    },
    "base_url": PROVIDERS,
    **{
        key: ["providers.groq.limits", "providers.groq.models.small"]
        for key in ("requests", "tokens")
    },
    "context_window": ["providers.groq.models.small", "providers.backup.models.big"],
    "route": ["tasks.fast", "tasks.other"],
}
# One edit of the config, applied to the real text in the test (line numbers taken modulo).
# `set` puts one key of one table to a value (the rest stays valid), so most examples get past
# the TOML parser to the validation and the request; it and `url` weigh most.
set_edits = st.sampled_from(sorted(PLAUSIBLE)).flatmap(
    lambda key: st.tuples(
        st.just("set"),
        st.sampled_from(HOME_TABLES[key])
        | st.sampled_from(HOME_TABLES[key])
        | st.sampled_from(TABLES),
        st.just(key),
        PLAUSIBLE[key] | PLAUSIBLE[key] | PLAUSIBLE[key] | toml_values,
    )
)
# Values of the right type in the right table: configs that mostly load, to reach the request.
plausible_edits = st.sampled_from([*sorted(PLAUSIBLE), "base_url", "base_url"]).flatmap(
    lambda key: st.tuples(
        st.just("set"), st.sampled_from(HOME_TABLES[key]), st.just(key), PLAUSIBLE[key]
    )
)
url_edits = st.tuples(st.just("url"), st.integers(0, 9), urls)
mutations = st.one_of(
    set_edits,
    set_edits,
    set_edits,
    set_edits,
    url_edits,
    url_edits,
    st.tuples(st.just("delete"), st.integers(0, 99)),
    st.tuples(st.just("duplicate"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("value"), st.integers(0, 99), toml_values),
    st.tuples(st.just("key"), st.integers(0, 99), st.sampled_from(KEYS)),
    st.tuples(st.just("insert"), st.integers(0, 99), st.sampled_from(KEYS), toml_values),
    st.tuples(st.just("header"), st.integers(0, 99), st.sampled_from(HEADERS)),
    st.tuples(
        st.just("unicode"),
        st.integers(0, 99),
        st.integers(0, 99),
        st.one_of(ODD_CHARS, st.text(min_size=1, max_size=4)),
    ),
    st.tuples(
        st.just("bytes"),
        st.integers(0, 99),
        st.integers(0, 99),
        st.one_of(st.sampled_from(BAD_UTF8), st.binary(min_size=1, max_size=4)),
    ),
    st.tuples(st.just("whole"), st.sampled_from(["bom", "crlf", "cr", "no-eol", "tabs"])),
)


def mutate(text: str, edits: list[tuple[Any, ...]], ports: dict[str, int]) -> bytes:
    lines: list[bytes] = [line.encode() for line in text.split("\n")]
    fill = {"{fake}": str(ports["fake"]), "{refused}": str(ports["refused"])}

    def port(value: str) -> str:
        for mark, number in fill.items():
            value = value.replace(mark, number)
        return value

    whole: list[str] = []
    for edit in edits:
        kind, rest = edit[0], edit[1:]
        i = rest[0] % len(lines) if rest and isinstance(rest[0], int) and lines else 0
        if kind == "delete" and lines:
            del lines[i]
        elif kind == "duplicate" and lines:
            lines.insert(rest[1] % (len(lines) + 1), lines[i])
        elif kind == "value" and lines and b"=" in lines[i]:
            lines[i] = lines[i].split(b"=", 1)[0] + b"= " + rest[1].encode()
        elif kind == "key" and lines and b"=" in lines[i]:
            lines[i] = rest[1].encode() + b" =" + lines[i].split(b"=", 1)[1]
        elif kind == "insert":
            lines.insert(rest[0] % (len(lines) + 1), f"{rest[1]} = {rest[2]}".encode())
        elif kind == "header":
            lines.insert(rest[0] % (len(lines) + 1), rest[1].encode())
        elif kind in ("unicode", "bytes") and lines:
            # Never inside a base_url: a host made a name would be looked up in DNS (slow).
            plain = [n for n, line in enumerate(lines) if not line.startswith(b"base_url")]
            n = plain[rest[0] % len(plain)]
            cut = rest[1] % (len(lines[n]) + 1)
            extra = rest[2].encode() if kind == "unicode" else rest[2]
            lines[n] = lines[n][:cut] + extra + lines[n][cut:]
        elif kind == "url":
            where = [n for n, line in enumerate(lines) if line.startswith(b"base_url")]
            if where:
                lines[where[rest[0] % len(where)]] = (
                    f"base_url = {json.dumps(port(rest[1]))}".encode()
                )
        elif kind == "set":
            lines = set_key(lines, rest[0], rest[1], port(rest[2]))
        elif kind == "whole":
            whole.append(rest[0])
    out = b"\n".join(lines)
    for kind in whole:
        if kind == "bom":
            out = b"\xef\xbb\xbf" + out
        elif kind == "crlf":
            out = out.replace(b"\n", b"\r\n")
        elif kind == "cr":
            out = out.replace(b"\n", b"\r")
        elif kind == "no-eol":
            out = out.rstrip(b"\n")
        elif kind == "tabs":
            out = out.replace(b" = ", b"\t=\t")
    return out


def set_key(lines: list[bytes], table: str, key: str, value: str) -> list[bytes]:
    """`key = value` in `[table]`, in place of the table's own `key` if it has one."""
    header = f"[{table}]".encode()
    if header not in lines:
        return [*lines, header, f"{key} = {value}".encode()]
    start = lines.index(header) + 1
    end = next((n for n in range(start, len(lines)) if lines[n].startswith(b"[")), len(lines))
    body = [line for line in lines[start:end] if not line.startswith(f"{key} =".encode())]
    return [*lines[:start], f"{key} = {value}".encode(), *body, *lines[end:]]


def toml_error(raw: bytes) -> str | None:
    """Why `raw` is not TOML at all (None when it is): then the CLI must say so, exit 2.
    The file is read as text, so CR and CRLF line ends are newlines (TOML alone wants LF), and
    an editor's BOM is skipped."""
    try:
        tomllib.loads(raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return str(exc)
    return None


@settings(FUZZ, max_examples=60)
@given(
    edits=st.lists(plausible_edits, min_size=1, max_size=3)
    | st.lists(mutations, min_size=1, max_size=3),
    command=st.sampled_from(["ask", "ask -t other", "ask -t fallback", "state"]),
)
def test_mutated_configs_are_a_sentence_never_a_crash(
    world: World,
    tmp_path_factory: pytest.TempPathFactory,
    edits: list[tuple[Any, ...]],
    command: str,
) -> None:
    refused = int(world.config["providers"]["dead"]["base_url"].rsplit(":", 1)[1].split("/")[0])
    raw = mutate(to_toml(world.config), edits, {"fake": world.server.port or 0, "refused": refused})
    note(f"routes.toml = {raw!r}")
    path = tmp_path_factory.mktemp("config") / "routes.toml"
    path.write_bytes(raw)
    if command.startswith("ask"):  # -t: a route of one provider, so that a broken one fails it
        result = run(world, [*command.split(), "--direct", "-q", "--config", str(path), "hi"])
        allowed = {0, 1, 2}  # 1: a valid config whose route fails (a base_url made wrong)
    else:
        result = run(world, ["state", "--json", "--config", str(path)])
        allowed = {0, 2}
    note(f"exit {result.exit_code}; stdout {result.stdout!r}; stderr {result.stderr!r}")
    event(f"{command}: exit {result.exit_code}")  # --hypothesis-show-statistics
    assert result.exit_code in allowed
    if toml_error(raw) is not None:
        assert result.exit_code == 2 and "routes.toml" in _flat(result.stderr)
    if result.exit_code == 0 and command.startswith("ask"):
        assert stdout(result) == "echo: hi\n"
    if result.exit_code == 0 and command == "state":
        assert isinstance(json.loads(result.stdout), dict)
    if result.exit_code != 0:
        assert result.stderr.strip(), "an error exit says why"


# -- 2. batch JSONL: valid lines in any surroundings -------------------------------------------

VALID_ID = "valid-{}"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)  # floats include NaN and ±Infinity: json.dumps writes them as such
# JSON may escape a lone surrogate ("\ud800"): valid JSON, but no text a provider can be sent.
lone_surrogates = st.tuples(st.text(max_size=4), st.integers(0xD800, 0xDFFF)).map(
    lambda t: t[0] + chr(t[1])
)
noise_ids = st.one_of(
    lone_surrogates,
    st.text(max_size=8),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    json_values,
    st.sampled_from(["", " ", "7", "valid", "0" * 30]),
)
messages = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "system", "assistant", "tool", "", "USER"])
                | st.text(max_size=5),
                "content": json_values,
            },
            optional={"name": json_values, "tool_calls": json_values},
        ),
        max_size=3,
    ),
    json_values,
)
job_like = st.fixed_dictionaries(
    {},
    optional={
        "id": noise_ids,
        "prompt": st.text(max_size=12) | json_values | lone_surrogates,
        "messages": messages,
        "system": st.text(max_size=8) | json_values | lone_surrogates,
        "task": st.sampled_from(
            [
                "other",
                "fast",
                "fallback",
                "deadfirst",
                "nope",
                "groq:small",
                "backup:big",
                "groq:",
                ":x",
                "dead:m",
            ]
        )
        | json_values,
        "model": st.sampled_from(["groq:small", "backup:big", "groq:nope", "groq:\udce9"])
        | json_values,
        "temperature": st.sampled_from([0, 0.5, 2, -1, 10**30, "0.5", True]) | json_values,
        "max_tokens": st.sampled_from([0, -1, 1, 10**20, 1.5, "10", None]) | json_values,
    },
)
DEEP = 100_000
HOSTILE = {
    "nan": b'{"id": "h-nan", "prompt": "p", "temperature": NaN}',
    "inf": b'{"id": "h-inf", "prompt": "p", "temperature": -Infinity}',
    "1e400": b'{"id": "h-big", "prompt": "p", "max_tokens": 1e400}',
    "long-int-id": b'{"id": ' + b"7" * 5000 + b', "prompt": "p"}',
    "int-id-4300": b'{"id": ' + b"7" * 4300 + b', "prompt": "p"}',
    "long-str-id": b'{"id": "' + b"i" * 20_000 + b'", "prompt": "p"}',
    "deep": b'{"id": "h-deep", "prompt": "p", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "deep-open": b"[" * DEEP,
    "deep-objects": b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    "latin1": b'{"id": "h-latin1", "prompt": "caf\xe9"}',
    "bom-inside": b'\xef\xbb\xbf{"id": "h-bom", "prompt": "p"}',
    "u2028": '{"id": "h-sep", "prompt": "a\u2028b\u0085c"}'.encode(),
    "lone-surrogate": b'{"id": "h-sur", "prompt": "\\ud800"}',
    "nul": b'{"id": "h-nul", "prompt": "a\\u0000b"}',
    "blank": b"",
    "spaces": b"  \t ",
    "cr": b"\r",
    "not-object": b"[1, 2, 3]",
    "string": b'"just a string"',
    "trailing": b'{"id": "h-trail", "prompt": "p"} x',
    "two": b'{"id": "h-two1", "prompt": "p"}{"id": "h-two2", "prompt": "p"}',
}
noise_lines = st.one_of(
    st.sampled_from(sorted(HOSTILE)),  # by name: the bytes are built when the file is written
    json_values.map(lambda v: json.dumps(v).encode()),
    # A lone surrogate unescaped: CESU-8 bytes, not UTF-8.
    job_like.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    job_like.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=24),
)
prompts = st.text(min_size=1, max_size=16).filter(lambda s: s.strip())


@dataclass(frozen=True)
class BatchFile:
    prompts: tuple[str, ...]  # valid line i: {"id": "valid-i", "prompt": prompts[i]}
    order: tuple[int | bytes | str, ...]  # valid line index, noise bytes, or a HOSTILE name
    repeats: tuple[int, ...]  # valid lines written again at the end (the same id: bad lines)
    ascii: bool
    bom: bool
    eol: bytes
    final_eol: bool
    concurrency: int

    def __repr__(self) -> str:
        shown = [
            x if not isinstance(x, bytes) or len(x) < 80 else x[:80] + b"..." for x in self.order
        ]
        return (
            f"BatchFile(prompts={self.prompts!r}, order={shown!r}, repeats={self.repeats!r}, "
            f"ascii={self.ascii}, bom={self.bom}, eol={self.eol!r}, "
            f"final_eol={self.final_eol}, concurrency={self.concurrency})"
        )

    def line(self, item: int | bytes | str) -> bytes:
        if isinstance(item, int):
            job = {"id": VALID_ID.format(item), "prompt": self.prompts[item]}
            return json.dumps(job, ensure_ascii=self.ascii).encode()
        return HOSTILE[item] if isinstance(item, str) else item

    def data(self) -> bytes:
        lines = [self.line(x) for x in (*self.order, *self.repeats)]
        data = self.eol.join(lines) + (self.eol if self.final_eol else b"")
        return (b"\xef\xbb\xbf" if self.bom else b"") + data


@st.composite
def batch_files(draw: st.DrawFn) -> BatchFile:
    valid = draw(st.lists(prompts, min_size=1, max_size=5))
    noise = draw(st.lists(noise_lines, max_size=8))
    order = draw(st.permutations([*range(len(valid)), *noise]))
    repeats = draw(st.lists(st.integers(0, len(valid) - 1), max_size=2))
    return BatchFile(
        tuple(valid),
        tuple(order),
        tuple(repeats),
        draw(st.booleans()),
        draw(st.booleans()),
        draw(st.sampled_from([b"\n", b"\r\n"])),
        draw(st.booleans()),
        draw(st.sampled_from([8, 1])),  # 1: every line waits for the ones before it
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


@settings(FUZZ, max_examples=25)
@given(batch=batch_files())
@example(  # a lone surrogate ("\ud800" is valid JSON) before a valid line, one at a time
    batch=BatchFile(("p",), ("lone-surrogate", 0), (), True, False, b"\n", True, 1)
)
def test_a_batch_answers_every_valid_line_exactly_once(
    world: World, tmp_path_factory: pytest.TempPathFactory, batch: BatchFile
) -> None:
    folder = tmp_path_factory.mktemp("batch")
    # State in a file, to see afterwards what the batch made of the pool's health.
    settings_ = {**world.config["settings"], "state": f"sqlite://{folder / 'state.sqlite3'}"}
    (folder / "routes.toml").write_text(to_toml({**world.config, "settings": settings_}))
    source, out = folder / "in.jsonl", folder / "out.jsonl"
    source.write_bytes(batch.data())
    args = [
        "batch",
        str(source),
        "-o",
        str(out),
        "-t",
        "other",
        "-c",
        str(batch.concurrency),
        "--config",
        str(folder / "routes.toml"),
    ]
    first = run(world, args)
    rows = records(out)
    note(f"exit {first.exit_code}; stderr {first.stderr!r}; output {rows!r}")
    event(f"exit {first.exit_code}")
    for row in rows:
        event(f"a record: {row['error']['kind'] if 'error' in row else 'answer'}")
    assert first.exit_code in {0, 1}  # 1: some line failed (a bad line is a failure)
    assert first.exit_code == (1 if any("error" in r for r in rows) else 0)
    valid_ids = {VALID_ID.format(i): p for i, p in enumerate(batch.prompts)}
    answered = Counter(r["id"] for r in rows if "content" in r and r.get("id") in valid_ids)
    assert answered == Counter(list(valid_ids)), "every valid line answered exactly once"
    for row in rows:
        if row.get("id") in valid_ids and "content" in row:
            assert row["content"] == f"echo: {valid_ids[row['id']]}"
        elif row.get("id") in valid_ids:  # only a repeat of a valid line, as a bad line
            assert "repeats the id" in row["error"]["message"] and "line" in row
    # The fake is healthy and every key good: whatever a line holds, it is that line's failure
    # alone, never the pool's (no key of the route disabled or cooling down).
    health = json.loads(run(world, ["state", "--json", "--config", args[-1]]).stdout)["keys"]
    hurt = [k for k in health if k["provider"] in ("groq", "backup") and k["state"] != "ready"]
    assert not hurt, "a batch line changed the health of the pool"
    before = out.read_bytes()
    rerun = run(world, args)
    note(f"rerun: exit {rerun.exit_code}; stderr {rerun.stderr!r}")
    assert rerun.exit_code == 0 and out.read_bytes() == before, "a rerun answers nothing new"


# -- 3. stdin bytes --------------------------------------------------------------------------

stdin_bytes = st.one_of(
    st.binary(max_size=48),
    st.text(max_size=32).map(str.encode),
    st.text(max_size=24).map(lambda s: b"\xef\xbb\xbf" + s.encode()),
    st.tuples(st.text(max_size=8), st.sampled_from(BAD_UTF8), st.text(max_size=8)).map(
        lambda t: t[0].encode() + t[1] + t[2].encode()
    ),
    st.tuples(
        st.sampled_from([b"", b"\xef\xbb\xbf"]), st.text(max_size=6), st.sampled_from(BAD_UTF8)
    ).map(lambda t: t[0] + t[1].encode() + t[2]),
    st.text(max_size=16).map(lambda s: s.encode("utf-16")),  # a UTF-16 BOM: not UTF-8
    st.text(st.characters(max_codepoint=255), max_size=16).map(lambda s: s.encode("latin-1")),
    st.sampled_from(
        [
            b"",
            b"\n",
            b"\r\n",
            b" \n\t",
            b"\xef\xbb\xbf",
            b"\xef\xbb\xbf\n",
            b"\x00",
            b"\xef\xbb",
            b"\xff\xfe",
            b"\xfe\xff\x00h",
            "\u2028".encode(),
        ]
    ),
)


def first_bad_byte(raw: bytes) -> int | None:
    """The offset in `raw` of the first byte that is not UTF-8 (a leading BOM is allowed)."""
    skip = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        return skip + exc.start
    return None


# What Python makes of argv bytes: non-UTF-8 ones become lone surrogates (surrogateescape).
arguments = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.binary(max_size=8).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


def is_text(value: str) -> bool:
    """Encodable as UTF-8: no lone surrogate."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(FUZZ, max_examples=40)
@given(raw=stdin_bytes, argument=arguments)
@example(raw=b"\xef\xbb\xbf\x80", argument=None)  # a BOM, then a byte that is not UTF-8
@example(raw=b"", argument="caf\udce9")  # `llmroute ask $'caf\xe9'` in a UTF-8 locale
def test_ask_reads_any_stdin_bytes(world: World, raw: bytes, argument: str | None) -> None:
    world.write_config(Path("routes.toml"))  # the cwd is this test's own (isolated_env)
    args = ["ask", "--direct", "-q", *(["--", argument] if argument is not None else [])]
    result = run(world, args, stdin=raw)
    note(f"exit {result.exit_code}; stdout {result.stdout!r}; stderr {result.stderr!r}")
    event(f"exit {result.exit_code}")
    assert result.exit_code in {0, 2}, "stdin or an argument a request cannot be sent for"
    bad = first_bad_byte(raw)
    if bad is not None:
        assert result.exit_code == 2
        assert f"stdin is not UTF-8 text: byte {bad} is 0x{raw[bad]:02x}" in _flat(result.stderr)
        return
    if argument is not None and not is_text(argument):
        return  # an argument that is not text (`ask $'caf\xe9'`): a sentence, exit 2 (above)
    piped = raw.decode("utf-8-sig")  # documented: stdin first, then the argument
    parts = [p for p in (piped.strip("\n"), (argument or "").strip("\n")) if p.strip()]
    if not parts:
        assert result.exit_code == 2 and "nothing to ask" in _flat(result.stderr)
        return
    prompt = "\n\n".join(parts)
    assert result.exit_code == 0, result.stderr
    expected = f"echo: {prompt}" + ("" if prompt.endswith("\n") else "\n")
    assert stdout(result) == expected


CHAT_COMMANDS = [
    "/help",
    "/retry",
    "/undo",
    "/clear",
    "/task other",
    "/task fast",
    "/task nope",
    "/model backup:big",
    "/model",
    "/model groq",
    "/system be brief",
    "/system",
    "/exit",
    "/quit",
    "/nope",
    "//slash",
    '"""',
    '"""one line"""',
    '"""open',
    "/save chat-saved.json",
    "/save",
]
chat_lines = st.one_of(
    st.text(max_size=16).map(lambda s: s.replace("\n", " ").encode()),
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b" ")),
    st.sampled_from(CHAT_COMMANDS).map(str.encode),
    st.sampled_from(BAD_UTF8),
    st.text(max_size=8).map(lambda s: b"\xef\xbb\xbf" + s.replace("\n", " ").encode()),
)


def chat_expectation(lines: list[bytes]) -> tuple[int, str] | None:
    """Exit code and stdout (or the error) for plain messages; None when a command or a block
    comes first (then only the exit code is checked)."""
    replies = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8-sig").removesuffix("\r").strip()
        except UnicodeDecodeError:
            return 2, f"stdin line {number} is not UTF-8 text"
        if text.startswith(("/", '"""')):
            return None
        if text:
            replies.append(f"echo: {text}\n")
    return 0, "".join(replies)


@settings(FUZZ, max_examples=25)
@given(lines=st.lists(chat_lines, max_size=5), final_eol=st.booleans())
def test_chat_reads_any_stdin_lines(world: World, lines: list[bytes], final_eol: bool) -> None:
    world.write_config(Path("routes.toml"))
    raw = b"\n".join(lines) + (b"\n" if final_eol and lines else b"")
    result = run(world, ["chat", "-q", "-t", "other"], stdin=raw)
    note(f"exit {result.exit_code}; stdout {result.stdout!r}; stderr {result.stderr!r}")
    event(f"exit {result.exit_code}")
    assert result.exit_code in {0, 2}
    expected = chat_expectation(lines)
    if expected is None:
        return
    code, text = expected
    assert result.exit_code == code, result.stderr
    if code == 0:
        assert stdout(result) == text
    else:
        assert text in _flat(result.stderr)
