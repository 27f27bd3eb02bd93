from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, query_fresh
from trio_companion.storage import Note, NoteLimitReached, open_store

if TYPE_CHECKING:
    from pathlib import Path

    from trio_companion.storage import Store

ANN = 1_200_000_000_000_000_003
BOB = 1_200_000_000_000_000_004
# Above 2**63: stored negative, must come back unchanged.
BIG = (1 << 64) - 5
CAP = 5


def contents(notes: list[Note]) -> list[str]:
    return [note.content for note in notes]


async def seed(store: Store) -> None:
    for user, category, content in [
        (ANN, "general", "one"),
        (ANN, "work", "two"),
        (BOB, "general", "bob's"),
        (ANN, "general", "three"),
        (ANN, "work", "four"),
    ]:
        await store.notes.add(user, category, content, cap=CAP)


async def test_add_returns_the_stored_note(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            first = await store.notes.add(BIG, "general", "hi ✓", cap=CAP, created_at=12.5)
            second = await store.notes.add(BIG, "general", "again", cap=CAP)
            listed = await store.notes.list(BIG, limit=10)
    assert first == Note(id=1, user_id=BIG, category="general", content="hi ✓", created_at=12.5)
    assert second.id == 2
    assert second.created_at > 1_700_000_000
    assert listed == [second, first]


async def test_list_is_newest_first_per_user_and_category(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await seed(store)
            notes = store.notes
            assert contents(await notes.list(ANN, limit=10)) == ["four", "three", "two", "one"]
            assert contents(await notes.list(ANN, "work", limit=10)) == ["four", "two"]
            assert contents(await notes.list(ANN, "nothing", limit=10)) == []
            assert contents(await notes.list(BOB, limit=10)) == ["bob's"]
            assert contents(await notes.list(ANN, limit=2, offset=1)) == ["three", "two"]
            assert contents(await notes.list(ANN, "general", limit=1, offset=1)) == ["one"]
            assert await notes.count(ANN) == 4
            assert await notes.count(ANN, "work") == 2
            assert await notes.count(BOB, "work") == 0
            with pytest.raises(ValueError, match="0 or more"):
                await notes.list(ANN, limit=-1)


async def test_delete_only_removes_the_owners_note(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await seed(store)
            (bobs,) = await store.notes.list(BOB, limit=10)
            assert await store.notes.delete(ANN, bobs.id) is False
            assert await store.notes.list(BOB, limit=10) == [bobs]
            assert await store.notes.delete(BOB, bobs.id) is True
            assert await store.notes.delete(BOB, bobs.id) is False
            assert await store.notes.delete(ANN, 10**6) is False
            assert await store.notes.delete(ANN, 1 << 63) is False  # beyond SQLite's INTEGER
            assert await store.notes.count(BOB) == 0
            assert await store.notes.count(ANN) == 4


async def test_clear_by_category_then_all(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await seed(store)
            assert await store.notes.clear(ANN, "work") == 2
            assert contents(await store.notes.list(ANN, limit=10)) == ["three", "one"]
            assert await store.notes.clear(ANN) == 2
            assert await store.notes.clear(ANN) == 0
            assert await store.notes.delete_all_for_user(BOB) == 1
            rows = await trio.to_thread.run_sync(
                query_fresh, store.path, "SELECT count(*) FROM notes"
            )
    assert rows == [(0,)]


async def test_ids_are_not_reused_after_a_clear(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await seed(store)
            await store.notes.clear(ANN)
            await store.notes.delete_all_for_user(BOB)
            again = await store.notes.add(ANN, "general", "new", cap=CAP)
    assert again.id == 6


async def test_user_ids_are_stored_signed(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.notes.add(BIG, "general", "x", cap=CAP)
            rows = await trio.to_thread.run_sync(
                query_fresh, store.path, "SELECT user_id FROM notes"
            )
            with pytest.raises(ValueError, match="2\\*\\*64-1"):
                await store.notes.add(1 << 64, "general", "x", cap=CAP)
    assert rows == [(BIG - (1 << 64),)]


async def test_at_the_cap_adding_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            for n in range(CAP):
                await store.notes.add(ANN, "general", f"note {n}", cap=CAP)
            with pytest.raises(NoteLimitReached) as caught:
                await store.notes.add(ANN, "other", "one too many", cap=CAP)
            assert await store.notes.count(ANN) == CAP
            # The cap is per user.
            await store.notes.add(BOB, "general", "fine", cap=CAP)
            # Room again after a delete.
            await store.notes.delete(ANN, 1)
            await store.notes.add(ANN, "general", "fits again", cap=CAP)
    assert caught.value.cap == CAP
    assert caught.value.user_id == ANN
    assert str(caught.value) == (
        "You already have 5 notes, the most one user can keep; delete some with `/delnote` or "
        "`/clearnotes` first."
    )


async def test_concurrent_adds_at_the_cap_edge_never_pass_it(tmp_path: Path) -> None:
    cap = 30
    refused = 0

    async def add(store: Store, n: int) -> None:
        nonlocal refused
        try:
            await store.notes.add(ANN, "general", f"racer {n}", cap=cap)
        except NoteLimitReached:
            refused += 1

    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            for n in range(cap - 3):
                await store.notes.add(ANN, "general", f"before {n}", cap=cap)
            async with trio.open_nursery() as nursery:
                for n in range(20):
                    nursery.start_soon(add, store, n)
            stored = await store.notes.count(ANN)
            rows = await trio.to_thread.run_sync(
                query_fresh, store.path, "SELECT count(*) FROM notes"
            )
    assert stored == cap
    assert rows == [(cap,)]
    assert refused == 17
