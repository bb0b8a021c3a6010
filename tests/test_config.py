"""Config: the example registry loads; bad config names file, table and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmroute.config import RouteEntry, load_config, parse_entry
from llmroute.environment import builtin_config, load_environment, locate_config
from llmroute.errors import ConfigError
from llmroute.rate import Rate, parse_rate

ROOT = Path(__file__).resolve().parents[1]
GOOD = """
[providers.groq]
base_url = "https://api.groq.com/openai/v1"
keys = ["GROQ_API_KEY", "GROQ_API_KEY_2"]

[tasks.fast]
route = ["groq:llama-3.1-8b-instant"]

[tasks.fallback]
route = ["groq:llama-3.3-70b-versatile", "groq:llama-3.1-8b-instant"]

[settings]
default_task = "fast"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return path


def test_example_registry_is_complete() -> None:
    config = load_config(ROOT / "routes.example.toml")
    assert set(config.providers) == {
        "ollama",
        "groq",
        "cerebras",
        "sambanova",
        "openrouter",
        "google",
    }
    assert set(config.tasks) == {"fast_small", "fast_large", "reasoning", "agentic", "fallback"}
    assert config.providers["groq"].key_vars == ("GROQ_API_KEY", "GROQ_API_KEY_2", "GROQ_API_KEY_3")
    assert config.providers["google"].base_url.startswith(
        "https://generativelanguage.googleapis.com"
    )
    assert config.route("fast_small")[0] == RouteEntry("ollama", "llama3:8b")
    assert config.route("reasoning")[-2:] == (
        RouteEntry("openrouter", "openrouter/free"),
        RouteEntry("google", "gemini-2.5-flash"),
    )
    assert not config.providers["ollama"].is_enabled({})
    assert config.providers["ollama"].is_enabled({"LLMROUTE_OLLAMA": "1"})


def test_builtin_copy_is_the_example() -> None:
    assert builtin_config().tasks == load_config(ROOT / "routes.example.toml").tasks


def test_entries_split_at_the_first_colon() -> None:
    assert parse_entry("openrouter:openai/gpt-oss-20b:free", "x") == RouteEntry(
        "openrouter", "openai/gpt-oss-20b:free"
    )
    with pytest.raises(ConfigError):
        parse_entry("groq", "x")


def test_fallback_is_appended_without_repeats(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert [str(e) for e in config.route("fast")] == [
        "groq:llama-3.1-8b-instant",
        "groq:llama-3.3-70b-versatile",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[providers.groq\nbase_url = 1", "TOML syntax error"),
        (GOOD.replace('route = ["groq:llama-3.1-8b-instant"]', 'route = ["nope:model"]'),
         "[tasks.fast] route names provider 'nope'"),
        (GOOD.replace('base_url = "https://api.groq.com/openai/v1"', ""),
         "[providers.groq] base_url is missing"),
        (GOOD.replace('route = ["groq:llama-3.1-8b-instant"]', "route = []"),
         "[tasks.fast] route is missing or empty"),
        (GOOD.replace('default_task = "fast"', 'default_task = "slow"'),
         "[settings] default_task = 'slow' is not a task"),
        (GOOD.replace("keys = [", "kyes = ["), "[providers.groq] has unknown key 'kyes'"),
        (GOOD + '\n[providers.groq.models."m"]\nrequests = "30 per minute"\n', "not a rate"),
        (GOOD.replace("[settings]", "[settings]\ndeadline = -1"), "[settings] deadline must be"),
    ],
)  # fmt: skip
def test_bad_config_names_file_table_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_unknown_task_lists_the_known_ones(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no task 'slow' .*known tasks: fallback, fast"):
        config.route("slow")


def test_rates() -> None:
    assert parse_rate("30/minute") == Rate(30, 60)
    assert parse_rate("1000/day") == Rate(1000, 86400)
    assert parse_rate("5/2s") == Rate(5, 2)
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("5 per second")


def test_discovery_order(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write(tmp_path, GOOD)
    (isolated_env / "routes.toml").write_text(GOOD.replace('"fast"', '"fallback"'))
    env = load_environment()
    assert locate_config(explicit, env).source == str(explicit)
    assert locate_config(None, env).settings.default_task == "fallback"  # ./routes.toml
    assert locate_config(None, {"LLMROUTE_CONFIG": str(explicit)}).source == str(explicit)
    (isolated_env / "routes.toml").unlink()
    assert locate_config(None, env).source == "built-in routes.example.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        locate_config(tmp_path / "missing.toml", env)


def test_dotenv_files_and_explicit_variables(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_env / ".env").write_text("GROQ_API_KEY=from-dotenv\nCEREBRAS_API_KEY=cwd\n")
    monkeypatch.setenv("CEREBRAS_API_KEY", "explicit")
    env = load_environment()
    assert env["GROQ_API_KEY"] == "from-dotenv"
    assert env["CEREBRAS_API_KEY"] == "explicit"
