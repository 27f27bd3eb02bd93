"""/summarize_now, /recall and the message trigger, end to end: the whole app, the fake Discord
and a fake Ollama.

Real clock, as in tests/commands/test_notes.py: the store works in threads. History a test needs
is written straight into the store; waits are for requests the fakes record, or (for the
background summary) for the store to show it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import trio

from tests.fakes.discord import CHANNEL_ID, USER_ID, FakeDiscord, last_message
from tests.fakes.llm_servers import FakeOllama
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.commands.memory import MIN_NEW_TURNS, QUERY_LIMIT
from trio_companion.config import Config
from trio_companion.storage import Turn

DEADLINE: Final = 30
EPHEMERAL: Final = 1 << 6
BOB: Final = USER_ID + 1
THRESHOLD: Final = 10
KEEP: Final = 2
SUMMARY: Final = "Topics: the lighthouse picnic.\nNotable quotes: ann: “bring the kites”."


def make_config(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path, *, rag: bool
) -> Config:
    base = fake_discord.config(tmp_path / "data")
    return msgspec.structs.replace(
        base,
        llm=msgspec.structs.replace(base.llm, url=fake_ollama.url),
        chat=msgspec.structs.replace(
            base.chat, personas_dir=str(tmp_path / "personas"), history_turns=KEEP
        ),
        memory=msgspec.structs.replace(
            base.memory,
            rag_enabled=rag,
            documents_dir=str(tmp_path / "documents"),
            embedding_model="",
            summarize_after_turns=THRESHOLD,
        ),
    )


async def start(config: Config, nursery: trio.Nursery) -> App:
    with trio.fail_after(DEADLINE):
        started: App = await nursery.start(app_module.run, config)
    return started


@pytest.fixture
async def app(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path
) -> AsyncIterator[App]:
    fake_ollama.reply = SUMMARY
    async with trio.open_nursery() as nursery:
        started = await start(make_config(fake_discord, fake_ollama, tmp_path, rag=True), nursery)
        yield started
        started.request_shutdown("test over")


async def run(fake: FakeDiscord, name: str, user_id: int = USER_ID, **options: Any) -> str:
    listed = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    interaction = await fake.interact(name, listed, user_id=user_id)
    await fake.wait_answered(interaction)
    content: str = last_message(interaction)["content"]
    return content


async def seed(app: App, count: int) -> list[int]:
    return await app.store.history.append_many(
        [
            Turn(
                channel_id=CHANNEL_ID,
                author_id=USER_ID,
                author_name="ann",
                role="user",
                content=f"shall we fly kites {n}",
                created_at=1_795_867_200 + n,
            )
            for n in range(count)
        ]
    )


async def test_summarize_now_shows_the_summary_and_has_a_cooldown(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        ids = await seed(app, MIN_NEW_TURNS)
        shown = await run(fake_discord, "summarize_now")
        again = await run(fake_discord, "summarize_now")
        nothing = await run(fake_discord, "summarize_now", BOB)
        (stored,) = await app.store.summaries.list(CHANNEL_ID, limit=5)
    assert shown == f"**Summary of this conversation** (up to {MIN_NEW_TURNS} messages):\n{SUMMARY}"
    assert (stored.first_turn_id, stored.last_turn_id) == (ids[0], ids[-1])
    assert again.startswith("Slow down: try `/summarize_now` again in ")
    assert nothing == (
        f"Nothing to summarise yet: this channel has fewer than {MIN_NEW_TURNS} new messages "
        "since its last summary."
    )
    assert len(fake_ollama.chat_requests) == 1


async def test_summarize_now_says_when_the_model_fails(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.status = 500
    with trio.fail_after(DEADLINE):
        await seed(app, MIN_NEW_TURNS)
        failed = await run(fake_discord, "summarize_now")
        assert await app.store.summaries.latest_point(CHANNEL_ID) == 0
    assert failed.startswith("I could not summarise this conversation: the model failed")


async def test_recall_finds_a_summary_by_a_word_in_it(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await seed(app, MIN_NEW_TURNS)
        await run(fake_discord, "summarize_now")
        found = await run(fake_discord, "recall", query="Lighthouse")
        missing = await run(fake_discord, "recall", BOB, query="submarine")
    (stored,) = await app.store.summaries.list(CHANNEL_ID, limit=5)
    assert found.startswith("**Memories of this channel about “Lighthouse”:**\n")
    assert f"<t:{int(stored.created_at)}:d>" in found
    assert "the lighthouse picnic" in found
    assert missing == "I remember nothing in this channel about “submarine”."


async def test_recall_refuses_bad_input(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        too_long = await run(fake_discord, "recall", query="x" * (QUERY_LIMIT + 1))
        blank = await run(fake_discord, "recall", BOB, query="   ")
    assert too_long == "`query` is too long: 201 characters, the limit is 200."
    assert blank == "Tell me what to look for."


async def test_recall_without_retrieval_matches_words(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    config = make_config(fake_discord, fake_ollama, tmp_path, rag=False)
    async with trio.open_nursery() as nursery:
        app = await start(config, nursery)
        with trio.fail_after(DEADLINE):
            ids = await seed(app, 2)
            await app.store.summaries.add(CHANNEL_ID, ids[0], ids[0], "We planned a PICNIC.")
            await app.store.summaries.add(CHANNEL_ID, ids[1], ids[1], "Nothing of note.")
            found = await run(fake_discord, "recall", query="picnic plans")
        app.request_shutdown("test over")
    assert "We planned a PICNIC." in found
    assert "Nothing of note." not in found


async def test_messages_trigger_a_background_summary_past_the_threshold(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        ids = await seed(app, THRESHOLD + KEEP + 1)
        await fake_discord.say("just chatting, not to the bot")
        await app.memory.wait_handled(1)  # the request that message made
        (made,) = await app.store.summaries.list(CHANNEL_ID, limit=5)
    # The message above is not in the history (not addressed to the bot): KEEP of the seeded
    # turns stay unsummarised.
    assert (made.first_turn_id, made.last_turn_id) == (ids[0], ids[-KEEP - 1])
    assert made.text == SUMMARY
