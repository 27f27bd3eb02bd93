from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, query_fresh
from trio_companion.storage import StorageError, StorageOpenError, StorageSchemaError, open_store
from trio_companion.storage.db import open_database
from trio_companion.storage.migrations import (
    MIGRATIONS,
    Migration,
    latest_version,
    require_module,
)

if TYPE_CHECKING:
    from pathlib import Path

_COUNTER = Migration(1, "a counter", "CREATE TABLE c (n); INSERT INTO c VALUES (1);")
_SECOND = Migration(2, "a second table", "CREATE TABLE d (n);")


async def _user_version(path: Path) -> int:
    rows = await trio.to_thread.run_sync(query_fresh, path, "PRAGMA user_version")
    return int(rows[0][0])


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert latest_version() == len(MIGRATIONS)


async def test_empty_file_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_store(path) as store:
            assert store.statistics().schema_version == latest_version()
        assert await _user_version(path) == latest_version()
        names = await trio.to_thread.run_sync(
            query_fresh, path, "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
    assert {name for (name,) in names} == {
        "meta",
        "history",
        "history_by_channel",
        "notes",
        "notes_by_user",
        "reminders",
        "reminders_by_due",
        "reminders_by_user",
        "documents",
        "chunks",
        "chunks_by_document",
        "chunks_fts",
        "chunks_fts_config",
        "chunks_fts_data",
        "chunks_fts_docsize",
        "chunks_fts_idx",
        "chunks_fts_insert",
        "chunks_fts_delete",
        "chunks_fts_update",
        "profile_facts",
        "profile_facts_by_user",
        "history_by_author",
        "user_affection",
        "summaries",
        "summaries_by_channel",
    }


async def test_reopening_applies_nothing_again(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        for _ in range(2):
            async with open_database(path, migrations=(_COUNTER,)) as db:
                assert db.statistics().schema_version == 1
        rows = await trio.to_thread.run_sync(query_fresh, path, "SELECT n FROM c")
    assert rows == [(1,)]  # the INSERT of migration 1 ran once


async def test_older_file_gets_only_the_missing_migrations(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_database(path, migrations=(_COUNTER,)):
            pass
        async with open_database(path, migrations=(_COUNTER, _SECOND)) as db:
            assert db.statistics().schema_version == 2
        rows = await trio.to_thread.run_sync(query_fresh, path, "SELECT n FROM c")
    assert rows == [(1,)]


async def test_newer_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    newer = latest_version() + 1
    with trio.fail_after(DEADLINE_S):
        await trio.to_thread.run_sync(query_fresh, path, f"PRAGMA user_version = {newer}")
        with pytest.raises(StorageSchemaError) as caught:
            async with open_store(path):
                pass
        assert await _user_version(path) == newer
    assert caught.value.version == newer
    assert str(caught.value) == (
        f"Cannot open the database {path}: its schema version {newer} is newer than this "
        f"trio_companion knows (up to {latest_version()}); upgrade trio_companion or use "
        "another database file."
    )


async def test_failing_migration_is_rolled_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    broken = Migration(2, "a broken step", "CREATE TABLE d (n); INSERT INTO nowhere VALUES (1);")
    with trio.fail_after(DEADLINE_S):
        with pytest.raises(StorageSchemaError) as caught:
            async with open_database(path, migrations=(_COUNTER, broken)):
                pass
        assert await _user_version(path) == 1
        tables = await trio.to_thread.run_sync(
            query_fresh, path, "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    assert ("d",) not in tables  # the first statement of the broken step was rolled back too
    assert caught.value.version == 1
    assert "upgrading its schema to version 2 (a broken step) failed" in str(caught.value)
    assert "the file was left at version 1" in str(caught.value)


async def test_gap_in_numbering_is_a_bug(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S), pytest.raises(ValueError, match="without gaps"):
        async with open_database(tmp_path / "db.sqlite3", migrations=(_SECOND,)):
            pass


def test_a_sqlite_without_a_needed_module_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    # FTS5 cannot be removed from this SQLite; a module no SQLite has takes the same path.
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
        require_module(conn, path, "fts5")  # present: no error
        with pytest.raises(StorageOpenError) as caught:
            require_module(conn, path, "no_such_module")
    assert isinstance(caught.value, StorageError)
    assert str(caught.value).startswith(
        f"Cannot open the database {path}: this SQLite ({sqlite3.sqlite_version}) lacks the "
        "no_such_module extension the search index needs (no such module: no_such_module)"
    )
