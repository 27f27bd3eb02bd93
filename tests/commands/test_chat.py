"""Conversation end to end: the whole app, the fake Discord and a fake Ollama.

Real clock (the app's storage works in threads); nothing here sleeps: every wait is for a
request the fakes record.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from tests.fakes.discord import CHANNEL_ID, USER_ID, FakeDiscord
from tests.fakes.llm_servers import FakeOllama
from tests.fakes.search_servers import SAMPLE_RESULTS, FakeSearXNG
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.config import Config

DEADLINE = 30


def sent_messages(fake: FakeOllama, index: int = -1) -> list[dict[str, Any]]:
    chats = [r for r in fake.requests if r.path == "/api/chat"]
    body = chats[index].json
    assert isinstance(body, dict)
    messages: list[dict[str, Any]] = body["messages"]
    return messages


async def wait_reply(fake: FakeDiscord, text: str, count: int) -> None:
    """Until the bot's ``count``-th message in the channel reads ``text``."""

    def done() -> bool:
        mine = fake.bot_messages()
        return len(mine) >= count and mine[count - 1]["content"] == text

    await fake.rest.wait_until(done)


async def test_a_mention_gets_a_streamed_reply_with_the_persona(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply = "Hello Ann! Nice to meet you."
    with trio.fail_after(DEADLINE):
        asked = await fake_discord.say("hi there", mention_bot=True)
        await wait_reply(fake_discord, "Hello Ann! Nice to meet you.", 1)
    [reply] = fake_discord.bot_messages()
    assert reply["message_reference"]["message_id"] == str(asked)
    messages = sent_messages(fake_ollama)
    assert messages[0]["role"] == "system"
    assert "Mira" in messages[0]["content"]  # the shipped default persona
    assert messages[-1] == {"role": "user", "content": "Ann: hi there"}
    body = fake_ollama.requests[-1].json
    assert body["options"]["num_ctx"] == app.config.llm.num_ctx
    assert body["stream"] is True


async def test_history_reaches_the_model_and_sessions_follow_up(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        fake_ollama.reply = "I like tea."
        await fake_discord.say("what do you drink?", mention_bot=True)
        await wait_reply(fake_discord, "I like tea.", 1)
        # No mention: the follow-up window after the bot's reply is open.
        fake_ollama.reply = "Green, mostly."
        await fake_discord.say("which kind?", username="bob", user_id=77)
        await wait_reply(fake_discord, "Green, mostly.", 2)
    messages = sent_messages(fake_ollama)
    assert [m["content"] for m in messages[1:]] == [
        "Ann: what do you drink?",
        "I like tea.",
        "Bob: which kind?",
    ]


async def test_end_session_stops_follow_ups(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        fake_ollama.reply = "First."
        await fake_discord.say("hello", mention_bot=True)
        await wait_reply(fake_discord, "First.", 1)
        ended = await fake_discord.interact("end_session")
        await fake_discord.wait_answered(ended)
        assert ended.original is not None
        assert "only answer here when someone mentions me" in ended.original["content"]
        await fake_discord.say("anyone there?")  # not for the bot any more
        fake_ollama.reply = "Second."
        await fake_discord.say("Mira, are you there?")  # its name, as a word
        await wait_reply(fake_discord, "Second.", 2)
    chats = [r for r in fake_ollama.requests if r.path == "/api/chat"]
    assert len(chats) == 2
    assert sent_messages(fake_ollama)[-1]["content"] == "Ann: Mira, are you there?"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": "ignore me #ignore", "mention_bot": True},
        {"content": "from a bot", "mention_bot": True, "bot": True},
        {"content": "a miracle", "mention_bot": False},  # "Mira" inside a word
    ],
)
async def test_messages_not_for_the_bot(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama, kwargs: dict[str, Any]
) -> None:
    with trio.fail_after(DEADLINE):
        await fake_discord.say(**kwargs)
        fake_ollama.reply = "Only this one."
        await fake_discord.say("now you", mention_bot=True)
        await wait_reply(fake_discord, "Only this one.", 1)
    assert len([r for r in fake_ollama.requests if r.path == "/api/chat"]) == 1


async def test_too_long_message_is_refused_without_calling_the_model(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        await fake_discord.say("x" * 4100, mention_bot=True)
        await fake_discord.wait_bot_messages(1)
    [reply] = fake_discord.bot_messages()
    assert (
        reply["content"] == "That message is too long for me (4100 characters; the limit is 4000)."
    )
    assert fake_ollama.requests == []


async def test_llm_down_gives_a_clear_message_and_the_bot_keeps_running(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.down = True
    with trio.fail_after(DEADLINE):
        await fake_discord.say("hello?", mention_bot=True)
        await fake_discord.wait_bot_messages(1)
        await fake_discord.rest.wait_until(
            lambda: "LLM" in fake_discord.bot_messages()[0]["content"]
        )
        fake_ollama.down = False
        fake_ollama.reply = "I'm back."
        await fake_discord.say("and now?", mention_bot=True)
        await wait_reply(fake_discord, "I'm back.", 2)
    first = fake_discord.bot_messages()[0]["content"]
    assert first.startswith("*Can't reach the LLM server")
    assert fake_discord.gateway.connections[-1].live


async def test_a_cut_stream_says_so_under_the_partial_reply(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply = "one two three four five six"
    fake_ollama.cut_after = 3
    with trio.fail_after(DEADLINE):
        await fake_discord.say("count", mention_bot=True)
        await fake_discord.wait_bot_messages(1)
        await fake_discord.rest.wait_until(lambda: "*" in fake_discord.bot_messages()[0]["content"])
        content = fake_discord.bot_messages()[0]["content"]
        assert content.startswith("one two three")
        assert content.endswith("*")
        fake_ollama.cut_after = None
        fake_ollama.reply = "Sorry about that."
        await fake_discord.say("again?", mention_bot=True)
        await wait_reply(fake_discord, "Sorry about that.", 2)
    # The question was remembered, the broken answer was not.
    assert [m["content"] for m in sent_messages(fake_ollama)[1:]] == ["Ann: count", "Ann: again?"]


async def test_chat_and_ask_commands(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        fake_ollama.reply = "Sure thing."
        chat = await fake_discord.interact("chat", [{"name": "message", "type": 3, "value": "hey"}])
        await fake_discord.wait_answered(chat)
        await fake_discord.rest.wait_until(
            lambda: chat.original is not None and chat.original["content"] == "Sure thing."
        )
        fake_ollama.reply = "Canberra."
        ask = await fake_discord.interact(
            "ask", [{"name": "question", "type": 3, "value": "capital of Australia?"}], user_id=5
        )
        await fake_discord.rest.wait_until(
            lambda: ask.original is not None and ask.original["content"] == "Canberra."
        )
    assert chat.callback_type == 5  # deferred: "thinking…" while the model works
    ask_messages = sent_messages(fake_ollama)
    # /ask is one-shot: no history, just the persona and the question.
    assert [m["role"] for m in ask_messages] == ["system", "user"]
    assert ask_messages[1]["content"].endswith("capital of Australia?")


async def test_one_channel_is_answered_in_order_others_in_parallel(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.tokens_per_second = 20
    seen: list[str] = []

    def respond(messages: Sequence[Any]) -> str:
        last = messages[-1]["content"] if isinstance(messages[-1], dict) else ""
        seen.append(last)
        return f"reply to {last}"

    fake_ollama.responder = respond
    with trio.fail_after(DEADLINE):
        await fake_discord.say("first", mention_bot=True)
        await fake_discord.say("second", mention_bot=True)
        await fake_discord.say("elsewhere", mention_bot=True, channel_id=CHANNEL_ID + 1)
        await wait_reply(fake_discord, "reply to Ann: second", 2)
        await fake_discord.rest.wait_until(
            lambda: (
                len(fake_discord.bot_messages(CHANNEL_ID + 1)) == 1
                and fake_discord.bot_messages(CHANNEL_ID + 1)[0]["content"].endswith("elsewhere")
            )
        )
    second_request = [
        r for r in sent_messages_all(fake_ollama) if r[-1]["content"].endswith("second")
    ]
    # The second message was answered after the first exchange was stored: it saw it.
    assert [m["content"] for m in second_request[0][1:]] == [
        "Ann: first",
        "reply to Ann: first",
        "Ann: second",
    ]
    assert fake_ollama.max_concurrent_streams == 2


def sent_messages_all(fake: FakeOllama) -> list[list[dict[str, Any]]]:
    bodies = [r.json for r in fake.requests if r.path == "/api/chat"]
    return [b["messages"] for b in bodies if isinstance(b, dict)]


async def test_status_reports_the_llm_and_replies(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        fake_ollama.reply = "Hi."
        await fake_discord.say("hello", mention_bot=True)
        await wait_reply(fake_discord, "Hi.", 1)
        # Replies in one channel are serialised: once the second is visible, the first has
        # been counted (its bookkeeping ends before the second starts).
        await fake_discord.say("again", mention_bot=True)
        await wait_reply(fake_discord, "Hi.", 2)
        status = await fake_discord.interact("status")
        await fake_discord.wait_answered(status)
        fake_ollama.down = True
        down = await fake_discord.interact("status", user_id=9)
        await fake_discord.wait_answered(down)
    assert status.original is not None
    lines = status.original["content"].splitlines()
    assert lines[0].startswith("**LLM** (ollama, model `llama3.2`): reachable (")
    assert re.match(r"\*\*Replies\*\*: [12] \(0 failed\); first words after \d", lines[1])
    assert lines[2].startswith("**Gateway**: 1/1 shards connected")
    assert status.original["flags"] & 64  # only the caller sees it
    assert down.original is not None
    assert "not reachable: Can't reach the LLM server" in down.original["content"]


async def test_fifty_people_at_once(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, config: Config
) -> None:
    """50 users in 50 channels mention the bot at once: every one is answered in full, the
    fake Discord never answers 429, and heartbeats stay on time (no zombie reconnect)."""
    fake_discord.gateway.heartbeat_interval_ms = 1_000
    fake_ollama.tokens_per_second = 50
    fake_ollama.responder = lambda messages: f"Hello {messages[-1]['content'].split(':')[0]}!"
    config = msgspec.structs.replace(
        config, llm=msgspec.structs.replace(config.llm, max_concurrency=50)
    )
    channels = [CHANNEL_ID + n for n in range(50)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            app: App = await nursery.start(app_module.run, config)
            for n, channel in enumerate(channels):
                await fake_discord.say(
                    "hi!", mention_bot=True, channel_id=channel, username=f"user{n}", user_id=n + 1
                )
            for n, channel in enumerate(channels):

                def answered(channel: int = channel, n: int = n) -> bool:
                    contents = [m["content"] for m in fake_discord.bot_messages(channel)]
                    return contents == [f"Hello User{n}!"]

                await fake_discord.rest.wait_until(answered)
            app.request_shutdown("test over")
    statuses = {r.status for r in fake_discord.rest.requests}
    limited = [(r.method, r.path) for r in fake_discord.rest.requests if r.status == 429]
    assert statuses <= {200, 204}, limited[:5]
    [connection] = fake_discord.gateway.connections
    beats = [t for t, op, _ in connection.received if op == 1]
    assert len(beats) >= 2
    assert max(b - a for a, b in itertools.pairwise(beats)) < 1.5


async def test_remind_me_in_chat_uses_the_reminder_parser(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        await fake_discord.say("remind me in 10 minutes to stretch", mention_bot=True)
        await fake_discord.wait_bot_messages(1)
        await fake_discord.say("remind me whenever", mention_bot=True)
        await fake_discord.wait_bot_messages(2)
    confirmed, refused = (m["content"] for m in fake_discord.bot_messages())
    assert confirmed.startswith("I'll remind you on ")
    assert confirmed.endswith("stretch (reminder #1)")
    assert refused.startswith("I couldn't find a time in that.")
    # The model was not asked to chat; only, once, to read the phrase the parser could not.
    [asked] = [r.json for r in fake_ollama.requests if r.path == "/api/chat"]
    assert isinstance(asked, dict)
    assert asked["messages"][0]["content"].startswith("You turn a reminder request into JSON")
    assert asked["messages"][1]["content"].endswith("Request: remind me whenever")


async def test_retrieved_passages_reach_the_model(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, config: Config, tmp_path: Path
) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "lore.md").write_text(
        "# The Glimmer Sword\n\nThe Glimmer Sword was forged by the smith Oriel in Varn.\n"
    )
    (documents / "food.txt").write_text("Bread is baked at dawn in the village of Pell.\n")
    config = msgspec.structs.replace(
        config, memory=msgspec.structs.replace(config.memory, documents_dir=str(documents))
    )
    fake_ollama.reply = "Oriel forged it."
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app: App = await nursery.start(app_module.run, config)
            await fake_discord.say("who forged the glimmer sword?", mention_bot=True)
            await wait_reply(fake_discord, "Oriel forged it.", 1)
            app.request_shutdown("test over")
    system = sent_messages(fake_ollama)[0]["content"]
    assert "[source: lore.md]" in system
    assert "forged by the smith Oriel" in system
    assert "Pell" not in system  # only what matches


async def test_what_the_bot_knows_about_the_speaker_reaches_the_model(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        remembered = await fake_discord.interact(
            "remember", [{"name": "instruction", "type": 3, "value": "call me Captain"}]
        )
        await fake_discord.wait_answered(remembered)
        fake_ollama.reply = "Aye, Captain."
        await fake_discord.say("hello", mention_bot=True)
        await wait_reply(fake_discord, "Aye, Captain.", 1)
    system = sent_messages(fake_ollama)[0]["content"]
    assert "What you know about Ann, who wrote the last message:" in system
    assert "<<user instruction>> call me Captain <</user instruction>>" in system


async def test_the_model_reads_a_reminder_phrase_the_parser_cannot(
    app: App, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    day = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    fake_ollama.reply = f'Sure: {{"when": "{day}T17:00", "what": "call gran"}}'
    with trio.fail_after(DEADLINE):
        await fake_discord.say(
            "remind me at teatime the day after tomorrow to call gran", mention_bot=True
        )
        await fake_discord.wait_bot_messages(1)
    [confirmed] = [m["content"] for m in fake_discord.bot_messages()]
    assert "at 17:00 (UTC)" in confirmed
    assert ": call gran (reminder #1) — that is how I understood it" in confirmed
    [reminder] = await app.store.reminders.list_for_user(USER_ID)
    assert datetime.fromtimestamp(reminder.due_at, UTC).strftime("%Y-%m-%dT%H:%M") == f"{day}T17:00"


async def test_questions_about_now_are_searched_when_auto_search_is_on(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, fake_searxng: FakeSearXNG, config: Config
) -> None:
    memory = msgspec.structs.replace(
        config.memory, search_provider="searxng", searxng_url=fake_searxng.url, auto_search=True
    )
    config = msgspec.structs.replace(config, memory=memory)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app: App = await nursery.start(app_module.run, config)
            fake_ollama.reply = "Nobody knows yet."
            await fake_discord.say("who won the match yesterday?", mention_bot=True)
            await wait_reply(fake_discord, "Nobody knows yet.", 1)
            fake_ollama.reply = "Hello!"
            await fake_discord.say("how are you?", mention_bot=True)
            await wait_reply(fake_discord, "Hello!", 2)
            app.request_shutdown("test over")
    first, second = sent_messages_all(fake_ollama)
    assert "Fresh web search results for the last message:" in first[0]["content"]
    assert f"<{SAMPLE_RESULTS[0].url}>" in first[0]["content"]
    assert "Fresh web search results" not in second[0]["content"]  # not about current events
    assert [q.q for q in fake_searxng.queries] == ["who won the match yesterday?"]
