"""/rag_reload and /docs end to end: the whole app, the fake Discord and a documents folder.

Real clock, as in tests/commands/test_notes.py: the store and the folder scan work in threads.
Nothing sleeps; every wait is for a request the fake records. Embeddings are off here (words
only); tests/services/rag covers them.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import trio

from tests.fakes.discord import MANAGER, MEMBER, USER_ID, FakeDiscord
from tests.services.rag.test_index import CORPUS
from trio_companion import app as app_module
from trio_companion.app import App
from trio_companion.commands.rag import QUERY_LIMIT, RAG_OFF
from trio_companion.config import Config
from trio_companion.services.rag import ReindexReport

DEADLINE: Final = 30
EPHEMERAL: Final = 1 << 6
BOB: Final = USER_ID + 1


def make_config(fake_discord: FakeDiscord, tmp_path: Path, *, rag: bool) -> Config:
    base = fake_discord.config(tmp_path / "data")
    documents = tmp_path / "documents"
    if not documents.exists():
        shutil.copytree(CORPUS, documents)
    return msgspec.structs.replace(
        base,
        chat=msgspec.structs.replace(base.chat, personas_dir=str(tmp_path / "personas")),
        memory=msgspec.structs.replace(
            base.memory, rag_enabled=rag, documents_dir=str(documents), embedding_model=""
        ),
    )


async def start(config: Config, nursery: trio.Nursery) -> App:
    with trio.fail_after(DEADLINE):
        started: App = await nursery.start(app_module.run, config)
    return started


@pytest.fixture
async def app(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[App]:
    async with trio.open_nursery() as nursery:
        started = await start(make_config(fake_discord, tmp_path, rag=True), nursery)
        yield started
        started.request_shutdown("test over")


async def run(
    fake: FakeDiscord,
    name: str,
    user_id: int = USER_ID,
    permissions: int = MEMBER,
    **options: Any,
) -> str:
    """Run ``/name``; return the answer's text, checking that it was private."""
    listed = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    interaction = await fake.interact(name, listed, user_id=user_id, permissions=permissions)
    await fake.wait_answered(interaction)
    if interaction.followups:
        message = list(interaction.followups.values())[-1]
    else:
        assert interaction.original is not None
        message = interaction.original
    assert message["flags"] == EPHEMERAL
    content: str = message["content"]
    return content


async def test_the_folder_is_indexed_at_start(app: App) -> None:
    assert app.rag is not None
    assert app.rag.statistics().last_report == ReindexReport(added=12)


async def test_rag_reload_needs_manage_server_and_indexes_only_changes(
    app: App, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    (tmp_path / "documents" / "bestiary.md").write_text("# Bestiary\n\nThe marsh troll regrows.")
    with trio.fail_after(DEADLINE):
        refused = await run(fake_discord, "rag_reload")
        assert app.rag is not None
        assert app.rag.statistics().last_report == ReindexReport(added=12)
        done = await run(fake_discord, "rag_reload", permissions=MANAGER)
        again = await run(fake_discord, "rag_reload", permissions=MANAGER)
        found = await run(fake_discord, "docs", query="marsh troll")
    assert refused == "`/rag_reload` needs the Manage Server permission."
    assert done == "Documents re-scanned: 1 added, 0 updated, 0 removed, 12 unchanged."
    assert again.startswith("Slow down: try `/rag_reload` again in ")
    assert app.rag.statistics().documents_indexed == 13  # 12 at start, then only the new one
    assert found.splitlines()[1] == "1. `bestiary.md` — # Bestiary The marsh troll regrows."


async def test_docs_lists_the_passages_with_their_sources(
    app: App, fake_discord: FakeDiscord
) -> None:
    with trio.fail_after(DEADLINE):
        found = await run(fake_discord, "docs", query="auction house fee")
        again = await run(fake_discord, "docs", query="auction")
        nothing = await run(fake_discord, "docs", BOB, query='zeppelin "NEAR* -x')
    lines = found.splitlines()
    assert lines[0] == "**Passages for “auction house fee”:**"
    assert lines[1].startswith("1. `currency.md` — # Currency and trading Emberfall uses three")
    assert 2 <= len(lines) <= 4  # rag_top_k = 3
    assert len(found) <= 2000
    assert again.startswith("Slow down: try `/docs` again in ")
    assert nothing == 'No document passage matches “zeppelin "NEAR* -x”.'


async def test_docs_refuses_blank_and_overlong_queries(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        blank = await run(fake_discord, "docs", query="   ")
        long = await run(fake_discord, "docs", BOB, query="x" * (QUERY_LIMIT + 1))
    assert blank == "Tell me what to look for."
    assert long == "`query` is too long: 201 characters, the limit is 200."


async def test_with_rag_off_both_commands_say_so(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        app = await start(make_config(fake_discord, tmp_path, rag=False), nursery)
        with trio.fail_after(DEADLINE):
            reload = await run(fake_discord, "rag_reload", permissions=MANAGER)
            docs = await run(fake_discord, "docs", query="auction")
        app.request_shutdown("test over")
    assert app.rag is None
    assert reload == docs == RAG_OFF
