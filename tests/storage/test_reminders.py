from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, query_fresh
from trio_companion.storage import Reminder, ReminderLimitReached, open_store

if TYPE_CHECKING:
    from pathlib import Path

    from trio_companion.storage import Store

BIG = (1 << 64) - 1  # the largest snowflake: stored negative, read back unsigned
T0 = 1_795_867_200.0  # 2026-11-28 12:00:00 UTC


async def _add(
    store: Store, user: int = 1, due: float = T0, what: str = "x", cap: int = 10
) -> Reminder:
    return await store.reminders.add(user, 7, 8, what, due, cap=cap, created_at=T0 - 60)


async def test_add_and_read_back_with_big_snowflakes(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            added = await store.reminders.add(BIG, BIG - 1, None, "tea", T0, cap=5)
            listed = await store.reminders.list_for_user(BIG)
            stored = await trio.to_thread.run_sync(
                query_fresh, store.path, "SELECT user_id, guild_id FROM reminders"
            )
    assert listed == [added]
    assert added.user_id == BIG
    assert added.channel_id == BIG - 1
    assert added.guild_id is None
    assert stored == [(-1, None)]


async def test_list_is_own_pending_by_due_time(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            late = await _add(store, due=T0 + 20, what="late")
            early = await _add(store, due=T0 + 10, what="early")
            await _add(store, user=2)
            done = await _add(store, due=T0 + 5)
            assert await store.reminders.mark_delivered(done.id, at=T0 + 5)
            listed = await store.reminders.list_for_user(1)
            count = await store.reminders.count_pending(1)
    assert [r.what for r in listed] == [early.what, late.what]
    assert count == 2


async def test_cap_counts_pending_and_holds_under_concurrency(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            refused = 0

            async def one(index: int) -> None:
                nonlocal refused
                try:
                    await _add(store, what=str(index), cap=5)
                except ReminderLimitReached:
                    refused += 1

            async with trio.open_nursery() as nursery:
                for index in range(20):
                    nursery.start_soon(one, index)
            assert await store.reminders.count_pending(1) == 5
            # A delivered reminder no longer counts.
            first = (await store.reminders.list_for_user(1))[0]
            assert await store.reminders.mark_delivered(first.id)
            await _add(store, cap=5)
            with pytest.raises(ReminderLimitReached) as caught:
                await _add(store, cap=5)
    assert refused == 15
    assert str(caught.value) == (
        "You already have 5 reminders waiting, the most one user can have; cancel some with "
        "`/cancel_reminder` or `/clear_reminders` first."
    )


async def test_mark_delivered_succeeds_once_even_when_raced(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            reminder = await _add(store)
            wins: list[bool] = []

            async def claim() -> None:
                wins.append(await store.reminders.mark_delivered(reminder.id, at=T0))

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(claim)
            stored = await store.reminders.get(reminder.id)
            unknown = await store.reminders.mark_delivered(reminder.id + 100)
    assert sorted(wins) == [False, False, False, False, True]
    assert stored is not None
    assert stored.delivered_at == T0
    assert not unknown


async def test_next_due_and_due_skip_delivered(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            assert await store.reminders.next_due() is None
            a = await _add(store, due=T0 + 1)
            b = await _add(store, due=T0 + 2, user=2)
            c = await _add(store, due=T0 + 3)
            assert await store.reminders.next_due() == T0 + 1
            assert [r.id for r in await store.reminders.due(T0 + 2)] == [a.id, b.id]
            assert [r.id for r in await store.reminders.due(T0 + 9, limit=1)] == [a.id]
            await store.reminders.mark_delivered(a.id)
            assert await store.reminders.next_due() == T0 + 2
            assert [r.id for r in await store.reminders.due(T0 + 9)] == [b.id, c.id]


async def test_cancel_clear_and_forget_are_per_user(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            mine = await _add(store)
            theirs = await _add(store, user=2)
            assert await store.reminders.cancel(1, theirs.id) is None
            assert await store.reminders.cancel(1, 1 << 63) is None
            assert await store.reminders.cancel(1, mine.id) == mine
            assert await store.reminders.cancel(1, mine.id) is None
            delivered = await _add(store, user=2)
            await store.reminders.mark_delivered(delivered.id, at=T0)
            assert await store.reminders.cancel(2, delivered.id) is None
            await _add(store, user=2)
            assert await store.reminders.clear(1) == 0
            assert await store.reminders.clear(2) == 2  # pending ones only
            await store.reminders.record_failure(delivered.id, "NotFound: gone")
            failed = await store.reminders.get(delivered.id)
            assert failed is not None
            assert failed.failure == "NotFound: gone"
            assert await store.reminders.prune_delivered(T0) == 0
            assert await store.reminders.delete_all_for_user(2) == 1
            assert await store.reminders.get(delivered.id) is None
