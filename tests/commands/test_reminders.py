"""/remind, /reminders, /cancel_reminder, /clear_reminders, /timezone and delivery, end to end:
the whole app and the fake Discord.

Real clock, as in tests/commands/test_notes.py: the store works in threads. Reminders that must
fire are due a few tenths of a second ahead; every other wait is for a request the fake
records. /remind has a per-user cooldown, so tests that use it twice use two users, and
reminders a test only needs to exist are written straight into the store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import trio

from tests.fakes.discord import CHANNEL_ID, GUILD_ID, USER_ID, FakeDiscord
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.commands.reminders import remind_from_text
from trio_companion.config import Config
from trio_companion.services.reminders import EXAMPLES
from trio_companion.storage import Reminder

DEADLINE = 30
EPHEMERAL = 1 << 6
BOB = USER_ID + 1
CAROL = USER_ID + 2
GONE_CHANNEL = 1_200_000_000_000_000_999
CAP = 3


@pytest.fixture
def config(fake_discord: FakeDiscord, tmp_path: Path) -> Config:
    base = fake_discord.config(tmp_path / "data")
    return msgspec.structs.replace(
        base,
        chat=msgspec.structs.replace(base.chat, personas_dir=str(tmp_path / "personas")),
        reminders=msgspec.structs.replace(base.reminders, max_per_user=CAP),
    )


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(DEADLINE):
            started: App = await nursery.start(app_module.run, config)
        yield started
        started.request_shutdown("test over")


async def run(fake: FakeDiscord, command: str, user_id: int = USER_ID, /, **options: Any) -> str:
    """Run ``/command`` and return its one, private answer."""
    types = {str: 3, int: 4}
    listed = [{"name": k, "type": types[type(v)], "value": v} for k, v in options.items()]
    interaction = await fake.interact(command, listed, user_id=user_id)
    await fake.wait_answered(interaction)
    assert not interaction.followups
    message = interaction.original
    assert message is not None
    assert message["flags"] == EPHEMERAL
    content: str = message["content"]
    return content


async def seed(app: App, what: str, due_at: float, *, user_id: int = USER_ID,
               channel_id: int = CHANNEL_ID) -> Reminder:  # fmt: skip
    reminder = await app.store.reminders.add(user_id, channel_id, GUILD_ID, what, due_at, cap=CAP)
    app.reminders.notify(reminder.due_at)
    return reminder


def shown(due_at: float, zone: str) -> str:
    """How the bot shows a time: "Fri 28 Nov at 17:00", with the year when not this year."""
    local = datetime.fromtimestamp(due_at, ZoneInfo(zone))
    year = "" if local.year == datetime.now(ZoneInfo(zone)).year else f" {local.year}"
    return f"{local:%a} {local.day} {local:%b}{year} at {local:%H:%M}"


# --- /remind -------------------------------------------------------------------------------


async def test_remind_stores_and_echoes_the_time(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        before = time.time()
        answer = await run(fake_discord, "remind", when_and_what="in 2 hours 5 minutes to call mom")
        (stored,) = await app.store.reminders.list_for_user(USER_ID)
    assert stored.what == "call mom"
    assert stored.channel_id == CHANNEL_ID
    assert stored.guild_id == GUILD_ID
    assert before + 7500 <= stored.due_at <= time.time() + 7500
    assert answer == (
        f"I'll remind you on {shown(stored.due_at, 'UTC')} (UTC) — in 2 h 5 min: call mom "
        f"(reminder #{stored.id})"
    )


async def test_remind_refuses_bad_input(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        unreadable = await run(fake_discord, "remind", when_and_what="whenever to call mom")
        too_long = await run(fake_discord, "remind", BOB, when_and_what="in 1h " + "x" * 300)
        past = await run(fake_discord, "remind", CAROL, when_and_what="on 2020-01-01 at 9:00 x")
        assert await app.store.reminders.count_pending(USER_ID) == 0
    assert unreadable == f"I couldn't find a time in that. {EXAMPLES}"
    assert too_long == "`when_and_what` is too long: 306 characters, the limit is 300."
    assert past == (
        "Wednesday 1 January 2020 at 09:00 UTC has already passed. Pick a time in the future, "
        'like "tomorrow at 9am".'
    )


async def test_remind_has_a_cooldown_and_a_cap(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await run(fake_discord, "remind", when_and_what="in 10m to stretch")
        again = await run(fake_discord, "remind", when_and_what="in 10m to stretch")
        assert await app.store.reminders.count_pending(USER_ID) == 1
        for index in range(CAP):
            await seed(app, f"seeded {index}", time.time() + 3600, user_id=BOB)
        full = await run(fake_discord, "remind", BOB, when_and_what="in 10m to stretch")
        assert await app.store.reminders.count_pending(BOB) == CAP
    assert again.startswith("Slow down: try `/remind` again in ")
    assert full == (
        f"You already have {CAP} reminders waiting, the most one user can have; cancel some "
        "with `/cancel_reminder` or `/clear_reminders` first."
    )


# --- delivery ------------------------------------------------------------------------------


async def test_delivered_in_the_channel_pinging_only_the_user(
    app: App, fake_discord: FakeDiscord
) -> None:
    with trio.fail_after(DEADLINE):
        reminder = await seed(app, "stretch @everyone", time.time() + 0.3)
        await fake_discord.wait_bot_messages(1)
        arrived = time.time()
        (message,) = fake_discord.bot_messages()
    assert message["content"] == f"⏰ <@{USER_ID}> reminder: stretch @everyone"
    (request,) = fake_discord.rest.requests_to(f"POST /channels/{CHANNEL_ID}/messages")
    assert request.json["allowed_mentions"] == {
        "parse": [],
        "users": [str(USER_ID)],
        "roles": [],
        "replied_user": False,
    }
    assert reminder.due_at <= arrived < reminder.due_at + 1.0


async def test_delivered_by_dm_when_the_channel_is_gone(
    app: App, fake_discord: FakeDiscord
) -> None:
    rest = fake_discord.rest
    with trio.fail_after(DEADLINE):
        reminder = await seed(app, "water plants", time.time() + 0.2, channel_id=GONE_CHANNEL)
        await rest.wait_until(lambda: bool(rest.channels.get(rest.dm_channels.get(USER_ID, 0))))
        (dm,) = rest.messages(rest.dm_channels[USER_ID])
        stored = await app.store.reminders.get(reminder.id)
    assert dm["content"] == f"⏰ <@{USER_ID}> reminder: water plants"
    assert [r.status for r in rest.requests_to(f"POST /channels/{GONE_CHANNEL}/messages")] == [404]
    assert stored is not None
    assert stored.delivered_at is not None
    assert stored.failure is None


# --- /reminders, /cancel_reminder, /clear_reminders ---------------------------------------


async def test_reminders_lists_own_pending_ones(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        empty = await run(fake_discord, "reminders")
        later = await seed(app, "later", time.time() + 7200)
        sooner = await seed(app, "sooner", time.time() + 3600)
        await seed(app, "not mine", time.time() + 60, user_id=BOB)
        listed = await run(fake_discord, "reminders")
    assert empty == "You have no reminders. Set one with `/remind`."
    assert listed.splitlines() == [
        "**Your reminders** (2, times in UTC):",
        f"`#{sooner.id}` {shown(sooner.due_at, 'UTC')} — sooner",
        f"`#{later.id}` {shown(later.due_at, 'UTC')} — later",
    ]


async def test_cancel_reminder(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        mine = await seed(app, "mine", time.time() + 3600)
        theirs = await seed(app, "theirs", time.time() + 3600, user_id=BOB)
        cancelled = await run(fake_discord, "cancel_reminder", id=mine.id)
        again = await run(fake_discord, "cancel_reminder", id=mine.id)
        other = await run(fake_discord, "cancel_reminder", id=theirs.id)
        assert await app.store.reminders.count_pending(BOB) == 1
    assert cancelled == f"Cancelled reminder `#{mine.id}`: mine"
    assert again == (
        f"You have no pending reminder `#{mine.id}`; `/reminders` lists yours with their numbers."
    )
    assert other == (
        f"You have no pending reminder `#{theirs.id}`; `/reminders` lists yours with their numbers."
    )


async def test_clear_reminders(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await seed(app, "a", time.time() + 3600)
        await seed(app, "b", time.time() + 3600)
        await seed(app, "bob's", time.time() + 3600, user_id=BOB)
        cleared = await run(fake_discord, "clear_reminders")
        nothing = await run(fake_discord, "clear_reminders")
        assert await app.store.reminders.count_pending(BOB) == 1
    assert cleared == "Cancelled 2 reminders."
    assert nothing == "You had no reminders to cancel."


# --- /timezone -----------------------------------------------------------------------------


async def test_timezone_show_set_and_use(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        default = await run(fake_discord, "timezone")
        bad = await run(fake_discord, "timezone", name="Mars/Olympus")
        chosen = await run(fake_discord, "timezone", name="  europe/PARIS ")
        current = await run(fake_discord, "timezone")
        reminded = await run(fake_discord, "remind", when_and_what="tomorrow at 9am to run")
        (stored,) = await app.store.reminders.list_for_user(USER_ID)
        listed = await run(fake_discord, "reminders")
    assert default.startswith(
        "Your time zone is `UTC` (the default; set yours with `/timezone name:`). It is "
    )
    assert bad == (
        "`Mars/Olympus` is not a time zone I know. Use an IANA name like `Europe/Paris` or "
        "`America/New_York`: start typing and pick one from the list."
    )
    assert chosen.startswith("Your time zone is now `Europe/Paris`. It is ")
    assert current.startswith("Your time zone is `Europe/Paris`. It is ")
    local = datetime.fromtimestamp(stored.due_at, ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (9, 0)
    assert reminded.startswith(f"I'll remind you on {shown(stored.due_at, 'Europe/Paris')} ")
    assert "(Europe/Paris) — in " in reminded
    assert listed.splitlines()[0] == "**Your reminders** (1, times in Europe/Paris):"


async def test_timezone_autocomplete(app: App, fake_discord: FakeDiscord) -> None:
    focused = [{"name": "name", "type": 3, "value": "paris", "focused": True}]
    with trio.fail_after(DEADLINE):
        interaction = await fake_discord.interact("timezone", focused, kind=4)
        await fake_discord.rest.wait_until(lambda: interaction.callback_type == 8)
    (request,) = [
        r
        for r in fake_discord.rest.requests_to("POST /interactions/*/*/callback")
        if r.path.startswith(f"/interactions/{interaction.id}/")
    ]
    assert request.json["data"]["choices"] == [{"name": "Europe/Paris", "value": "Europe/Paris"}]


# --- "remind me …" in chat ----------------------------------------------------------------


async def test_remind_from_text(app: App) -> None:
    with trio.fail_after(DEADLINE):
        chat = await remind_from_text(app, USER_ID, CHANNEL_ID, None, "how are you?")
        vague = await remind_from_text(app, USER_ID, CHANNEL_ID, None, "remind me someday")
        done = await remind_from_text(
            app, USER_ID, CHANNEL_ID, None, "Can you remind me in half an hour to stretch"
        )
        (stored,) = await app.store.reminders.list_for_user(USER_ID)
    assert chat is None
    assert vague == f"I couldn't find a time in that. {EXAMPLES}"
    assert stored.what == "stretch"
    assert stored.guild_id is None
    assert done == (
        f"I'll remind you on {shown(stored.due_at, 'UTC')} (UTC) — in 30 min: stretch "
        f"(reminder #{stored.id})"
    )
    assert abs(stored.due_at - (datetime.now(UTC).timestamp() + 1800)) < 5
