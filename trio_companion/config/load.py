"""Loading the configuration: TOML, then ``.env``, then the environment, all problems at once.

Theory of operation
-------------------
Every setting is a field of a frozen msgspec Struct. A setting lives in a section (``[llm]``
``temperature``) or at the top level (``data_dir``); its environment name is derived from that
place: ``COMPANION_LLM_TEMPERATURE``, ``COMPANION_DATA_DIR``. ``DISCORD_TOKEN`` is accepted as an
alias of ``COMPANION_DISCORD_TOKEN``.

Sources are layered, later ones winning: built-in defaults, ``companion.toml`` (or the file named
by ``--config`` / ``COMPANION_CONFIG``), a ``.env`` file in the working directory, then the process
environment. Each field is converted on its own, so one run reports *every* problem at once, each
as ``section.key: got X, expected Y (from SOURCE)``; cross-field rules (a minimum above its
maximum, an unwritable data directory) are checked after that. Values typed in TOML must have the
right type; values from the environment are strings and are parsed (numbers, booleans,
comma-separated lists).

Fields marked secret (``Meta(extra={"secret": True})``) are never printed: not in problems, not by
``check-config``, not in logs (see `trio_companion.logs`).

This module only reads files; it runs before trio starts (from the CLI), where blocking is fine.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import msgspec.inspect as mi
from dotenv import dotenv_values

from trio_companion.config.model import Config
from trio_companion.config.schema import (
    BY_ENV,
    ENV_PREFIX,
    SCHEMA,
    SECTIONS,
    SettingField,
    describe_expected,
    show_value,
)
from trio_companion.errors import CompanionError
from trio_companion.storage import check_writable_dir

CONFIG_PATH_ENV: Final = "COMPANION_CONFIG"
DEFAULT_CONFIG_FILE: Final = "companion.toml"
DOTENV_FILE: Final = ".env"
# The name every Discord library and tutorial uses; accepted beside COMPANION_DISCORD_TOKEN.
TOKEN_ALIAS_ENV: Final = "DISCORD_TOKEN"
# Environment names with our prefix that are not settings.
_NOT_SETTINGS: Final = frozenset({CONFIG_PATH_ENV})


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One reason the configuration cannot be used, phrased for the person who wrote it."""

    key: str
    message: str
    source: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message} (from {self.source})"


class ConfigError(CompanionError):
    """Raised by `load_config` with every problem found; ``str()`` lists them one per line."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A valid configuration and, for each key that was set, where its value came from."""

    config: Config
    sources: Mapping[str, str]
    config_file: Path | None


def _parse_env_value(raw: str, field: SettingField) -> Any:
    """Turn an environment string into the shape the field's type wants, without judging it."""
    text = raw.strip()
    info = field.info.type if isinstance(field.info, mi.Metadata) else field.info
    union = info.types if isinstance(info, mi.UnionType) else (info,)
    if text == "" and any(isinstance(t, mi.NoneType) for t in union):
        return None
    if any(isinstance(t, mi.ListType) for t in union):
        return [] if text == "" else [part.strip() for part in text.split(",")]
    if any(isinstance(t, mi.IntType) for t in union) and _looks_int(text):
        return int(text)
    if isinstance(info, mi.BoolType) and text.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[text.lower()]
    return text


_BOOL_WORDS: Final = {
    "true": True,
    "yes": True,
    "on": True,
    "false": False,
    "no": False,
    "off": False,
}


def _looks_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _convert(field: SettingField, value: Any, *, from_env: bool) -> Any:
    # Environment values are text: let msgspec parse "0.7" or "true" for non-text fields. TOML
    # values are typed already and must match exactly (a quoted "0.7" is a mistake worth naming).
    lax = from_env and not (isinstance(value, str) and _is_str_typed(field))
    return msgspec.convert(value, field.type, strict=not lax)


def _is_str_typed(field: SettingField) -> bool:
    info = field.info.type if isinstance(field.info, mi.Metadata) else field.info
    return isinstance(info, mi.StrType) or (
        isinstance(info, mi.LiteralType) and all(isinstance(v, str) for v in info.values)
    )


def _read_toml(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        problems.append(ConfigProblem(str(path), "the file does not exist", "--config"))
    except OSError as e:
        problems.append(ConfigProblem(str(path), f"cannot be read ({e.strerror})", "--config"))
    except tomllib.TOMLDecodeError as e:
        problems.append(ConfigProblem(str(path), f"is not valid TOML: {e}", path.name))
    return {}


def _flatten_toml(
    data: Mapping[str, Any], source: str, problems: list[ConfigProblem]
) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for name, value in data.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                problems.append(ConfigProblem(name, "expected a [section] table", source))
                continue
            for key, v in value.items():
                dotted = f"{name}.{key}"
                if dotted not in SCHEMA:
                    problems.append(_unknown(dotted, source, [k for k in SCHEMA if "." in k]))
                else:
                    out[dotted] = (v, source)
        elif name in SCHEMA:
            out[name] = (value, source)
        else:
            problems.append(
                _unknown(name, source, [*SECTIONS, *(k for k in SCHEMA if "." not in k)])
            )
    return out


def _unknown(key: str, source: str, candidates: list[str]) -> ConfigProblem:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigProblem(key, f"unknown key{hint}", source)


def _from_env(
    env: Mapping[str, str | None], label: str, problems: list[ConfigProblem]
) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    token = env.get(TOKEN_ALIAS_ENV)
    if token is not None:
        out["discord.token"] = (token, f"{label}{TOKEN_ALIAS_ENV}")
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS or raw is None:
            continue
        field = BY_ENV.get(name)
        if field is None:
            problems.append(_unknown(name, f"{label}{name}", list(BY_ENV)))
            continue
        out[field.key] = (_parse_env_value(raw, field), f"{label}{name}")
    return out


def load_config(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> LoadedConfig:
    """Load and validate the configuration; raise `ConfigError` listing every problem.

    ``config_file`` is the ``--config`` argument; without it ``COMPANION_CONFIG`` (environment or
    ``.env``) names the file, else ``companion.toml`` in ``cwd`` is used if it exists.
    """
    env = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else cwd
    problems: list[ConfigProblem] = []

    dotenv_path = base / DOTENV_FILE
    dotenv: dict[str, str | None] = (
        dict(dotenv_values(dotenv_path)) if dotenv_path.is_file() else {}
    )

    explicit = config_file or env.get(CONFIG_PATH_ENV) or dotenv.get(CONFIG_PATH_ENV)
    path: Path | None
    if explicit:
        path = Path(explicit) if Path(explicit).is_absolute() else base / explicit
    else:
        path = base / DEFAULT_CONFIG_FILE if (base / DEFAULT_CONFIG_FILE).is_file() else None

    values: dict[str, tuple[Any, str]] = {}
    if path is not None:
        values.update(_flatten_toml(_read_toml(path, problems), path.name, problems))
    from_toml = set(values)
    env_values = _from_env(dotenv, f"{DOTENV_FILE} ", problems)
    env_values.update(_from_env(env, "env ", problems))
    values.update(env_values)

    converted: dict[str, Any] = {}
    for key, (raw, source) in values.items():
        field = SCHEMA[key]
        try:
            converted[key] = _convert(
                field, raw, from_env=key in env_values or key not in from_toml
            )
        except (msgspec.ValidationError, TypeError, ValueError):
            expected = describe_expected(field.info)
            got = show_value(raw, secret=field.secret)
            problems.append(ConfigProblem(key, f"got {got}, expected {expected}", source))

    config = _build(converted)
    sources = {key: source for key, (_, source) in values.items()}
    problems.extend(_check_rules(config, sources, base))
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(config=_resolve_paths(config, base), sources=sources, config_file=path)


def _build(values: Mapping[str, Any]) -> Config:
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        (sections[section] if section else top)[name] = value
    for f in msgspec.structs.fields(Config):
        if f.name in sections:
            top[f.name] = f.type(**sections[f.name])
    return Config(**top)


def _resolve_paths(config: Config, base: Path) -> Config:
    def resolve(p: str) -> str:
        return p if not p or Path(p).is_absolute() else str(base / p)

    return msgspec.structs.replace(
        config,
        data_dir=resolve(config.data_dir),
        chat=msgspec.structs.replace(config.chat, personas_dir=resolve(config.chat.personas_dir)),
        memory=msgspec.structs.replace(
            config.memory, documents_dir=resolve(config.memory.documents_dir)
        ),
        logging=msgspec.structs.replace(config.logging, file=resolve(config.logging.file)),
    )


def _check_rules(config: Config, sources: Mapping[str, str], base: Path) -> list[ConfigProblem]:
    """Rules that involve more than one field, or the world outside the file."""
    problems: list[ConfigProblem] = []

    def problem(key: str, message: str) -> None:
        problems.append(ConfigProblem(key, message, sources.get(key, "default")))

    def range_rule(low_key: str, low: float, high_key: str, high: float) -> None:
        if low > high:
            problem(low_key, f"got {low}, expected at most {high_key} ({high})")

    range_rule(
        "chat.reply_delay_min",
        config.chat.reply_delay_min,
        "chat.reply_delay_max",
        config.chat.reply_delay_max,
    )
    if config.llm.num_predict == 0:
        problem("llm.num_predict", "got 0, expected -1 (no limit) or a positive integer")
    token = config.discord.token
    if token.startswith(("Bot ", "Bearer ")):
        problem("discord.token", "got a value starting with 'Bot ', expected the bare token")
    elif token and (any(c.isspace() for c in token) or token.count(".") != 2):
        problem(
            "discord.token", "got a secret value, expected a bot token (three dot-separated parts)"
        )
    if config.memory.search_provider == "searxng" and not config.memory.searxng_url:
        problem(
            "memory.searxng_url",
            "got '', expected the SearXNG URL when search_provider is 'searxng'",
        )
    problems.extend(_check_timezone(config, sources))

    data_dir = Path(config.data_dir)
    reason = check_writable_dir(data_dir if data_dir.is_absolute() else base / data_dir)
    if reason is not None:
        problem("data_dir", f"got {config.data_dir!r}, expected a writable directory ({reason})")
    return problems


def _check_timezone(config: Config, sources: Mapping[str, str]) -> list[ConfigProblem]:
    name = config.reminders.default_timezone
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [
            ConfigProblem(
                "reminders.default_timezone",
                f"got {name!r}, expected an IANA time zone name such as 'Europe/Paris'",
                sources.get("reminders.default_timezone", "default"),
            )
        ]
    return []
