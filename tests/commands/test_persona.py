"""``/persona set|list|show`` end to end: the whole app against the fake Discord.

Real clock, as in tests/test_app.py: the app's storage and the persona loader work in threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from tests.fakes.discord import GUILD_ID, MANAGER, MEMBER, USER_ID, FakeDiscord
from tests.fakes.discord_rest import FakeInteraction
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.config import Config

DEADLINE = 20
EPHEMERAL = 1 << 6
LONG_PROMPT = "You are Aria. " + "You love games and talk about them all day long.\n" * 40

ARIA = f"""\
name = "Aria"
description = "A cheerful gamer friend"
greeting = "Aria here! Who's ready to play?"
interests = ["games", "speedruns"]
tts_voice = "af_bella"
style = "Short and upbeat."
system_prompt = '''{LONG_PROMPT}'''

[[examples]]
user = "hi"
assistant = "hey!"
"""

SAGE = """\
+++
name = "Sage"
description = "Calm and bookish"
+++
You are Sage.
"""


@pytest.fixture
def personas_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "aria.toml").write_text(ARIA, encoding="utf-8")
    (folder / "sage.md").write_text(SAGE, encoding="utf-8")
    return folder


@pytest.fixture
def config(fake_discord: FakeDiscord, tmp_path: Path, personas_dir: Path) -> Config:
    base = fake_discord.config(tmp_path / "data")
    chat = msgspec.structs.replace(base.chat, personas_dir=str(personas_dir))
    return msgspec.structs.replace(base, chat=chat)


@asynccontextmanager
async def running_app(config: Config) -> AsyncIterator[App]:
    async with trio.open_nursery() as nursery:
        app: App = await nursery.start(_run, config)
        yield app
        app.request_shutdown("test over")


async def _run(config: Config, *, task_status: trio.TaskStatus[App]) -> None:
    await app_module.run(config, task_status=task_status)


def subcommand(sub: str, /, **options: Any) -> list[dict[str, Any]]:
    listed = [{"name": key, "type": 3, "value": value} for key, value in options.items()]
    return [{"name": sub, "type": 1, "options": listed}]


async def persona(
    fake: FakeDiscord,
    sub: str,
    /,
    *,
    permissions: int = MEMBER,
    guild_id: int | None = GUILD_ID,
    **options: Any,
) -> FakeInteraction:
    """Run ``/persona <sub> [options]`` as a user and wait for the visible answer."""
    interaction = await fake.interact(
        "persona", subcommand(sub, **options), permissions=permissions, guild_id=guild_id
    )
    await fake.wait_answered(interaction)
    return interaction


def text(interaction: FakeInteraction) -> str:
    messages: Sequence[dict[str, Any]] = [
        *([interaction.original] if interaction.original else []),
        *interaction.followups.values(),
    ]
    return "\n".join(m["content"] for m in messages)


def active_line(listed: str) -> str:
    (line,) = [line for line in listed.splitlines() if "active here" in line]
    return line


def is_ephemeral(interaction: FakeInteraction) -> bool:
    assert interaction.original is not None
    return bool(interaction.original["flags"] & EPHEMERAL)


async def test_the_persona_group_is_synced(config: Config, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            (group,) = [c for c in fake_discord.rest.global_commands if c["name"] == "persona"]
    subcommands = {o["name"]: o for o in group["options"]}
    assert set(subcommands) == {"set", "list", "show"}
    (name,) = subcommands["set"]["options"]
    assert name["autocomplete"] is True
    assert name["required"] is True
    assert subcommands["show"]["options"][0]["required"] is False


async def test_set_then_list_and_show(config: Config, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config) as app:
            before = text(await persona(fake_discord, "list"))
            assert active_line(before).startswith("• **Mira** (`default`) — A friendly")

            answer = await persona(fake_discord, "set", permissions=MANAGER, name="aria")
            assert text(answer) == (
                "This server's persona is now **Aria** (`aria`).\nAria here! Who's ready to play?"
            )
            assert not is_ephemeral(answer)
            assert await app.store.meta.get(f"guild:{GUILD_ID}:persona") == "aria"

            listed = text(await persona(fake_discord, "list"))
            assert "• **Aria** (`aria`) — A cheerful gamer friend ✅ *active here*" in listed
            assert "• **Sage** (`sage`) — Calm and bookish\n" in listed
            assert listed.count("active here") == 1
            assert "Server managers choose with `/persona set`." in listed

            shown = text(await persona(fake_discord, "show"))
            assert shown.startswith("**Aria** (`aria`) ✅ *active here*\nA cheerful gamer friend\n")
            assert "**Style:** Short and upbeat." in shown
            assert "**Voice:** af_bella" in shown
            assert "**Interests:** games, speedruns" in shown
            assert "**Example exchanges:** 1" in shown
            # The long prompt is cut at a line break and says so.
            assert f" of {len(LONG_PROMPT.strip())} characters):" in shown
            assert "> You are Aria." in shown
            assert shown.endswith("…")
            assert len(shown) < 2000

            # A DM has no guild choice: the default is active there.
            dm = text(await persona(fake_discord, "list", guild_id=None))
            assert active_line(dm).startswith("• **Mira** (`default`)")
            assert "/persona set" not in dm


async def test_show_a_named_persona(config: Config, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            shown = text(await persona(fake_discord, "show", name="Sage"))
    assert shown.startswith("**Sage** (`sage`)\nCalm and bookish\n")
    assert "active here" not in shown
    assert "**Voice:** the espeak engine's default" in shown
    assert shown.endswith("**System prompt:**\n> You are Sage.")


async def test_the_choice_survives_a_restart(config: Config, fake_discord: FakeDiscord) -> None:
    fake_discord.gateway.max_concurrency = 2  # the second run identifies within 5 s
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            await persona(fake_discord, "set", permissions=MANAGER, name="sage")
        async with running_app(config):
            shown = text(await persona(fake_discord, "show"))
    assert shown.startswith("**Sage** (`sage`) ✅ *active here*")


async def test_set_needs_manage_server(config: Config, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config) as app:
            refused = await persona(fake_discord, "set", name="aria")
            assert is_ephemeral(refused)
            assert text(refused) == "`/persona set` needs the Manage Server permission."
            assert await app.store.meta.get(f"guild:{GUILD_ID}:persona") is None


async def test_configured_bot_admins_may_set(
    fake_discord: FakeDiscord, tmp_path: Path, personas_dir: Path
) -> None:
    base = fake_discord.config(tmp_path / "data", admin_user_ids=[USER_ID])
    config = msgspec.structs.replace(
        base, chat=msgspec.structs.replace(base.chat, personas_dir=str(personas_dir))
    )
    with trio.fail_after(DEADLINE):
        async with running_app(config) as app:
            answer = await persona(fake_discord, "set", name="sage")
            assert text(answer).startswith("This server's persona is now **Sage**")
            assert await app.store.meta.get(f"guild:{GUILD_ID}:persona") == "sage"


async def test_set_works_in_servers_only(config: Config, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            refused = await persona(
                fake_discord, "set", permissions=MANAGER, guild_id=None, name="aria"
            )
    assert is_ephemeral(refused)
    assert text(refused) == "`/persona set` works in servers only."


@pytest.mark.parametrize("command", ["set", "show"])
async def test_unknown_persona_lists_close_matches(
    config: Config, fake_discord: FakeDiscord, command: str
) -> None:
    with trio.fail_after(DEADLINE):
        async with running_app(config) as app:
            answer = await persona(fake_discord, command, permissions=MANAGER, name="aira")
            assert await app.store.meta.get(f"guild:{GUILD_ID}:persona") is None
    assert is_ephemeral(answer)
    assert text(answer) == (
        "There is no persona called `aira`. Did you mean `default` or `aria`? "
        "`/persona list` shows them all."
    )


async def test_name_autocomplete(config: Config, fake_discord: FakeDiscord) -> None:
    focused = [{"name": "name", "type": 3, "value": "a", "focused": True}]
    with trio.fail_after(DEADLINE):
        async with running_app(config):
            interaction = await fake_discord.interact(
                "persona", [{"name": "set", "type": 1, "options": focused}], kind=4
            )
            await fake_discord.rest.wait_until(lambda: interaction.callback_type == 8)
    (request,) = [
        r
        for r in fake_discord.rest.requests_to("POST /interactions/*/*/callback")
        if r.path.startswith(f"/interactions/{interaction.id}/")
    ]
    # Those starting with "a" first, then those containing it (by name: Mira, Sage).
    assert request.json["data"]["choices"] == [
        {"name": "aria", "value": "aria"},
        {"name": "default", "value": "default"},
        {"name": "sage", "value": "sage"},
    ]
