"""The command line, in-process and as a real ``python -m trio_companion`` subprocess."""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_rest import FAKE_TOKEN
from trio_companion.cli import NO_TOKEN_HINT, main

TOKEN = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
DEADLINE = 30


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in an empty directory with none of our variables set."""
    for name in list(os.environ):
        if name.startswith("COMPANION_") or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPANION_")}
    env.pop("DISCORD_TOKEN", None)
    env.update(extra)
    return env


def test_check_config_prints_effective_config(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["DISCORD_TOKEN"] = TOKEN
    try:
        assert main(["check-config"]) == 0
    finally:
        del os.environ["DISCORD_TOKEN"]
    out, err = capsys.readouterr()
    assert 'token = "<redacted>"  # env DISCORD_TOKEN' in out
    assert TOKEN not in out + err
    assert 'model = "llama3.2"' in out
    assert err == "The configuration is valid.\n"


def test_check_config_lists_every_problem(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPANION_LLM_TEMPERATURE", "9")
    Path("companion.toml").write_text("[llm]\nmodle = 'x'\n")
    assert main(["check-config"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "The configuration has 2 problem(s):",
        "  llm.modle: unknown key (did you mean 'llm.model'?) (from companion.toml)",
        "  llm.temperature: got '9', expected a number from 0.0 to 2.0 "
        "(from env COMPANION_LLM_TEMPERATURE)",
    ]


def test_run_without_token_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", NO_TOKEN_HINT + "\n")


def test_corrupt_database_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("data").mkdir()
    Path("data/companion.sqlite3").write_bytes(b"garbage" * 1000)
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    assert main(["run"]) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("Cannot open the database")
    assert "not a SQLite database" in err.splitlines()[-1]


def test_help_lists_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_companion", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=DEADLINE,
    )
    assert "check-config" in result.stdout
    assert "run" in result.stdout


@asynccontextmanager
async def running(argv: list[str], env: dict[str, str]) -> AsyncIterator[trio.Process]:
    """Run ``argv`` with its stderr piped; the process is killed if the block exits early."""
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            functools.partial(trio.run_process, argv, env=env, stderr=subprocess.PIPE, check=False)
        )
        yield process
        await process.wait()


async def wait_for_line(stream: trio.abc.ReceiveStream, needle: bytes) -> bytes:
    seen = b""
    while needle not in seen:
        chunk = await stream.receive_some()
        if not chunk:
            raise AssertionError(f"process ended before printing {needle!r}:\n{seen.decode()}")
        seen += chunk
    return seen


def discord_env(fake: FakeDiscord, pem: Path, data_dir: Path) -> dict[str, str]:
    """The environment of a bot process that talks to the fake Discord of this test."""
    return child_env(
        DISCORD_TOKEN=FAKE_TOKEN,
        COMPANION_DISCORD_API_URL=fake.rest.url,
        COMPANION_DATA_DIR=str(data_dir),
        SSL_CERT_FILE=str(pem),
    )


async def test_bot_answers_then_sigterm_stops_it_with_exit_0(
    tmp_path: Path, fake_discord: FakeDiscord, trust_fake_ca: Path
) -> None:
    """``python -m trio_companion`` against the fake Discord: online, commands registered, a
    slash command answered, then SIGTERM and a clean exit."""
    env = discord_env(fake_discord, trust_fake_ca, tmp_path / "data")
    with trio.fail_after(DEADLINE):
        async with running([sys.executable, "-m", "trio_companion", "run"], env) as process:
            assert process.stderr is not None
            seen = await wait_for_line(process.stderr, b"trio_companion ready")
            assert "ping" in {c["name"] for c in fake_discord.rest.global_commands}
            interaction = await fake_discord.interact("ping")
            await fake_discord.wait_answered(interaction)
            assert interaction.original is not None
            assert interaction.original["content"].startswith("Pong!")
            process.send_signal(signal.SIGTERM)
            seen += await wait_for_line(process.stderr, b"stopped")
        assert process.returncode == 0, seen.decode()
    assert b"received SIGTERM" in seen
    assert FAKE_TOKEN.encode() not in seen
    # The bot came online (identified) and went offline with a 1000 close, ending its session.
    connection = fake_discord.gateway.connections[0]
    assert connection.identified
    assert connection.closed_code == 1000


# A process running the real app with one extra component whose work is in flight when the
# signal arrives: the work must finish (and be stored) before the process exits 0.
DUMMY_SCRIPT = """
import sys
import trio
from trio_companion import app, config, logs

def dummy(app_):
    async def run(*, task_status=trio.TASK_STATUS_IGNORED):
        with app_.lifecycle.work("dummy reply"):
            task_status.started()
            await app_.lifecycle.wait_stopping()
            await app_.store.meta.set("dummy", "finished after the signal")
        await trio.sleep_forever()
    return run

loaded = config.load_config()
with logs.logging_configured("INFO"):
    code = trio.run(lambda: app.run(loaded.config, handle_signals=True, extra_components=[dummy]))
sys.exit(code)
"""


async def test_sigterm_lets_a_dummy_component_finish_its_work(
    tmp_path: Path, fake_discord: FakeDiscord, trust_fake_ca: Path
) -> None:
    env = discord_env(fake_discord, trust_fake_ca, tmp_path / "data")
    with trio.fail_after(DEADLINE):
        async with running([sys.executable, "-c", DUMMY_SCRIPT], env) as process:
            assert process.stderr is not None
            await wait_for_line(process.stderr, b"trio_companion ready")
            process.send_signal(signal.SIGTERM)
            seen = await wait_for_line(process.stderr, b"stopped")
        assert process.returncode == 0, seen.decode()
    with sqlite3.connect(tmp_path / "data" / "companion.sqlite3") as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'dummy'").fetchone()
    assert row == ("finished after the signal",)


async def test_rejected_token_is_one_line_and_exit_2(
    tmp_path: Path, fake_discord: FakeDiscord, trust_fake_ca: Path
) -> None:
    env = discord_env(fake_discord, trust_fake_ca, tmp_path / "data")
    env["DISCORD_TOKEN"] = FAKE_TOKEN.replace("GfAkEt", "WrOnGg")
    with trio.fail_after(DEADLINE):
        result = await trio.run_process(
            [sys.executable, "-m", "trio_companion"], env=env, capture_stderr=True, check=False
        )
    assert result.returncode == 2
    last = result.stderr.decode().splitlines()[-1]
    assert last == "Discord rejected the token (401): check DISCORD_TOKEN"
    assert "Traceback" not in result.stderr.decode()
    assert fake_discord.gateway.connections == []  # never reached the gateway


async def test_fatal_gateway_close_stops_with_one_line(
    tmp_path: Path, fake_discord: FakeDiscord, trust_fake_ca: Path
) -> None:
    """The portal's privileged intents are off: Discord closes with 4014; no reconnect loop."""
    fake_discord.gateway.allowed_privileged = 0
    env = discord_env(fake_discord, trust_fake_ca, tmp_path / "data")
    with trio.fail_after(DEADLINE):
        result = await trio.run_process(
            [sys.executable, "-m", "trio_companion"], env=env, capture_stderr=True, check=False
        )
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.splitlines()[-1].startswith("Discord refused a privileged intent (4014)")
    assert "Traceback" not in err
    assert len(fake_discord.gateway.connections) == 1
