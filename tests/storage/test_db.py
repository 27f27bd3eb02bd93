from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from tests.storage.helpers import DEADLINE_S, query_fresh
from trio_companion.storage import StorageIOError
from trio_companion.storage.db import open_database

if TYPE_CHECKING:
    from pathlib import Path


def _set(key: str, value: str) -> Any:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    return run


def _get(key: str) -> Any:
    def run(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    return run


async def test_acknowledged_write_is_committed_before_close_and_after_reopen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    select = "SELECT value FROM meta WHERE key = 'k'"
    with trio.fail_after(DEADLINE_S):
        async with open_database(path) as db:
            await db.write(_set("k", "v"))
            # Another connection, opened only now, sees it: the write returned after COMMIT.
            assert await trio.to_thread.run_sync(query_fresh, path, select) == [("v",)]
        assert not path.with_name(path.name + "-wal").exists()  # closed and checkpointed
        async with open_database(path) as db:
            assert await db.read(_get("k")) == "v"


async def test_write_that_raises_is_rolled_back_and_the_database_stays_usable(
    tmp_path: Path,
) -> None:
    def set_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'half')")
        raise RuntimeError("boom")

    with trio.fail_after(DEADLINE_S):
        async with open_database(tmp_path / "db.sqlite3") as db:
            with pytest.raises(RuntimeError, match="boom"):
                await db.write(set_then_fail)
            assert await db.read(_get("k")) is None
            await db.write(_set("k", "whole"))
            assert await db.read(_get("k")) == "whole"
            statistics = db.statistics()
    assert (statistics.writes_done, statistics.writes_failed) == (1, 1)


async def test_sql_bug_propagates_unchanged(tmp_path: Path) -> None:
    def bad_sql(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM no_such_table")

    with trio.fail_after(DEADLINE_S):
        async with open_database(tmp_path / "db.sqlite3") as db:
            with pytest.raises(sqlite3.OperationalError, match="no such table"):
                await db.write(bad_sql)
            with pytest.raises(sqlite3.OperationalError, match="no such table"):
                await db.read(bad_sql)


async def test_read_does_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow_write(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        started.set()
        release.wait(DEADLINE_S)

    with trio.fail_after(DEADLINE_S):
        async with open_database(tmp_path / "db.sqlite3") as db:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(db.write, slow_write)
                try:
                    await trio.to_thread.run_sync(started.wait, DEADLINE_S)
                    # Returns while the write holds its transaction open, without its row.
                    assert await db.read(_get("k")) is None
                finally:
                    release.set()
            assert await db.read(_get("k")) == "v"


async def test_statistics_count_queued_writers(tmp_path: Path) -> None:
    started = threading.Event()
    release = threading.Event()

    def blocking_write(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(DEADLINE_S)

    with trio.fail_after(DEADLINE_S):
        async with open_database(tmp_path / "db.sqlite3") as db:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(db.write, blocking_write)
                try:
                    await trio.to_thread.run_sync(started.wait, DEADLINE_S)
                    for i in range(3):
                        nursery.start_soon(db.write, _set(f"k{i}", "v"))
                    await trio.testing.wait_all_tasks_blocked()
                    assert db.statistics().writes_waiting == 3
                finally:
                    release.set()
            statistics = db.statistics()
    assert (statistics.writes_done, statistics.writes_waiting, statistics.closed) == (4, 0, False)


async def test_closed_database_refuses_calls(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_database(tmp_path / "db.sqlite3") as db:
            pass
        assert db.statistics().closed
        with pytest.raises(trio.ClosedResourceError):
            await db.write(_set("k", "v"))
        with pytest.raises(trio.ClosedResourceError):
            await db.read(_get("k"))


async def test_exit_by_cancellation_still_closes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        with trio.CancelScope() as scope:
            async with open_database(path) as db:
                await db.write(_set("k", "v"))
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert not path.with_name(path.name + "-wal").exists()  # closed and checkpointed
        async with open_database(path) as db:
            assert await db.read(_get("k")) == "v"


async def test_full_disk_is_a_clear_error_and_nothing_is_half_written(tiny_dir: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_database(tiny_dir / "db.sqlite3") as db:
            with pytest.raises(StorageIOError) as caught:
                await db.write(_set("big", "x" * 1_000_000))
            assert caught.value.reason == "the disk is full; free some space"
            assert isinstance(caught.value.__cause__, sqlite3.Error)
            assert await db.read(_get("big")) is None
            await db.write(_set("small", "v"))
            assert await db.read(_get("small")) == "v"
