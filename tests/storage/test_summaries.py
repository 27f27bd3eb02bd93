"""store.summaries: the summary point, overlap refusal, listing and the turns after the point."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, make_turn
from trio_companion.storage import Store, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

BIG_CHANNEL = 2**64 - 5  # stored negative: see trio_companion.storage.history


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "db.sqlite3") as opened:
        yield opened


async def test_point_moves_with_each_summary_and_overlaps_are_refused(store: Store) -> None:
    with trio.fail_after(DEADLINE_S):
        ids = await store.history.append_many([make_turn(content=str(n)) for n in range(6)])
        assert await store.summaries.latest_point(1) == 0
        assert await store.summaries.pending(1) == (0, 6)
        first = await store.summaries.add(1, ids[0], ids[2], "one", created_at=10.0)
        assert first is not None
        assert await store.summaries.latest_point(1) == ids[2]
        assert await store.summaries.pending(1) == (ids[2], 3)
        again = await store.summaries.add(1, ids[1], ids[4], "overlap")
        second = await store.summaries.add(1, ids[3], ids[4], "two", created_at=20.0)
        assert second is not None
        listed = await store.summaries.list(1, limit=10)
        rest = await store.summaries.turns_after(1, ids[4], limit=10)
        assert await store.summaries.get(first.id) == first
        assert await store.summaries.get(9999) is None
    assert again is None
    assert [s.text for s in listed] == ["two", "one"]
    assert (listed[1].first_turn_id, listed[1].last_turn_id, listed[1].created_at) == (
        ids[0],
        ids[2],
        10.0,
    )
    assert [t.id for t in rest] == [ids[5]]


async def test_channels_are_apart_and_big_snowflakes_round_trip(store: Store) -> None:
    with trio.fail_after(DEADLINE_S):
        (mine,) = await store.history.append_many([make_turn(channel_id=BIG_CHANNEL)])
        await store.history.append_many([make_turn(channel_id=7)] * 3)
        made = await store.summaries.add(BIG_CHANNEL, mine, mine, "big")
        assert made is not None
        assert (await store.summaries.list(BIG_CHANNEL, limit=5))[0].channel_id == BIG_CHANNEL
        assert await store.summaries.list(7, limit=5) == []
        assert await store.summaries.pending(7) == (0, 3)
        turns = await store.summaries.turns_after(7, 0, limit=2)
    assert [t.channel_id for t in turns] == [7, 7]
    assert turns[0].id < turns[1].id


async def test_bad_arguments_are_refused(store: Store) -> None:
    with trio.fail_after(DEADLINE_S):
        with pytest.raises(ValueError, match="empty range"):
            await store.summaries.add(1, 5, 4, "x")
        with pytest.raises(ValueError, match="limit"):
            await store.summaries.list(1, limit=-1)
        with pytest.raises(ValueError, match="Discord id"):
            await store.summaries.latest_point(-1)
