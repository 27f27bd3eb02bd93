"""Configuration: sources and precedence, every validation rule, unknown keys, redaction."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from trio_companion.config import (
    SCHEMA,
    Config,
    ConfigError,
    load_config,
    render_effective,
    secret_keys,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"


def problems_of(
    tmp_path: Path, env: dict[str, str], toml: str | None = None, dotenv: str | None = None
) -> list[str]:
    if toml is not None:
        (tmp_path / "companion.toml").write_text(toml)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    with pytest.raises(ConfigError) as info:
        load_config(environ=env, cwd=tmp_path)
    return [str(p) for p in info.value.problems]


def test_defaults_without_any_source(tmp_path: Path) -> None:
    loaded = load_config(environ={}, cwd=tmp_path)
    assert loaded.config.llm == Config().llm
    assert loaded.config.discord.api_url == "https://discord.com/api/v10"
    assert loaded.config.data_dir == str(tmp_path / "data")
    assert loaded.config.database_path == tmp_path / "data" / "companion.sqlite3"
    assert loaded.sources == {}
    assert loaded.config_file is None


def test_precedence_toml_then_dotenv_then_environment(tmp_path: Path) -> None:
    (tmp_path / "companion.toml").write_text(
        '[llm]\nmodel = "from-toml"\ntemperature = 0.5\ntop_k = 10\n'
    )
    (tmp_path / ".env").write_text("COMPANION_LLM_TEMPERATURE=0.6\nCOMPANION_LLM_TOP_K=11\n")
    loaded = load_config(environ={"COMPANION_LLM_TOP_K": "12"}, cwd=tmp_path)
    llm = loaded.config.llm
    assert (llm.model, llm.temperature, llm.top_k) == ("from-toml", 0.6, 12)
    assert loaded.sources["llm.model"] == "companion.toml"
    assert loaded.sources["llm.temperature"] == ".env COMPANION_LLM_TEMPERATURE"
    assert loaded.sources["llm.top_k"] == "env COMPANION_LLM_TOP_K"


def test_config_file_named_by_argument_or_environment(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[llm]\nmodel = "a"\n')
    (tmp_path / "b.toml").write_text('[llm]\nmodel = "b"\n')
    env = {"COMPANION_CONFIG": "b.toml"}
    assert load_config(environ=env, cwd=tmp_path).config.llm.model == "b"
    assert load_config(Path("a.toml"), environ=env, cwd=tmp_path).config.llm.model == "a"


def test_environment_values_are_parsed(tmp_path: Path) -> None:
    env = {
        "COMPANION_DATA_DIR": str(tmp_path / "d"),
        "COMPANION_DISCORD_DEV_GUILD_ID": "18446744073709551615",
        "COMPANION_DISCORD_SHARD_COUNT": "3",
        "COMPANION_DISCORD_MEMBERS_INTENT": "yes",
        "COMPANION_CHAT_IGNORED_USER_IDS": "1, 22,333",
        "COMPANION_LLM_PROVIDER": "openai",
        "COMPANION_SHUTDOWN_GRACE": "2.5",
        "DISCORD_TOKEN": TOKEN,
    }
    config = load_config(environ=env, cwd=tmp_path).config
    assert config.data_dir == str(tmp_path / "d")
    assert config.discord.dev_guild_id == 2**64 - 1
    assert config.discord.shard_count == 3
    assert config.discord.members_intent is True
    assert config.chat.ignored_user_ids == [1, 22, 333]
    assert config.llm.provider == "openai"
    assert config.shutdown_grace == 2.5
    assert config.discord.token == TOKEN
    env["COMPANION_DISCORD_SHARD_COUNT"] = "auto"
    env["COMPANION_DISCORD_DEV_GUILD_ID"] = ""
    config = load_config(environ=env, cwd=tmp_path).config
    assert config.discord.shard_count == "auto"
    assert config.discord.dev_guild_id is None


def test_prefixed_token_name_wins_over_alias(tmp_path: Path) -> None:
    other = TOKEN.replace("GaBcDe", "XyZxYz")
    env = {"DISCORD_TOKEN": TOKEN, "COMPANION_DISCORD_TOKEN": other}
    assert load_config(environ=env, cwd=tmp_path).config.discord.token == other


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "COMPANION_LLM_TEMPERATURE",
            "5",
            "llm.temperature: got '5', expected a number from 0.0 to 2.0 "
            "(from env COMPANION_LLM_TEMPERATURE)",
        ),
        ("COMPANION_LLM_TEMPERATURE", "warm", "llm.temperature: got 'warm', expected a number"),
        ("COMPANION_LLM_TOP_P", "1.5", "llm.top_p: got '1.5', expected a number from 0.0 to 1.0"),
        ("COMPANION_AMBIENT_CHANCE", "-0.1", "ambient.chance: got '-0.1', expected a number from"),
        ("COMPANION_LLM_NUM_CTX", "100", "llm.num_ctx: got 100, expected an integer from 512"),
        ("COMPANION_LLM_NUM_PREDICT", "0", "llm.num_predict: got 0, expected -1 (no limit)"),
        (
            "COMPANION_LLM_PROVIDER",
            "gpt",
            "llm.provider: got 'gpt', expected one of 'ollama', 'open",
        ),
        (
            "COMPANION_LLM_URL",
            "localhost:11434",
            "llm.url: got 'localhost:11434', expected an http",
        ),
        ("COMPANION_DISCORD_MEMBERS_INTENT", "maybe", "discord.members_intent: got 'maybe', expe"),
        (
            "COMPANION_DISCORD_DEV_GUILD_ID",
            "abc",
            "discord.dev_guild_id: got 'abc', expected a Disc",
        ),
        ("COMPANION_DISCORD_SHARD_COUNT", "0", "discord.shard_count: got 0, expected 'auto' or"),
        ("COMPANION_CHAT_IGNORED_USER_IDS", "1,x", "chat.ignored_user_ids: got ['1', 'x'], expect"),
        ("COMPANION_STORAGE_SYNCHRONOUS", "off", "storage.synchronous: got 'off', expected one of"),
        ("COMPANION_STORAGE_DATABASE", "a/b.db", "storage.database: got 'a/b.db', expected a file"),
        ("COMPANION_LOGGING_LEVEL", "LOUD", "logging.level: got 'LOUD', expected one of 'DEBUG'"),
        (
            "COMPANION_RVC_PROTECT",
            "0.9",
            "rvc.protect: got '0.9', expected a number from 0.0 to 0.5",
        ),
        ("COMPANION_SHUTDOWN_GRACE", "0", "shutdown_grace: got '0', expected a number > 0.0 and"),
        ("COMPANION_REMINDERS_DEFAULT_TIMEZONE", "Mars/Base", "reminders.default_timezone: got 'M"),
        ("COMPANION_LLM_KEEP_ALIVE", "soon", "llm.keep_alive: got 'soon', expected an Ollama dur"),
        ("COMPANION_MEMORY_SEARCH_PROVIDER", "searxng", "memory.searxng_url: got '', expected the"),
        (
            "COMPANION_LLM_TEMPRATURE",
            "1",
            "COMPANION_LLM_TEMPRATURE: unknown key (did you mean 'CO",
        ),
    ],
)
def test_each_rule_names_key_value_expectation_and_source(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    problems = problems_of(tmp_path, {name: value})
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]
    assert problems[0].endswith(f"(from env {name})") or name == "COMPANION_MEMORY_SEARCH_PROVIDER"


def test_minimum_above_maximum(tmp_path: Path) -> None:
    env = {"COMPANION_CHAT_REPLY_DELAY_MIN": "3", "COMPANION_CHAT_REPLY_DELAY_MAX": "1"}
    assert problems_of(tmp_path, env) == [
        "chat.reply_delay_min: got 3.0, expected at most chat.reply_delay_max (1.0) "
        "(from env COMPANION_CHAT_REPLY_DELAY_MIN)"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    toml = "[llm]\ntemprature = 1.0\nmodel = 3\n[chta]\nx = 1\n"
    env = {"COMPANION_LLM_TOP_P": "2", "COMPANION_AMBIENT_CHANCE": "7"}
    problems = problems_of(tmp_path, env, toml)
    assert problems == [
        "llm.temprature: unknown key (did you mean 'llm.temperature'?) (from companion.toml)",
        "chta: unknown key (did you mean 'chat'?) (from companion.toml)",
        "llm.model: got 3, expected a model name (from companion.toml)",
        "llm.top_p: got '2', expected a number from 0.0 to 1.0 (from env COMPANION_LLM_TOP_P)",
        "ambient.chance: got '7', expected a number from 0.0 to 1.0 "
        "(from env COMPANION_AMBIENT_CHANCE)",
    ]


def test_toml_values_must_have_the_right_type(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {}, '[llm]\ntemperature = "0.7"\n')
    assert problems == [
        "llm.temperature: got '0.7', expected a number from 0.0 to 2.0 (from companion.toml)"
    ]


def test_dotenv_problems_name_the_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {}, dotenv="COMPANION_LLM_TOP_K=-1\n")
    assert problems == [
        "llm.top_k: got -1, expected an integer from 0 to 1000 (from .env COMPANION_LLM_TOP_K)"
    ]


def test_broken_or_missing_files(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {}, "[llm\nmodel = 1\n")
    assert len(problems) == 1
    assert re.match(r".*companion\.toml: is not valid TOML: .*line 1", problems[0]), problems
    problems = problems_of(tmp_path, {"COMPANION_CONFIG": "missing.toml"})
    assert problems == [f"{tmp_path / 'missing.toml'}: the file does not exist (from --config)"]


def test_section_must_be_a_table(tmp_path: Path) -> None:
    assert problems_of(tmp_path, {}, 'llm = "x"\n') == [
        "llm: expected a [section] table (from companion.toml)"
    ]


def test_unwritable_data_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    problems = problems_of(tmp_path, {"COMPANION_DATA_DIR": str(tmp_path / "file" / "data")})
    assert len(problems) == 1
    assert problems[0].startswith(f"data_dir: got '{tmp_path / 'file' / 'data'}', expected a wr")
    assert problems[0].endswith("(from env COMPANION_DATA_DIR)")


def test_token_shape_checked_without_showing_it(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"DISCORD_TOKEN": f"Bot {TOKEN}"})
    assert problems == [
        "discord.token: got a value starting with 'Bot ', expected the bare token "
        "(from env DISCORD_TOKEN)"
    ]
    problems = problems_of(tmp_path, {"DISCORD_TOKEN": "not a token"})
    assert problems == [
        "discord.token: got a secret value, expected a bot token (three dot-separated parts) "
        "(from env DISCORD_TOKEN)"
    ]
    assert all("not a token" not in p for p in problems)


def test_secrets_never_rendered(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": TOKEN, "COMPANION_LLM_API_KEY": "sk-verysecret"}
    loaded = load_config(environ=env, cwd=tmp_path)
    text = render_effective(loaded)
    assert TOKEN not in text
    assert "sk-verysecret" not in text
    assert 'token = "<redacted>"  # env DISCORD_TOKEN' in text
    assert secret_keys() == {"discord.token", "llm.api_key", "tts.api_key"}


def test_render_effective_is_valid_toml_that_loads_back(tmp_path: Path) -> None:
    env = {"COMPANION_LLM_MODEL": 'quote"d', "COMPANION_CHAT_IGNORED_USER_IDS": "5,6"}
    loaded = load_config(environ=env, cwd=tmp_path)
    (tmp_path / "companion.toml").write_text(render_effective(loaded))
    again = load_config(environ={}, cwd=tmp_path).config
    assert again == loaded.config


def test_environment_names_follow_the_pattern_and_are_unique() -> None:
    names = [f.env_name for f in SCHEMA.values()]
    assert len(names) == len(set(names))
    assert "COMPANION_LLM_URL" in names
    assert "COMPANION_DISCORD_API_URL" in names
    assert "COMPANION_DATA_DIR" in names
    assert all(re.fullmatch(r"COMPANION_[A-Z0-9_]+", n) for n in names)


def test_example_file_covers_every_key_and_is_valid(tmp_path: Path) -> None:
    example = (ROOT / "companion.example.toml").read_text()
    data = msgspec.toml.decode(example.encode())
    keys = {k for k, v in data.items() if not isinstance(v, dict)}
    keys |= {f"{s}.{k}" for s, table in data.items() if isinstance(table, dict) for k in table}
    # dev_guild_id is optional and TOML has no null: the example shows it commented out.
    assert keys == set(SCHEMA) - {"discord.dev_guild_id"}
    (tmp_path / "companion.toml").write_text(example)
    from_example = load_config(environ={}, cwd=tmp_path).config
    (tmp_path / "companion.toml").unlink()
    assert from_example == load_config(environ={}, cwd=tmp_path).config
