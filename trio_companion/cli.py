"""The command line: ``python -m trio_companion [--config FILE] [run | check-config | chat]``.

Exit codes: 0 after an orderly shutdown or a valid configuration; 2 for a problem the user must
fix (configuration, missing token, unusable database), printed as one line each and never as a
traceback; 1 for a crash (a bug, logged with its traceback); 128 + N after a forced shutdown by
signal N.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, TextIO

import trio

from trio_companion import __version__, app, terminal
from trio_companion.config import (
    Config,
    ConfigError,
    LoadedConfig,
    load_config,
    render_effective,
    secret_keys,
)
from trio_companion.errors import CompanionError
from trio_companion.logs import logging_configured, redact, register_secrets

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_CRASH: Final = 1
EXIT_USAGE: Final = 2
# What a shell reports for Ctrl-C before our signal handling is installed.
EXIT_INTERRUPTED: Final = 130

NO_TOKEN_HINT: Final = (
    "No Discord token: set DISCORD_TOKEN (in the environment or a .env file) or discord.token in "
    "companion.toml; a bot token comes from https://discord.com/developers/applications"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trio_companion",
        description="A Discord AI companion bot built on trio.",
    )
    parser.add_argument("--version", action="version", version=f"trio_companion {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML configuration file (default: $COMPANION_CONFIG, else ./companion.toml)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="connect to Discord and run the companion (the default)")
    commands.add_parser(
        "check-config",
        help="print the effective configuration (secrets redacted), or every problem in it",
    )
    chat = commands.add_parser(
        "chat",
        help="talk to a persona in the terminal (same personas, history and LLM; no Discord)",
    )
    chat.add_argument(
        "--persona", metavar="NAME", help="the persona's id or name (default: chat.default_persona)"
    )
    chat.add_argument(
        "--name",
        metavar="NAME",
        help="your name in the conversation and its history (default: your OS user name)",
    )
    chat.add_argument(
        "--no-history",
        action="store_true",
        help="answer each message on its own: no history is read or stored",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m trio_companion``; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        loaded = load_config(args.config)
    except ConfigError as e:
        _say(f"The configuration has {len(e.problems)} problem(s):")
        for problem in e.problems:
            _say(f"  {problem}")
        return EXIT_USAGE
    register_secrets(_secret_values(loaded.config))
    command = args.command or "run"
    if command == "check-config":
        return _check_config(loaded)
    if command == "chat":
        return _chat(loaded.config, args)
    return _run(loaded.config)


def _check_config(loaded: LoadedConfig) -> int:
    sys.stdout.write(render_effective(loaded))
    _say("The configuration is valid.")
    return EXIT_OK


def _run(config: Config) -> int:
    if not config.discord.token:
        _say(NO_TOKEN_HINT)
        return EXIT_USAGE
    return _run_trio(
        config, functools.partial(app.run, config, handle_signals=True), config.logging.level
    )


def _chat(config: Config, args: argparse.Namespace) -> int:
    session = functools.partial(
        terminal.run_chat,
        config,
        persona=args.persona,
        user_name=(args.name or "").strip() or terminal.default_user_name(),
        use_history=not args.no_history,
    )
    # The terminal is the conversation: INFO and WARNING lines (persona loads, the chat
    # service's warning about an LLM failure the reply already shows) would land between its
    # lines. The session prints the problems it knows of itself; DEBUG stays for debugging.
    level = "DEBUG" if config.logging.level == "DEBUG" else "ERROR"
    return _run_trio(config, session, level)


def _run_trio(config: Config, main: Callable[[], Awaitable[int]], level: str) -> int:
    """Run ``main`` in trio with logging set up; `CompanionError` leaves become one line each
    and exit code 2."""
    with logging_configured(
        level,
        file=config.logging.file,
        max_bytes=config.logging.max_bytes,
        backup_count=config.logging.backup_count,
    ):
        problems: list[CompanionError] = []
        try:
            try:
                return trio.run(main)
            except* CompanionError as group:
                problems.extend(_leaves(group))
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    for error in problems:
        _say(redact(str(error)))
    return EXIT_USAGE


def _leaves(group: BaseExceptionGroup[CompanionError]) -> list[CompanionError]:
    leaves: list[CompanionError] = []
    for e in group.exceptions:
        leaves.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return leaves


def _secret_values(config: Config) -> list[str]:
    values: list[str] = []
    for key in secret_keys():
        section, _, name = key.rpartition(".")
        holder: object = getattr(config, section) if section else config
        value = getattr(holder, name)
        if isinstance(value, str) and value:
            values.append(value)
    return values


def _say(line: str, stream: TextIO | None = None) -> None:
    print(line, file=stream or sys.stderr)
