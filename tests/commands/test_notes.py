"""/note, /notes, /delnote and /clearnotes end to end: the whole app and the fake Discord.

Real clock, as in tests/commands/test_history.py: the store works in threads. Nothing sleeps;
every wait is for a request the fake records. /note has a per-user cooldown, so tests that save
several notes through it use several users, and notes a test only needs to exist are written
straight into the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from tests.fakes.discord import USER_ID, FakeDiscord, last_message
from tests.fakes.discord_rest import FakeInteraction
from trio_companion.app import App
from trio_companion.commands.notes import MAX_CATEGORY, MAX_CONTENT, MAX_NOTES_PER_USER
from trio_companion.storage import Note

DEADLINE = 30
EPHEMERAL = 1 << 6
BOB = USER_ID + 1
CAROL = USER_ID + 2
NOON = 1_795_867_200  # 2026-11-28 12:00:00 UTC


def said(interaction: FakeInteraction) -> str:
    """The answer's text, checking that it was private and one message."""
    message = last_message(interaction)
    assert message["flags"] == EPHEMERAL
    assert not interaction.followups
    content: str = message["content"]
    return content


async def run(fake: FakeDiscord, name: str, user_id: int = USER_ID, **options: Any) -> str:
    types = {str: 3, int: 4}
    listed = [{"name": k, "type": types[type(v)], "value": v} for k, v in options.items()]
    interaction = await fake.interact(name, listed, user_id=user_id)
    await fake.wait_answered(interaction)
    return said(interaction)


async def seed(app: App, entries: Sequence[tuple[str, str]], user_id: int = USER_ID) -> list[Note]:
    return [
        await app.store.notes.add(
            user_id, category, content, cap=MAX_NOTES_PER_USER, created_at=NOON
        )
        for category, content in entries
    ]


async def mine(app: App, user_id: int = USER_ID) -> list[tuple[str, str]]:
    notes = await app.store.notes.list(user_id, limit=MAX_NOTES_PER_USER)
    return [(note.category, note.content) for note in notes]


# --- /note ---------------------------------------------------------------------------------


async def test_note_saves_with_a_normalised_category(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        plain = await run(fake_discord, "note", content="  buy tea  ")
        filed = await run(fake_discord, "note", BOB, content="ship it", category="  My   WORK ")
        assert await mine(app) == [("general", "buy tea")]
        assert await mine(app, BOB) == [("my work", "ship it")]
    assert plain == "Saved note `#1` in `general`."
    assert filed == "Saved note `#2` in `my work`."


async def test_note_refuses_bad_input(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        too_long = await run(fake_discord, "note", content="x" * (MAX_CONTENT + 1))
        blank = await run(fake_discord, "note", BOB, content="   ")
        odd = await run(fake_discord, "note", CAROL, content="hi", category="a`b")
        assert await app.store.notes.count(USER_ID) == 0
        assert await app.store.notes.count(BOB) == 0
        assert await app.store.notes.count(CAROL) == 0
    assert too_long == "`content` is too long: 1001 characters, the limit is 1000."
    assert blank == "A note needs some text."
    assert odd == "A category may use letters, digits, spaces and # & ' + - . / _ only."


async def test_note_has_a_cooldown(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await run(fake_discord, "note", content="one")
        again = await run(fake_discord, "note", content="two")
        assert await mine(app) == [("general", "one")]
    assert again.startswith("Slow down: try `/note` again in ")


async def test_at_the_cap_note_is_refused_and_notes_fits_one_message(
    app: App, fake_discord: FakeDiscord
) -> None:
    category = "c" * MAX_CATEGORY
    longest = "word " * (MAX_CONTENT // 5)
    with trio.fail_after(DEADLINE):
        await seed(app, [(category, longest)] * MAX_NOTES_PER_USER)
        refused = await run(fake_discord, "note", content="one more")
        assert await app.store.notes.count(USER_ID) == MAX_NOTES_PER_USER
        listed = await run(fake_discord, "notes", category=category)
    assert refused == (
        "You already have 200 notes, the most one user can keep; delete some with `/delnote` "
        "or `/clearnotes` first."
    )
    assert len(listed) <= 2000
    lines = listed.splitlines()
    assert lines[0] == f"**Your notes in `{category}`** (200, newest first):"
    assert len(lines) == 12
    assert lines[1] == f"`#200` `{category}` <t:{NOON}:d> {longest[:99].rstrip()}…"
    assert lines[-1] == f"…and 190 more: `/notes category:{category} page:2`"


# --- /notes --------------------------------------------------------------------------------


async def test_notes_lists_own_notes_newest_first(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await seed(app, [("general", "first"), ("work", "second\nline"), ("general", "third")])
        await seed(app, [("general", "bob's secret")], user_id=BOB)
        everything = await run(fake_discord, "notes")
        work = await run(fake_discord, "notes", category="WORK")
    assert everything == (
        "**Your notes** (3, newest first):\n"
        f"`#3` `general` <t:{NOON}:d> third\n"
        f"`#2` `work` <t:{NOON}:d> second line\n"
        f"`#1` `general` <t:{NOON}:d> first"
    )
    assert (
        work == f"**Your notes in `work`** (1, newest first):\n`#2` `work` <t:{NOON}:d> second line"
    )


async def test_notes_pages(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await seed(app, [("general", f"n{i}") for i in range(1, 13)])
        first = await run(fake_discord, "notes")
        second = await run(fake_discord, "notes", page=2)
        beyond = await run(fake_discord, "notes", page=3)
        none = await run(fake_discord, "notes", BOB)
        none_here = await run(fake_discord, "notes", category="work")
    assert first.splitlines()[1].endswith(" n12")
    assert first.splitlines()[-1] == "…and 2 more: `/notes page:2`"
    assert second.splitlines()[1:] == [
        f"`#2` `general` <t:{NOON}:d> n2",
        f"`#1` `general` <t:{NOON}:d> n1",
    ]
    assert beyond == "There is no page 3: your notes fill 2 pages."
    assert none == "You have no notes. Save one with `/note`."
    assert none_here == "You have no notes in `work`. Save one with `/note`."


# --- /delnote ------------------------------------------------------------------------------


async def test_delnote_deletes_only_the_callers_note(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        (kept, gone) = await seed(app, [("general", "keep"), ("general", "drop")])
        stranger = await run(fake_discord, "delnote", BOB, id=kept.id)
        deleted = await run(fake_discord, "delnote", id=gone.id)
        twice = await run(fake_discord, "delnote", id=gone.id)
        assert await mine(app) == [("general", "keep")]
    assert stranger == "You have no note `#1`; `/notes` lists yours with their numbers."
    assert deleted == "Deleted note `#2`."
    assert twice == "You have no note `#2`; `/notes` lists yours with their numbers."


async def test_delnote_refuses_an_id_below_one(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        refused = await run(fake_discord, "delnote", id=0)
    assert refused == "`id` must be between 1 and 9007199254740992."


# --- /clearnotes ---------------------------------------------------------------------------


async def test_clearnotes_by_category_then_all(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await seed(app, [("general", "a"), ("work", "b"), ("work", "c")])
        await seed(app, [("work", "bob's")], user_id=BOB)
        work = await run(fake_discord, "clearnotes", category=" Work")
        assert await mine(app) == [("general", "a")]
        rest = await run(fake_discord, "clearnotes")
        nothing = await run(fake_discord, "clearnotes")
        nothing_here = await run(fake_discord, "clearnotes", category="work")
        bad = await run(fake_discord, "clearnotes", category="`")
        assert await mine(app) == []
        assert await mine(app, BOB) == [("work", "bob's")]
    assert work == "Deleted 2 notes in `work`."
    assert rest == "Deleted 1 note."
    assert nothing == "You had no notes to delete."
    assert nothing_here == "You had no notes in `work` to delete."
    assert bad == "A category may use letters, digits, spaces and # & ' + - . / _ only."
