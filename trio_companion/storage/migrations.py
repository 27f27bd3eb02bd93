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
    Migration(
        3,
        "reminders",
        """
        -- user_id, channel_id and guild_id are snowflakes stored signed, as in history. due_at,
        -- created_at and delivered_at are unix UTC seconds. delivered_at is set once, when the
        -- scheduler claims the reminder, before it is sent (at most once: see
        -- trio_companion.services.reminders.scheduler); failure is why that send failed, if it did.
        -- AUTOINCREMENT: a cancelled reminder's id is never given to a new one.
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL,
            channel_id INTEGER NOT NULL,
            guild_id INTEGER,
            what TEXT NOT NULL,
            due_at REAL NOT NULL,
            created_at REAL NOT NULL,
            delivered_at REAL,
            failure TEXT
        );

        -- The scheduler's "next undelivered one" and "undelivered ones due by now".
        CREATE INDEX reminders_by_due ON reminders (delivered_at, due_at);
        -- /reminders, /cancel_reminder, the per-user cap.
        CREATE INDEX reminders_by_user ON reminders (user_id, due_at);
        """,
    ),
    Migration(
        4,
        "documents for retrieval, their chunks and a full-text index over them",
        """
        -- path is the document's path relative to the documents folder (or another source's
        -- name); content_hash is the sha256 of its content, so an unchanged file is skipped;
        -- embedding_model is the model its chunks were embedded with ('' if not embedded), so a
        -- change of model re-embeds them. indexed_at is unix UTC seconds.
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            content_hash TEXT NOT NULL,
            embedding_model TEXT NOT NULL DEFAULT '',
            indexed_at REAL NOT NULL
        );

        -- embedding: little-endian float32 vector, NULL when the chunk has none.
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            embedding BLOB
        );

        CREATE UNIQUE INDEX chunks_by_document ON chunks (document_id, ordinal);

        -- External-content FTS5 over chunks.text (BM25 ranking), kept in sync by the triggers
        -- below; the porter stemmer lets "crafting" find "craft".
        CREATE VIRTUAL TABLE chunks_fts USING fts5 (
            text,
            content = 'chunks',
            content_rowid = 'id',
            tokenize = 'porter unicode61 remove_diacritics 2'
        );

        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
        END;

        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;

        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
        END;
        """,
    ),
    Migration(
        5,
        "user profiles: learned facts, /remember instructions and affection",
        """
        -- user_id and channel_id are snowflakes stored signed, as in history. kind is what the
        -- text is; source is where it came from ('conversation': the background extraction,
        -- 'remember': /remember). created_at is unix UTC seconds. The per-user, per-kind cap is
        -- enforced by trio_companion.storage.profiles in the insert's transaction.
        CREATE TABLE profile_facts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('fact', 'interest', 'preference', 'instruction')),
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            channel_id INTEGER,
            created_at REAL NOT NULL
        );

        -- A profile loads by user (no full scan); newest first within a kind.
        CREATE INDEX profile_facts_by_user ON profile_facts (user_id, kind, id);

        -- /forget_me deletes a user's turns in every channel.
        CREATE INDEX history_by_author ON history (author_id);

        -- score in [-100, 100] (see trio_companion.services.profiles.affection).
        CREATE TABLE user_affection (
            user_id INTEGER PRIMARY KEY NOT NULL,
            score REAL NOT NULL,
            interactions INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
        """,
    ),
    Migration(
        6,
        "conversation summaries and their summary points",
        """
        -- channel_id is a snowflake stored signed, as in history. The summary covers the history
        -- turns first_turn_id..last_turn_id of its channel; the largest last_turn_id of a channel
        -- is its summary point: turns up to it are never summarised again (see
        -- trio_companion.storage.summaries). created_at is unix UTC seconds.
        CREATE TABLE summaries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            channel_id INTEGER NOT NULL,
            first_turn_id INTEGER NOT NULL,
            last_turn_id INTEGER NOT NULL CHECK (last_turn_id >= first_turn_id),
            text TEXT NOT NULL,
            created_at REAL NOT NULL
        );

        -- The summary point (max last_turn_id) and a channel's summaries in order.
        CREATE INDEX summaries_by_channel ON summaries (channel_id, last_turn_id);
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
    rolled back; the earlier ones stay), `StorageOpenError` if the environment fails (disk full)
    or this SQLite lacks FTS5 (see `require_module`).
    """
    _check_numbering(migrations)
    require_module(conn, path, "fts5")
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


def require_module(conn: sqlite3.Connection, path: Path, module: str) -> None:
    """Raise `StorageOpenError` unless this SQLite has the virtual-table `module` (migration 4
    needs ``fts5``). Checked at every open, not only when migrating: a file made elsewhere could
    be opened with a SQLite built without it, and would then fail on its first search.
    """
    # A temporary table is private to this connection and touches no file; there is no portable
    # way to list the modules (PRAGMA module_list needs a compile option).
    probe = "_companion_module_probe"
    try:
        conn.execute(f'CREATE VIRTUAL TABLE temp.{probe} USING "{module}" (x)')
    except sqlite3.OperationalError as exc:
        raise StorageOpenError(
            path,
            f"this SQLite ({sqlite3.sqlite_version}) lacks the {module} extension the search "
            f"index needs ({exc}); use a Python whose SQLite is built with it (most are)",
        ) from exc
    conn.execute(f"DROP TABLE temp.{probe}")


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
