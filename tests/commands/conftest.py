"""The whole app against the fake Discord and a fake Ollama, for command tests.

`config` points the app at both fakes and at an empty personas folder (the shipped default
persona); a module that needs more overrides `config`. `app` runs the app for the test and asks
it to shut down at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import trio

from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_servers import FakeOllama
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.config import Config

START_DEADLINE = 30


@pytest.fixture
def config(fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path) -> Config:
    base = fake_discord.config(tmp_path / "data")
    return msgspec.structs.replace(
        base,
        llm=msgspec.structs.replace(base.llm, url=fake_ollama.url),
        chat=msgspec.structs.replace(base.chat, personas_dir=str(tmp_path / "personas")),
    )


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(START_DEADLINE):
            started: App = await nursery.start(app_module.run, config)
        yield started
        started.request_shutdown("test over")
