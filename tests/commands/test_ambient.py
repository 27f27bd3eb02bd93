"""``/ambient`` end to end: the whole app, the fake Discord and a fake Ollama.

Real clock (the app's storage works in threads), with a half-second lull and certain draws from
the config. Waits are for requests the fakes record; only the checks that something does *not*
happen sleep, for a few lulls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from tests.fakes.discord import CHANNEL_ID, GUILD_ID, MANAGER, MEMBER, FakeDiscord
from tests.fakes.discord_rest import FakeInteraction
from tests.fakes.llm_servers import FakeOllama
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.commands.ambient import JUMP_IN_CONTEXT, LULL_CONTEXT
from trio_companion.config import AmbientConfig, Config

DEADLINE = 30
EPHEMERAL = 1 << 6
LULL = 0.5
KEY = f"channel:{CHANNEL_ID}:ambient"

ARIA = """\
name = "Aria"
description = "A cheerful gamer friend"
interests = ["games"]
system_prompt = "You are Aria."
"""


def make_config(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path, **ambient: float
) -> Config:
    personas = tmp_path / "personas"
    personas.mkdir(exist_ok=True)
    (personas / "aria.toml").write_text(ARIA, encoding="utf-8")
    base = fake_discord.config(tmp_path / "data")
    settings: dict[str, float] = {"lull_seconds": LULL, "min_interval": 0.0, "chance": 1.0}
    settings.update(ambient)
    return msgspec.structs.replace(
        base,
        llm=msgspec.structs.replace(base.llm, url=fake_ollama.url),
        chat=msgspec.structs.replace(base.chat, personas_dir=str(personas), default_persona="aria"),
        ambient=AmbientConfig(**settings),
    )


@pytest.fixture
def config(fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path) -> Config:
    return make_config(fake_discord, fake_ollama, tmp_path)


@asynccontextmanager
async def running_app(config: Config) -> AsyncIterator[App]:
    async with trio.open_nursery() as nursery:
        app: App = await nursery.start(_run, config)
        yield app
        app.request_shutdown("test over")


async def _run(config: Config, *, task_status: trio.TaskStatus[App]) -> None:
    await app_module.run(config, task_status=task_status)


async def ambient(
    fake: FakeDiscord, sub: str, *, permissions: int = MEMBER, guild_id: int | None = GUILD_ID
) -> FakeInteraction:
    interaction = await fake.interact(
        "ambient",
        [{"name": sub, "type": 1, "options": []}],
        permissions=permissions,
        guild_id=guild_id,
    )
    await fake.wait_answered(interaction)
    return interaction


def text(interaction: FakeInteraction) -> str:
    messages = [
        *([interaction.original] if interaction.original else []),
        *interaction.followups.values(),
    ]
    return "\n".join(m["content"] for m in messages)


def is_ephemeral(interaction: FakeInteraction) -> bool:
    assert interaction.original is not None
    return bool(interaction.original["flags"] & EPHEMERAL)


def chats(fake: FakeOllama) -> list[list[dict[str, Any]]]:
    found = []
    for request in fake.requests:
        if request.path == "/api/chat":
            assert isinstance(request.json, dict)
            found.append(request.json["messages"])
    return found


async def test_enable_needs_manage_server_and_says_one_thing_per_lull(
    config: Config, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply = "So... anyone tried the new patch?"
    with trio.fail_after(DEADLINE):
        async with running_app(config) as app:
            refused = await ambient(fake_discord, "enable")
            assert text(refused) == "`/ambient enable` needs the Manage Server permission."
            assert is_ephemeral(refused)
            assert await app.store.meta.get(KEY) is None

            enabled = await ambient(fake_discord, "enable", permissions=MANAGER)
            assert text(enabled).startswith("Ambient mode is on here: after 0.5 s of quiet")
            assert await app.store.meta.get(KEY) == "on"

            await fake_discord.wait_bot_messages(1)
            await fake_discord.rest.wait_until(
                lambda: fake_discord.bot_messages()[0]["content"] == fake_ollama.reply
            )
            [remark] = fake_discord.bot_messages()
            assert remark.get("message_reference") is None  # a remark, not a reply
            [messages] = chats(fake_ollama)
            assert messages[0]["role"] == "system"
            assert "You are Aria." in messages[0]["content"]
            assert LULL_CONTEXT in messages[0]["content"]

            await trio.sleep(4 * LULL)  # a long lull still gets one remark
            assert len(fake_discord.bot_messages()) == 1

            # A human message starts a new lull; the remark sees the stored conversation.
            await fake_discord.say("back from lunch", username="bob", user_id=77)
            await fake_discord.wait_bot_messages(2)
            history = [m["content"] for m in chats(fake_ollama)[-1][1:]]
            assert "So... anyone tried the new patch?" in history
            assert len(fake_discord.bot_messages()) == 2


async def test_status_and_disable(
    config: Config, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply = "Quiet in here."
    with trio.fail_after(DEADLINE):
        async with running_app(config) as app:
            off = text(await ambient(fake_discord, "status"))
            assert off.startswith("Ambient mode is **off** in this channel.")
            await ambient(fake_discord, "enable", permissions=MANAGER)
            on = text(await ambient(fake_discord, "status"))
            assert on.startswith("Ambient mode is **on** in this channel: after 0.5 s")
            await fake_discord.wait_bot_messages(1)

            refused = await ambient(fake_discord, "disable")
            assert "needs the Manage Server permission" in text(refused)
            disabled = await ambient(fake_discord, "disable", permissions=MANAGER)
            assert text(disabled) == "Ambient mode is off here."
            assert await app.store.meta.get(KEY) is None
            assert text(await ambient(fake_discord, "status")).startswith("Ambient mode is **off**")
            await fake_discord.say("hello?", username="bob", user_id=77)
            await trio.sleep(4 * LULL)
            assert len(fake_discord.bot_messages()) == 1


async def test_guild_only(config: Config, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            dm = await ambient(fake_discord, "status", guild_id=None)
            assert is_ephemeral(dm)
            assert "Ambient mode" not in text(dm)


async def test_the_opt_in_survives_a_restart(
    config: Config, fake_discord: FakeDiscord, fake_ollama: FakeOllama
) -> None:
    fake_discord.gateway.max_concurrency = 2  # the second run identifies within 5 s
    fake_ollama.reply = "Still here."
    slow = msgspec.structs.replace(
        config, ambient=msgspec.structs.replace(config.ambient, lull_seconds=600.0)
    )
    with trio.fail_after(DEADLINE):
        async with running_app(slow):
            await ambient(fake_discord, "enable", permissions=MANAGER)
        async with running_app(config) as app:
            assert app.ambient.is_enabled(CHANNEL_ID)
            await fake_discord.wait_bot_messages(1)


async def test_jump_in_on_an_interest(
    fake_discord: FakeDiscord, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    config = make_config(
        fake_discord,
        fake_ollama,
        tmp_path,
        chance=0.0,
        proactive_chance=1.0,
        proactive_cooldown=600.0,
    )
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            fake_ollama.reply = "Ooh, which games?"
            await fake_discord.say("anyone into games?", username="bob", user_id=77)  # not on
            await ambient(fake_discord, "enable", permissions=MANAGER)
            await fake_discord.say("nothing about that here", username="bob", user_id=77)
            await fake_discord.say("endgames are hard", username="bob", user_id=77)
            asked = await fake_discord.say("any good GAMES lately?", username="bob", user_id=77)
            await fake_discord.wait_bot_messages(1)
            await fake_discord.rest.wait_until(
                lambda: fake_discord.bot_messages()[0]["content"] == "Ooh, which games?"
            )
            [reply] = fake_discord.bot_messages()
            assert reply["message_reference"]["message_id"] == str(asked)
            [messages] = chats(fake_ollama)
            assert JUMP_IN_CONTEXT in messages[0]["content"]
            assert messages[-1] == {"role": "user", "content": "Bob: any good GAMES lately?"}

            # A mention is answered once, by the chat listener, without the jump-in context.
            fake_ollama.reply = "Sure."
            await fake_discord.say("games again?", mention_bot=True)
            await fake_discord.wait_bot_messages(2)
            await trio.sleep(4 * LULL)
            assert len(fake_discord.bot_messages()) == 2
            assert len(chats(fake_ollama)) == 2
            assert JUMP_IN_CONTEXT not in chats(fake_ollama)[-1][0]["content"]
