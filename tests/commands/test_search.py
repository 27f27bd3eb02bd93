"""/search end to end: the whole app, the fake Discord, a fake Ollama and a fake SearXNG.

Real clock (the app's storage works in threads); nothing here sleeps: every wait is for a
request the fakes record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_rest import FakeInteraction
from tests.fakes.llm_servers import FakeOllama
from tests.fakes.search_servers import SAMPLE_RESULTS, FakeSearXNG
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.commands.search import SEARCH_OFF
from trio_companion.config import Config

DEADLINE = 30
EPHEMERAL = 64
SOURCES = "Sources: " + " · ".join(f"[{n}](<{r.url}>)" for n, r in enumerate(SAMPLE_RESULTS, 1))


@pytest.fixture
def config(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, fake_searxng: FakeSearXNG, tmp_path: Path
) -> Config:
    base = fake_discord.config(tmp_path / "data")
    return msgspec.structs.replace(
        base,
        llm=msgspec.structs.replace(base.llm, url=fake_ollama.url),
        chat=msgspec.structs.replace(base.chat, personas_dir=str(tmp_path / "personas")),
        memory=msgspec.structs.replace(
            base.memory, search_provider="searxng", searxng_url=fake_searxng.url
        ),
    )


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    async with trio.open_nursery() as nursery:
        started: App = await nursery.start(app_module.run, config)
        yield started
        started.request_shutdown("test over")


async def search(fake: FakeDiscord, query: str, *, user_id: int = 1) -> FakeInteraction:
    return await fake.interact(
        "search", [{"name": "query", "type": 3, "value": query}], user_id=user_id
    )


def chat_bodies(fake: FakeOllama) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.path == "/api/chat"]


def private_answer(interaction: FakeInteraction) -> str:
    """The one ephemeral message the caller got (the public "thinking…" removed)."""
    [message] = interaction.followups.values()
    assert message["flags"] & EPHEMERAL
    assert interaction.original is None
    content: str = message["content"]
    return content


async def test_search_answers_from_the_results_with_sources(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama, fake_searxng: FakeSearXNG
) -> None:
    fake_ollama.reply = "Trio is a Python library for async I/O [1][2]."
    expected = f"Trio is a Python library for async I/O [1][2].\n\n{SOURCES}"
    with trio.fail_after(DEADLINE):
        asked = await search(fake_discord, "  what is trio? ")
        await fake_discord.rest.wait_until(
            lambda: asked.original is not None and asked.original["content"] == expected
        )
    assert asked.callback_type == 5  # deferred while searching
    [query] = fake_searxng.queries
    assert (query.q, query.safe) == ("what is trio?", "1")
    [body] = chat_bodies(fake_ollama)
    system, user = body["messages"]
    assert user == {"role": "user", "content": "Ann: what is trio?"}  # no history
    assert system["role"] == "system"
    assert "Mira" in system["content"]  # the persona comes first, then the results
    for number, result in enumerate(SAMPLE_RESULTS, 1):
        assert (
            f"[{number}] {result.title}\nURL: {result.url}\n{result.content}" in (system["content"])
        )
    assert "as [1] or [2]" in system["content"]
    assert asked.original is not None
    assert not asked.original["flags"] & EPHEMERAL  # the answer is for the channel


async def test_sources_too_long_for_the_last_message_come_after_it(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply = "word " * 395  # 1975 characters: no room for the sources
    with trio.fail_after(DEADLINE):
        asked = await search(fake_discord, "trio")
        await fake_discord.rest.wait_until(
            lambda: [m["content"] for m in asked.followups.values()] == [SOURCES]
        )
        await fake_discord.rest.wait_until(
            lambda: asked.original is not None and asked.original["content"].startswith("word")
        )


async def test_search_off(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, config: Config
) -> None:
    config = msgspec.structs.replace(
        config, memory=msgspec.structs.replace(config.memory, search_provider="none")
    )
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app: App = await nursery.start(app_module.run, config)
            assert app.search is None
            asked = await search(fake_discord, "news")
            await fake_discord.wait_answered(asked)
            app.request_shutdown("test over")
    assert asked.callback_type == 4
    assert asked.original is not None
    assert asked.original["content"] == SEARCH_OFF
    assert asked.original["flags"] & EPHEMERAL
    assert chat_bodies(fake_ollama) == []


async def test_search_down_is_told_privately_and_the_bot_keeps_working(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama, fake_searxng: FakeSearXNG
) -> None:
    fake_searxng.down = True
    with trio.fail_after(DEADLINE):
        failed = await search(fake_discord, "news")
        await fake_discord.wait_answered(failed)
        await fake_discord.rest.wait_until(lambda: failed.original is None)
        assert private_answer(failed) == f"Can't reach SearXNG at {fake_searxng.url}: " + (
            "is it running and reachable?"
        )
        fake_searxng.down = False
        fake_ollama.reply = "Back."
        again = await search(fake_discord, "news", user_id=2)  # another user: no cooldown
        await fake_discord.rest.wait_until(
            lambda: again.original is not None and again.original["content"].startswith("Back.")
        )
    assert len(chat_bodies(fake_ollama)) == 1


async def test_json_disabled_and_no_results(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama, fake_searxng: FakeSearXNG
) -> None:
    fake_searxng.json_disabled = True
    with trio.fail_after(DEADLINE):
        refused = await search(fake_discord, "news")
        await fake_discord.wait_answered(refused)
        await fake_discord.rest.wait_until(lambda: refused.original is None)
        fake_searxng.json_disabled = False
        fake_searxng.results = []
        empty = await search(fake_discord, "zxqv", user_id=2)
        await fake_discord.wait_answered(empty)
        await fake_discord.rest.wait_until(lambda: empty.original is None)
    assert private_answer(refused) == (
        "SearXNG refused JSON output: enable `json` in its settings.yml formats."
    )
    assert private_answer(empty) == "SearXNG found nothing for “zxqv”."
    assert chat_bodies(fake_ollama) == []


async def test_query_length_is_limited(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        asked = await search(fake_discord, "x" * 201)
        await fake_discord.wait_answered(asked)
    assert asked.original is not None
    assert asked.original["flags"] & EPHEMERAL
