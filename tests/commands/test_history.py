"""/clear_history, /export_chat and /import_chat end to end: the whole app and the fake Discord.

Real clock: the app's storage works in threads, and MockClock's autojump would treat a task
waiting for a thread as idle. Nothing here sleeps: every wait is for a request the fake records.
History is written straight into the store once the app is up; no model is needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import trio

from tests.fakes.discord import CHANNEL_ID, MANAGER, USER_ID, FakeDiscord, last_message
from tests.fakes.discord_rest import FakeInteraction, UploadedFile
from trio_companion.app import App
from trio_companion.services.chat.transcript import MAX_TURNS, render_export
from trio_companion.storage import Role, StoredTurn, Turn

DEADLINE = 30
EPHEMERAL = 1 << 6
NOON = 1_795_867_200.0  # 2026-11-28 12:00:00 UTC
DM_CHANNEL = 1_200_000_000_000_000_099
MIB = 1024 * 1024


def turn(
    content: str,
    *,
    at: float = NOON,
    author_id: int = USER_ID,
    name: str = "Ann",
    role: Role = "user",
    channel_id: int = CHANNEL_ID,
) -> Turn:
    return Turn(
        channel_id=channel_id,
        author_id=author_id,
        author_name=name,
        role=role,
        content=content,
        created_at=at,
    )


def conversation() -> list[Turn]:
    return [
        turn("what do you drink?"),
        turn("Tea, mostly.", at=NOON + 5, author_id=0, name="Mira", role="assistant"),
        turn("green or black?", at=NOON + 60, author_id=77, name="Bob"),
    ]


async def history(app: App, channel_id: int = CHANNEL_ID) -> list[StoredTurn]:
    return await app.store.history.recent(channel_id, 10 * MAX_TURNS)


def contents(turns: Sequence[Turn]) -> list[str]:
    return [t.content for t in turns]


async def run(
    fake: FakeDiscord, name: str, options: Sequence[dict[str, Any]] = (), **kwargs: Any
) -> FakeInteraction:
    interaction = await fake.interact(name, options, **kwargs)
    await fake.wait_answered(interaction)
    return interaction


def uploads(fake: FakeDiscord, interaction: FakeInteraction) -> dict[str, UploadedFile]:
    return {
        f.filename: f for r in fake.rest.requests if interaction.token in r.path for f in r.files
    }


async def import_file(
    fake: FakeDiscord,
    data: bytes,
    mode: str,
    *,
    filename: str = "chat.json",
    content_type: str | None = "application/json",
    declared_size: int | None = None,
    **kwargs: Any,
) -> FakeInteraction:
    attachment = fake.attach(filename, data, content_type)
    if declared_size is not None:
        attachment["size"] = declared_size
    kwargs.setdefault("permissions", MANAGER)
    return await run(
        fake,
        "import_chat",
        [
            {"name": "file", "type": 11, "value": attachment["id"]},
            {"name": "mode", "type": 3, "value": mode},
        ],
        resolved={"attachments": {attachment["id"]: attachment}},
        **kwargs,
    )


def cdn_requests(fake: FakeDiscord) -> int:
    return len(fake.rest.requests_to("GET /cdn/*"))


# --- /clear_history ------------------------------------------------------------------------


async def test_clear_history_needs_manage_server(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(conversation())
        await app.store.history.append(turn("elsewhere", channel_id=CHANNEL_ID + 1))
        before = await history(app)
        refused = await run(fake_discord, "clear_history")
        assert await history(app) == before
        app.sessions.touch(CHANNEL_ID)
        cleared = await run(fake_discord, "clear_history", permissions=MANAGER)
        assert await history(app) == []
        assert contents(await history(app, CHANNEL_ID + 1)) == ["elsewhere"]
    assert (
        last_message(refused)["content"] == "`/clear_history` needs the Manage Server permission."
    )
    assert last_message(refused)["flags"] == EPHEMERAL
    assert last_message(cleared)["content"] == "Cleared 3 messages of history in this channel."
    assert last_message(cleared)["flags"] == EPHEMERAL
    assert not app.sessions.is_open(CHANNEL_ID)  # the follow-up session ended too


async def test_anyone_may_clear_their_own_dm(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await app.store.history.append(turn("just us", channel_id=DM_CHANNEL))
        cleared = await run(fake_discord, "clear_history", guild_id=None, channel_id=DM_CHANNEL)
        assert await history(app, DM_CHANNEL) == []
    assert last_message(cleared)["content"] == "Cleared 1 message of history in this channel."


# --- /export_chat --------------------------------------------------------------------------


async def test_export_sends_json_and_markdown_privately(
    app: App, fake_discord: FakeDiscord
) -> None:
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(conversation())
        exported = await run(fake_discord, "export_chat")
        again = await run(fake_discord, "export_chat")
    message = last_message(exported)
    assert message["content"] == "Exported 3 messages of this channel's history."
    assert message["flags"] == EPHEMERAL
    json_name, md_name = f"chat-{CHANNEL_ID}.json", f"chat-{CHANNEL_ID}.md"
    assert [(a["filename"], a["content_type"]) for a in message["attachments"]] == [
        (json_name, "application/json"),
        (md_name, "text/markdown"),
    ]
    files = uploads(fake_discord, exported)
    document = json.loads(files[json_name].data)
    assert {k: v for k, v in document.items() if k not in ("turns", "exported_at")} == {
        "format": "trio_companion.chat",
        "version": 1,
        "channel_id": str(CHANNEL_ID),
        "persona": "Mira",
    }
    assert document["turns"][:2] == [
        {
            "author_id": str(USER_ID),
            "author_name": "Ann",
            "role": "user",
            "content": "what do you drink?",
            "created_at": "2026-11-28T12:00:00Z",
        },
        {
            "author_id": "0",
            "author_name": "Mira",
            "role": "assistant",
            "content": "Tea, mostly.",
            "created_at": "2026-11-28T12:00:05Z",
        },
    ]
    markdown = files[md_name].data.decode()
    assert "**Ann** · 2026-11-28 12:00 UTC\n\nwhat do you drink?\n" in markdown
    assert "**Mira** · 2026-11-28 12:00 UTC\n\nTea, mostly.\n" in markdown
    assert "**Bob** · 2026-11-28 12:01 UTC\n\ngreen or black?\n" in markdown
    # The cooldown: 10 s per user.
    assert last_message(again)["content"].startswith("Slow down: try `/export_chat` again in ")
    assert last_message(again)["flags"] == EPHEMERAL
    assert uploads(fake_discord, again) == {}


async def test_export_of_an_empty_history(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        exported = await run(fake_discord, "export_chat")
    assert last_message(exported)["content"] == (
        "There is no stored conversation in this channel to export."
    )
    assert last_message(exported)["flags"] == EPHEMERAL
    assert uploads(fake_discord, exported) == {}


async def test_export_says_when_it_is_capped(app: App, fake_discord: FakeDiscord) -> None:
    turns = [turn(f"m{i}", at=NOON + i) for i in range(MAX_TURNS + 2)]
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(turns)
        exported = await run(fake_discord, "export_chat")
    assert last_message(exported)["content"] == (
        f"Exported the newest {MAX_TURNS} of {MAX_TURNS + 2} messages of this channel's history "
        f"(an export holds at most {MAX_TURNS} messages and 2 MiB)."
    )
    document = json.loads(uploads(fake_discord, exported)[f"chat-{CHANNEL_ID}.json"].data)
    assert [t["content"] for t in document["turns"]] == contents(turns[2:])


# --- /import_chat --------------------------------------------------------------------------


def export_of(turns: Sequence[Turn], channel_id: int = CHANNEL_ID) -> bytes:
    return render_export(channel_id, turns, persona="Mira", exported_at=NOON + 3600).json


async def test_import_merge_adds_what_is_missing(app: App, fake_discord: FakeDiscord) -> None:
    old = conversation()
    file_turns = [*old[1:], turn("and you?", at=NOON + 90), turn("Both!", at=NOON + 95)]
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(old)
        merged = await import_file(fake_discord, export_of(file_turns, channel_id=5), "merge")
        after = await history(app)
        again = await import_file(fake_discord, export_of(file_turns), "merge")
        assert await history(app) == after
    assert last_message(merged)["content"] == "Imported 2 messages (2 were already there)."
    assert last_message(merged)["flags"] == EPHEMERAL
    assert contents(after) == [*contents(old), "and you?", "Both!"]
    assert {t.channel_id for t in after} == {CHANNEL_ID}
    assert last_message(again)["content"] == "Nothing to import: all 4 messages were already there."


async def test_import_replace_and_the_round_trip(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(conversation())
        first = await run(fake_discord, "export_chat")
        exported = uploads(fake_discord, first)[f"chat-{CHANNEL_ID}.json"].data
        await app.store.history.append_many([turn("said later", at=NOON + 500)] * 2)
        replaced = await import_file(fake_discord, exported, "replace")
        restored = await history(app)
        second = await run(fake_discord, "export_chat", user_id=USER_ID + 1)  # no cooldown
    assert last_message(replaced)["content"] == (
        "Replaced this channel's history: imported 3 messages, removed 5 messages."
    )
    assert contents(restored) == contents(conversation())
    again = uploads(fake_discord, second)[f"chat-{CHANNEL_ID}.json"].data
    assert json.loads(again)["turns"] == json.loads(exported)["turns"]


def _bad_role() -> bytes:
    document = json.loads(export_of([turn("a"), turn("b"), turn("c")]))
    document["turns"][2]["role"] = "narrator"
    return json.dumps(document, indent=2).encode()


@pytest.mark.parametrize(
    ("data", "kwargs", "message", "downloads"),
    [
        pytest.param(
            b"{}",
            {"declared_size": 3 * MIB},
            "That file is too large: 3 MiB; the limit is 2 MiB.",
            0,
            id="declared too large",
        ),
        pytest.param(
            b" " * (3 * MIB),
            {"declared_size": 100},  # Discord's word against the bytes: the bytes win
            "That file is too large: 3 MiB; the limit is 2 MiB.",
            1,
            id="too large on the wire",
        ),
        pytest.param(
            b"hello",
            {"filename": "notes.txt", "content_type": "text/plain"},
            "That is not a JSON file: `notes.txt` (text/plain). Choose the `.json` file that "
            "`/export_chat` made.",
            0,
            id="wrong file name",
        ),
        pytest.param(
            b"<html></html>",
            {"filename": "chat.json", "content_type": "text/html; charset=utf-8"},
            "That is not a JSON file: `chat.json` (text/html). Choose the `.json` file that "
            "`/export_chat` made.",
            0,
            id="wrong content type",
        ),
        pytest.param(
            b'{\n  "format": "trio_companion.chat",\n    ]\n}',
            {},
            "That file is not valid JSON (line 3, column 5).",
            1,
            id="malformed JSON",
        ),
        pytest.param(
            _bad_role(),
            {},
            "That file is not a chat export: turns[2].role: expected one of user, assistant, "
            "system.",
            1,
            id="wrong schema",
        ),
        pytest.param(
            export_of([]),
            {},
            "That chat export has no messages; nothing was changed.",
            1,
            id="no messages",
        ),
        pytest.param(
            export_of([turn("fine")]),
            {"permissions": 0},
            "`/import_chat` needs the Manage Server permission.",
            0,
            id="not a manager",
        ),
        pytest.param(
            export_of([turn("fine")]),
            {"guild_id": None},
            "`/import_chat` works in servers only.",
            0,
            id="in a DM",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["merge", "replace"])
async def test_a_refused_import_changes_nothing(
    app: App,
    fake_discord: FakeDiscord,
    data: bytes,
    kwargs: dict[str, Any],
    message: str,
    downloads: int,
    mode: str,
) -> None:
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(conversation())
        before = await history(app)
        refused = await import_file(fake_discord, data, mode, **kwargs)
        assert await history(app) == before
    assert last_message(refused)["content"] == message
    assert last_message(refused)["flags"] == EPHEMERAL
    assert cdn_requests(fake_discord) == downloads


async def test_a_failed_download_changes_nothing(app: App, fake_discord: FakeDiscord) -> None:
    fake_discord.rest.script_status("GET /cdn/*", 404)
    with trio.fail_after(DEADLINE):
        await app.store.history.append_many(conversation())
        before = await history(app)
        refused = await import_file(fake_discord, export_of([turn("new")]), "replace")
        assert await history(app) == before
    assert last_message(refused)["content"] == (
        "Could not download that file (HTTP 404); try uploading it again."
    )
