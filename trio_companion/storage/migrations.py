"""The database schema, as numbered migrations applied in order.

The schema version lives in the file header as ``PRAGMA user_version`` (0 for a new file). Each
migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the bump of
``user_version`` to its number, so a file is always exactly at one version: an interrupted or
failed upgrade leaves it at the previous one. A file whose version is newer than the last
migration was written by a newer trio_companion and is refused rather than guessed at.

To change the schema, append a `Migration` with the next number; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import TYPE_CHECKING, Final, NamedTuple, final

from trio_companion.storage._sqlite import environment_failure, run_transaction, split_statements
from trio_companion.storage.errors import StorageOpenError, StorageSchemaError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


@final
class Migration(NamedTuple):
    """One step of the schema: after it, ``user_version`` is `version`."""

    version: int
    description: str
    sql: str


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "key/value settings and per-channel chat history",
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        ) WITHOUT ROWID;

        -- Snowflakes (channel_id, author_id, message_id) are stored as signed 64-bit integers:
        -- see trio_companion.storage.history. AUTOINCREMENT keeps ids growing after a clear, so
        -- id order is insertion order for good.
        CREATE TABLE history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            channel_id INTEGER NOT NULL,
            author_id INTEGER NOT NULL,
            author_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            message_id INTEGER
        );

        CREATE INDEX history_by_channel ON history (channel_id, id);
        """,
    ),
    Migration(
        2,
        "per-user notes",
        """
        -- user_id is a snowflake stored signed, as in history. AUTOINCREMENT: a deleted note's id
        -- is never given to a new one, so an old id the user still has cannot hit another note.
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL,
            category TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL
        );

        CREATE INDEX notes_by_user ON notes (user_id, category, id);
        """,
    ),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The schema version a file has after all of `migrations`."""
    return migrations[-1].version if migrations else 0


def migrate(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Apply the migrations `conn`'s file lacks and return the resulting schema version.

    Blocking: run it in a worker thread, on the write connection, in autocommit mode. Raises
    `StorageSchemaError` if the file is newer than `migrations` or a migration fails (that one is
    rolled back; the earlier ones stay), `StorageOpenError` if the environment fails (disk full).
    """
    _check_numbering(migrations)
    known = latest_version(migrations)
    current = _user_version(conn)
    if current > known:
        raise StorageSchemaError(
            path,
            current,
            f"its schema version {current} is newer than this trio_companion knows (up to "
            f"{known}); upgrade trio_companion or use another database file",
        )
    for migration in migrations[current:]:
        try:
            run_transaction(conn, partial(_apply, migration, path), begin="BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if (reason := environment_failure(exc)) is not None:
                raise StorageOpenError(path, reason) from exc
            raise StorageSchemaError(
                path,
                current,
                f"upgrading its schema to version {migration.version} "
                f"({migration.description}) failed ({exc}); the file was left at version "
                f"{current}; please report this bug",
            ) from exc
        current = migration.version
    return current


def _check_numbering(migrations: Sequence[Migration]) -> None:
    # Versions 1, 2, 3, … with no gap let `migrations[current:]` pick the missing ones.
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, … without gaps, not {versions}")


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _apply(migration: Migration, path: Path, conn: sqlite3.Connection) -> None:
    # The version was read before this transaction; BEGIN IMMEDIATE now holds the write lock, so
    # re-reading it catches another process that upgraded the file in between.
    if (found := _user_version(conn)) != migration.version - 1:
        raise StorageSchemaError(
            path,
            found,
            "another process changed its schema while this one was upgrading it; make sure only "
            "one trio_companion uses this database file",
        )
    for statement in split_statements(migration.sql):
        conn.execute(statement)
    # PRAGMA takes no bound parameters; the version is an int from the code, not input.
    conn.execute(f"PRAGMA user_version = {migration.version:d}")
