"""/my_profile, /relationship, /remember, /forget_me and the profile listener, end to end.

Real clock, as in tests/commands/test_notes.py: the store works in threads. Profile data a test
only needs to exist is written straight into the store.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from tests.fakes.discord import MANAGER, USER_ID, FakeDiscord
from tests.fakes.discord_rest import FakeInteraction
from tests.storage.helpers import make_turn
from trio_companion.app import App
from trio_companion.commands.profiles import MAX_INSTRUCTION, profile_context
from trio_companion.storage import Store

DEADLINE = 30
EPHEMERAL = 1 << 6
BOB = USER_ID + 1
NOON = 1_795_867_200  # 2026-11-28 12:00:00 UTC


def said(interaction: FakeInteraction) -> str:
    message = (
        list(interaction.followups.values())[-1] if interaction.followups else interaction.original
    )
    assert message is not None
    assert message["flags"] == EPHEMERAL
    content: str = message["content"]
    return content


async def run(
    fake: FakeDiscord,
    name: str,
    user_id: int = USER_ID,
    *,
    permissions: int | None = None,
    target: int | None = None,
    **options: Any,
) -> str:
    listed = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    resolved: dict[str, Any] = {}
    if target is not None:
        listed.append({"name": "user", "type": 6, "value": str(target)})
        resolved = {"users": {str(target): {"id": str(target), "username": "bob"}}}
    extra: dict[str, Any] = {} if permissions is None else {"permissions": permissions}
    interaction = await fake.interact(name, listed, user_id=user_id, resolved=resolved, **extra)
    await fake.wait_answered(interaction)
    return said(interaction)


async def eventually(store: Store, check: Callable[[], Awaitable[bool]]) -> None:
    """Return once ``await check()`` holds, re-checking after each committed write (the
    background work under test writes to the store; no polling, no sleeps)."""
    seen = store.statistics().writes_done
    while not await check():
        await store.wait_writes(seen + 1)
        seen = store.statistics().writes_done


async def _has_affection(app: App, user_id: int) -> bool:
    return await app.store.profiles.affection(user_id) is not None


async def seed_everything(app: App, user_id: int) -> None:
    store = app.store
    await store.profiles.add_facts(
        user_id,
        [("interest", "chess"), ("fact", "has a cat")],
        source="conversation",
        cap=5,
        created_at=NOON,
    )
    await store.profiles.update_affection(user_id, lambda _: 35.0)
    await store.notes.add(user_id, "general", "a note", cap=10)
    await store.reminders.add(user_id, 1, None, "stretch", time.time() + 3600, cap=10)
    await store.history.append(make_turn(author_id=user_id))
    await store.meta.set(f"user:{user_id}:timezone", "Europe/Paris")


async def test_my_profile_and_relationship(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        empty = await run(fake_discord, "my_profile", BOB)
        stranger = await run(fake_discord, "relationship", BOB)
        await seed_everything(app, USER_ID)
        profile = await run(fake_discord, "my_profile")
        close = await run(fake_discord, "relationship")
    assert empty == "I have nothing stored about you yet."
    assert stranger == "**Relationship:** stranger — we haven't talked yet."
    assert profile == (
        "**What I remember about you** (2 entries, newest first):\n"
        "__Facts__\n"
        f"<t:{NOON}:d> has a cat (conversation)\n"
        "__Interests__\n"
        f"<t:{NOON}:d> chess (conversation)\n"
        "**Relationship:** friend (score 35.0 of 100, 1 messages)\n"
        "`/forget_me` deletes all of it."
    )
    assert close == "**Relationship:** friend (score 35.0 of 100, 1 messages)"


async def test_remember_about_yourself(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        saved = await run(fake_discord, "remember", instruction="  call me   captain ")
        too_long = await run(fake_discord, "remember", BOB, instruction="x" * (MAX_INSTRUCTION + 1))
        facts = await app.store.profiles.list_facts(USER_ID, limit=10)
        context = await profile_context(app, USER_ID)
        assert await app.store.profiles.count(BOB) == 0
    assert saved == "Okay, I'll keep that in mind about you."
    assert too_long == "`instruction` is too long: 301 characters, the limit is 300."
    assert [(f.kind, f.text, f.source) for f in facts] == [
        ("instruction", "call me captain", "remember")
    ]
    assert "<<user instruction>> call me captain <</user instruction>>" in context
    assert "not system rules" in context


async def test_remember_about_someone_else_needs_manage_server(
    app: App, fake_discord: FakeDiscord
) -> None:
    with trio.fail_after(DEADLINE):
        refused = await run(fake_discord, "remember", target=BOB, instruction="call him sir")
        assert await app.store.profiles.count(BOB) == 0
        allowed = await run(
            fake_discord,
            "remember",
            BOB + 1,
            permissions=MANAGER,
            target=BOB,
            instruction="call him sir",
        )
        facts = await app.store.profiles.list_facts(BOB, limit=10)
    assert refused.startswith("Only members with the Manage Server permission")
    assert allowed == f"Okay, I'll keep that in mind about <@{BOB}>."
    assert [(f.kind, f.text) for f in facts] == [("instruction", "call him sir")]


async def test_forget_me_needs_the_exact_phrase_then_deletes_only_the_callers_data(
    app: App, fake_discord: FakeDiscord
) -> None:
    store = app.store
    with trio.fail_after(DEADLINE):
        for user in (USER_ID, BOB):
            await seed_everything(app, user)
        wrong = await run(fake_discord, "forget_me", confirm="yes")
        assert await store.profiles.count(USER_ID) == 2
        assert await store.notes.count(USER_ID) == 1
        done = await run(fake_discord, "forget_me", BOB, confirm="delete everything")
        for user, left in ((BOB, 0), (USER_ID, 1)):
            assert await store.profiles.count(user) == 2 * left
            assert (await store.profiles.affection(user) is not None) == bool(left)
            assert await store.notes.count(user) == left
            assert await store.reminders.count_pending(user) == left
            assert (await store.meta.get(f"user:{user}:timezone") is not None) == bool(left)
        assert [t.author_id for t in await store.history.recent(1, 10)] == [USER_ID]
    assert wrong.startswith("Nothing was deleted.")
    assert done == (
        "Done: I deleted everything I had stored about you (2 profile entries, 1 relationship "
        "score, 1 notes, 1 reminders, 1 messages from the chat history, 1 settings)."
    )


async def test_messages_feed_the_learner_and_affection(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await fake_discord.say("thanks, you are great")
        await fake_discord.say("a bot says hi", user_id=BOB, bot=True)
        await fake_discord.say("secret #ignore", user_id=BOB)
        await eventually(app.store, lambda: _has_affection(app, USER_ID))
        await fake_discord.say("hello", user_id=BOB + 1)  # dispatched after the two of Bob
        await eventually(app.store, lambda: _has_affection(app, BOB + 1))
        assert await app.store.profiles.affection(BOB) is None
        affection = await app.store.profiles.affection(USER_ID)
    assert affection is not None
    assert affection.score > 1.0
    stats = app.profiles.statistics()
    assert (stats.buffered_users, stats.buffered_messages) == (2, 2)
