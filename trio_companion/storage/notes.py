"""Private notes per Discord user: what ``/note`` saves and ``/notes`` lists.

A user's notes are only ever selected, deleted or counted together with their ``user_id``, so a
note id alone never reaches another user's note. The per-user cap is the caller's (a command
module's ``Final``); `NotesRepository.add` counts and inserts in one write transaction, and
write transactions are serialized (see `trio_companion.storage.db`), so concurrent adds never
pass the cap. ``user_id`` is a snowflake stored signed, as `trio_companion.storage.history`
explains.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final, final

import msgspec

from trio_companion.storage.errors import StorageError
from trio_companion.storage.history import _from_sql, _to_sql

if TYPE_CHECKING:
    import sqlite3

    from trio_companion.storage.db import Database

_INSERT: Final = "INSERT INTO notes (user_id, category, content, created_at) VALUES (?, ?, ?, ?)"
_COLUMNS: Final = "id, user_id, category, content, created_at"
_LIST: Final = f"SELECT {_COLUMNS} FROM notes WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?"
_LIST_IN: Final = (
    f"SELECT {_COLUMNS} FROM notes WHERE user_id = ? AND category = ? "
    "ORDER BY id DESC LIMIT ? OFFSET ?"
)
_COUNT: Final = "SELECT count(*) FROM notes WHERE user_id = ?"
_COUNT_IN: Final = "SELECT count(*) FROM notes WHERE user_id = ? AND category = ?"
_DELETE: Final = "DELETE FROM notes WHERE user_id = ? AND id = ?"
_CLEAR: Final = "DELETE FROM notes WHERE user_id = ?"
_CLEAR_IN: Final = "DELETE FROM notes WHERE user_id = ? AND category = ?"


@final
class Note(msgspec.Struct, frozen=True, kw_only=True):
    """One stored note."""

    id: int
    """Increases with insertion order; never reused after a delete."""
    user_id: int
    category: str
    content: str
    created_at: float
    """Unix time in seconds."""


@final
class NoteLimitReached(StorageError):
    """Raised by `NotesRepository.add` when the user already has ``cap`` notes.

    Not a failure of the database: it belongs here because the count and the insert share one
    transaction. Nothing was stored. ``str(error)`` is for the user.
    """

    def __init__(self, user_id: int, cap: int) -> None:
        self.user_id = user_id
        self.cap = cap
        super().__init__(
            f"You already have {cap} notes, the most one user can keep; delete some with "
            "`/delnote` or `/clearnotes` first."
        )


@final
class NotesRepository:
    """The ``notes`` table.

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`; a user id outside 0..2**64-1 or a negative limit, offset
    or cap raises `ValueError` and nothing of that call is stored.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        user_id: int,
        category: str,
        content: str,
        *,
        cap: int,
        created_at: float | None = None,
    ) -> Note:
        """Store a note of `user_id` and return it; `created_at` defaults to now.

        Raises `NoteLimitReached` if the user already has `cap` notes, counted in the same
        transaction as the insert.
        """
        if cap < 0:
            raise ValueError(f"cap must be 0 or more, not {cap}")
        key = _to_sql(user_id)
        when = time.time() if created_at is None else created_at

        def insert(conn: sqlite3.Connection) -> Note:
            if int(conn.execute(_COUNT, (key,)).fetchone()[0]) >= cap:
                raise NoteLimitReached(user_id, cap)
            row_id = conn.execute(_INSERT, (key, category, content, when)).lastrowid
            if row_id is None:  # pragma: no cover - SQLite sets it after every INSERT
                raise AssertionError("INSERT did not set lastrowid")
            return Note(
                id=row_id, user_id=user_id, category=category, content=content, created_at=when
            )

        return await self._db.write(insert)

    async def list(
        self, user_id: int, category: str | None = None, *, limit: int, offset: int = 0
    ) -> list[Note]:
        """Return up to `limit` notes of `user_id` (only `category`'s if given), newest first,
        skipping the newest `offset`."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be 0 or more, not {limit} and {offset}")
        key = _to_sql(user_id)

        def select(conn: sqlite3.Connection) -> list[Note]:
            if category is None:
                rows = conn.execute(_LIST, (key, limit, offset)).fetchall()
            else:
                rows = conn.execute(_LIST_IN, (key, category, limit, offset)).fetchall()
            return [_decode(row) for row in rows]

        return await self._db.read(select)

    async def count(self, user_id: int, category: str | None = None) -> int:
        """Return how many notes `user_id` has (in `category`, if given)."""
        key = _to_sql(user_id)

        def count(conn: sqlite3.Connection) -> int:
            if category is None:
                return int(conn.execute(_COUNT, (key,)).fetchone()[0])
            return int(conn.execute(_COUNT_IN, (key, category)).fetchone()[0])

        return await self._db.read(count)

    async def delete(self, user_id: int, note_id: int) -> bool:
        """Delete note `note_id` if it is `user_id`'s; return whether it was.

        Another user's note id, or one out of SQLite's range, deletes nothing and returns False.
        """
        key = _to_sql(user_id)
        if not 0 < note_id < 1 << 63:
            return False

        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute(_DELETE, (key, note_id)).rowcount > 0

        return await self._db.write(delete)

    async def clear(self, user_id: int, category: str | None = None) -> int:
        """Delete `user_id`'s notes (only `category`'s if given); return how many there were."""
        key = _to_sql(user_id)

        def delete(conn: sqlite3.Connection) -> int:
            if category is None:
                return conn.execute(_CLEAR, (key,)).rowcount
            return conn.execute(_CLEAR_IN, (key, category)).rowcount

        return await self._db.write(delete)

    async def delete_all_for_user(self, user_id: int) -> int:
        """Delete every note of `user_id` (for a "forget me" request); return how many."""
        return await self.clear(user_id)


def _decode(row: tuple[Any, ...]) -> Note:
    row_id, user_id, category, content, created_at = row
    return Note(
        id=row_id,
        user_id=_from_sql(user_id),
        category=category,
        content=content,
        created_at=created_at,
    )
