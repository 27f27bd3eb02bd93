from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, query_fresh
from trio_companion.storage import StorageOpenError
from trio_companion.storage.db import open_database

if TYPE_CHECKING:
    from pathlib import Path


def _first_value(sql: str) -> Any:
    def run(conn: sqlite3.Connection) -> Any:
        return conn.execute(sql).fetchone()[0]

    return run


async def test_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_database(path):
            pass
    assert path.is_file()


@pytest.mark.parametrize(("synchronous", "expected"), [("full", 2), ("normal", 1)])
async def test_connections_are_configured(tmp_path: Path, synchronous: Any, expected: int) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_database(path, synchronous=synchronous) as db:
            assert await db.write(_first_value("PRAGMA synchronous")) == expected
            assert await db.read(_first_value("PRAGMA synchronous")) == expected
            assert await db.write(_first_value("PRAGMA foreign_keys")) == 1
            assert await db.read(_first_value("PRAGMA foreign_keys")) == 1
            assert await db.write(_first_value("PRAGMA query_only")) == 0
            assert await db.read(_first_value("PRAGMA query_only")) == 1
        mode = await trio.to_thread.run_sync(query_fresh, path, "PRAGMA journal_mode")
    assert mode == [("wal",)]


async def test_unknown_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S), pytest.raises(ValueError, match="synchronous"):
        async with open_database(tmp_path / "db.sqlite3", synchronous="off"):  # type: ignore[arg-type]
            pass


async def test_read_only_directory_is_a_clear_error(readonly_dir: Path) -> None:
    path = readonly_dir / "data" / "db.sqlite3"
    with trio.fail_after(DEADLINE_S), pytest.raises(StorageOpenError) as caught:
        async with open_database(path):
            pass
    assert caught.value.path == path
    assert caught.value.reason.startswith(f"directory {readonly_dir} is not writable (")
    assert str(caught.value) in {
        f"Cannot open the database {path}: directory {readonly_dir} is not writable ({why}); "
        "choose a writable data path."
        for why in ("Read-only file system", "Permission denied")
    }


async def test_path_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("not a directory")
    path = file / "db.sqlite3"
    with trio.fail_after(DEADLINE_S), pytest.raises(StorageOpenError) as caught:
        async with open_database(path):
            pass
    assert str(caught.value) == (
        f"Cannot open the database {path}: {file} is not a directory; choose another data path."
    )


async def test_garbage_file_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    garbage = b"this is not a database\n" * 200
    path.write_bytes(garbage)
    with trio.fail_after(DEADLINE_S), pytest.raises(StorageOpenError) as caught:
        async with open_database(path):
            pass
    assert str(caught.value) == (
        f"Cannot open the database {path}: it is not a SQLite database or is damaged; "
        "move it away or restore a backup."
    )
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == garbage


async def test_directory_given_as_the_file_is_a_clear_error(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S), pytest.raises(StorageOpenError, match="it is a directory"):
        async with open_database(tmp_path):
            pass
