from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, make_turn
from trio_companion.storage import StoreStatistics, open_store
from trio_companion.storage.migrations import latest_version

if TYPE_CHECKING:
    from pathlib import Path


async def test_statistics_describe_the_store(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_store(path, synchronous="normal") as store:
            assert store.path == path
            await store.meta.set("k", "v")
            await store.history.append(make_turn())
            await store.meta.get("k")
            statistics = store.statistics()
        closed = store.statistics()
    assert statistics == StoreStatistics(
        path=str(path),
        synchronous="normal",
        schema_version=latest_version(),
        writes_done=2,
        writes_failed=0,
        writes_waiting=0,
        reads_done=1,
        reads_waiting=0,
        closed=False,
    )
    assert closed.closed


async def test_store_is_unusable_after_open_store_exits(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            pass
        with pytest.raises(trio.ClosedResourceError):
            await store.meta.set("k", "v")
        with pytest.raises(trio.ClosedResourceError):
            await store.history.recent(1, 10)
