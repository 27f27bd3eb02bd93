"""Reminders per Discord user: what ``/remind`` stores and the scheduler delivers.

A reminder is *pending* until the scheduler claims it with `RemindersRepository.mark_delivered`,
which sets ``delivered_at`` only where it is still NULL: of two claims of one reminder (two
scheduler passes, or two processes on one file) exactly one succeeds, so a reminder is sent at
most once. Delivered rows stay (with ``failure`` set when the send failed) so a restart can tell
them from pending ones; `RemindersRepository.prune_delivered` removes old ones.

The per-user cap counts pending reminders only and is checked in the same write transaction as
the insert; write transactions are serialized (see `trio_companion.storage.db`), so concurrent
adds never pass it. User-facing queries always include the caller's ``user_id``, so a reminder
id alone never reaches another user's reminder. Snowflakes are stored signed, as
`trio_companion.storage.history` explains.
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

__all__ = ["Reminder", "ReminderLimitReached", "RemindersRepository"]

_COLUMNS: Final = (
    "id, user_id, channel_id, guild_id, what, due_at, created_at, delivered_at, failure"
)
_INSERT: Final = (
    "INSERT INTO reminders (user_id, channel_id, guild_id, what, due_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_COUNT_PENDING: Final = "SELECT count(*) FROM reminders WHERE user_id = ? AND delivered_at IS NULL"
_NEXT_DUE: Final = "SELECT min(due_at) FROM reminders WHERE delivered_at IS NULL"
_DUE: Final = (
    f"SELECT {_COLUMNS} FROM reminders WHERE delivered_at IS NULL AND due_at <= ? "
    "ORDER BY due_at, id LIMIT ?"
)
_MARK: Final = "UPDATE reminders SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL"
_FAILED: Final = "UPDATE reminders SET failure = ? WHERE id = ?"
_GET: Final = f"SELECT {_COLUMNS} FROM reminders WHERE id = ?"
_LIST: Final = (
    f"SELECT {_COLUMNS} FROM reminders WHERE user_id = ? AND delivered_at IS NULL "
    "ORDER BY due_at, id LIMIT ?"
)
_GET_PENDING: Final = (
    f"SELECT {_COLUMNS} FROM reminders WHERE user_id = ? AND id = ? AND delivered_at IS NULL"
)
_CANCEL: Final = "DELETE FROM reminders WHERE user_id = ? AND id = ? AND delivered_at IS NULL"
_CLEAR: Final = "DELETE FROM reminders WHERE user_id = ? AND delivered_at IS NULL"
_DELETE_ALL: Final = "DELETE FROM reminders WHERE user_id = ?"
_PRUNE: Final = "DELETE FROM reminders WHERE delivered_at IS NOT NULL AND delivered_at < ?"


@final
class Reminder(msgspec.Struct, frozen=True, kw_only=True):
    """One stored reminder. Times are unix UTC seconds."""

    id: int
    """Increases with insertion order; never reused after a cancel."""
    user_id: int
    channel_id: int
    """Where it was asked for, and where it is delivered while that channel exists."""
    guild_id: int | None
    what: str
    due_at: float
    created_at: float
    delivered_at: float | None = None
    """When the scheduler claimed it; None while pending."""
    failure: str | None = None
    """Why sending it failed, when it did (it is not retried)."""


@final
class ReminderLimitReached(StorageError):
    """Raised by `RemindersRepository.add` when the user already has ``cap`` pending reminders.

    Not a failure of the database: the count and the insert share one transaction. Nothing was
    stored. ``str(error)`` is for the user.
    """

    def __init__(self, user_id: int, cap: int) -> None:
        self.user_id = user_id
        self.cap = cap
        super().__init__(
            f"You already have {cap} reminders waiting, the most one user can have; cancel some "
            "with `/cancel_reminder` or `/clear_reminders` first."
        )


@final
class RemindersRepository:
    """The ``reminders`` table.

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`; an id outside 0..2**64-1 or a negative cap or limit
    raises `ValueError` and nothing of that call is stored.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        user_id: int,
        channel_id: int,
        guild_id: int | None,
        what: str,
        due_at: float,
        *,
        cap: int,
        created_at: float | None = None,
    ) -> Reminder:
        """Store a pending reminder and return it; `created_at` defaults to now.

        Raises `ReminderLimitReached` if `user_id` already has `cap` pending reminders, counted
        in the same transaction as the insert.
        """
        if cap < 0:
            raise ValueError(f"cap must be 0 or more, not {cap}")
        user, channel = _to_sql(user_id), _to_sql(channel_id)
        guild = None if guild_id is None else _to_sql(guild_id)
        when = time.time() if created_at is None else created_at

        def insert(conn: sqlite3.Connection) -> Reminder:
            if int(conn.execute(_COUNT_PENDING, (user,)).fetchone()[0]) >= cap:
                raise ReminderLimitReached(user_id, cap)
            row_id = conn.execute(_INSERT, (user, channel, guild, what, due_at, when)).lastrowid
            if row_id is None:  # pragma: no cover - SQLite sets it after every INSERT
                raise AssertionError("INSERT did not set lastrowid")
            return Reminder(
                id=row_id,
                user_id=user_id,
                channel_id=channel_id,
                guild_id=guild_id,
                what=what,
                due_at=due_at,
                created_at=when,
            )

        return await self._db.write(insert)

    async def next_due(self) -> float | None:
        """The earliest ``due_at`` of any pending reminder (maybe past), or None if none."""

        def select(conn: sqlite3.Connection) -> float | None:
            value = conn.execute(_NEXT_DUE).fetchone()[0]
            return None if value is None else float(value)

        return await self._db.read(select)

    async def due(self, now: float, *, limit: int = 100) -> list[Reminder]:
        """Up to `limit` pending reminders due at or before `now`, earliest first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")

        def select(conn: sqlite3.Connection) -> list[Reminder]:
            return [_decode(row) for row in conn.execute(_DUE, (now, limit)).fetchall()]

        return await self._db.read(select)

    async def mark_delivered(self, reminder_id: int, *, at: float | None = None) -> bool:
        """Claim reminder `reminder_id` for delivery; return whether this call claimed it.

        Only the first call for a pending reminder returns True; later ones, and calls for a
        cancelled or unknown id, return False and change nothing.
        """
        when = time.time() if at is None else at

        def update(conn: sqlite3.Connection) -> bool:
            return conn.execute(_MARK, (when, reminder_id)).rowcount > 0

        return await self._db.write(update)

    async def record_failure(self, reminder_id: int, reason: str) -> None:
        """Note why sending a claimed reminder failed (it stays delivered: not retried)."""

        def update(conn: sqlite3.Connection) -> None:
            conn.execute(_FAILED, (reason, reminder_id))

        await self._db.write(update)

    async def get(self, reminder_id: int) -> Reminder | None:
        """Reminder `reminder_id` (pending or delivered), or None. Not for user-facing lookups."""

        def select(conn: sqlite3.Connection) -> Reminder | None:
            row = conn.execute(_GET, (reminder_id,)).fetchone()
            return None if row is None else _decode(row)

        return await self._db.read(select)

    async def list_for_user(self, user_id: int, *, limit: int = 1000) -> list[Reminder]:
        """Up to `limit` pending reminders of `user_id`, earliest due first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        key = _to_sql(user_id)

        def select(conn: sqlite3.Connection) -> list[Reminder]:
            return [_decode(row) for row in conn.execute(_LIST, (key, limit)).fetchall()]

        return await self._db.read(select)

    async def count_pending(self, user_id: int) -> int:
        """How many pending reminders `user_id` has."""
        key = _to_sql(user_id)

        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_COUNT_PENDING, (key,)).fetchone()[0])

        return await self._db.read(count)

    async def cancel(self, user_id: int, reminder_id: int) -> Reminder | None:
        """Delete `user_id`'s pending reminder `reminder_id` and return it; None if there is
        none (another user's, already delivered, unknown or out of SQLite's range)."""
        key = _to_sql(user_id)
        if not 0 < reminder_id < 1 << 63:
            return None

        def delete(conn: sqlite3.Connection) -> Reminder | None:
            row = conn.execute(_GET_PENDING, (key, reminder_id)).fetchone()
            if row is None:
                return None
            conn.execute(_CANCEL, (key, reminder_id))
            return _decode(row)

        return await self._db.write(delete)

    async def clear(self, user_id: int) -> int:
        """Delete all pending reminders of `user_id`; return how many there were."""
        key = _to_sql(user_id)

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(_CLEAR, (key,)).rowcount

        return await self._db.write(delete)

    async def delete_all_for_user(self, user_id: int) -> int:
        """Delete every reminder of `user_id`, delivered ones too (for a "forget me" request)."""
        key = _to_sql(user_id)

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(_DELETE_ALL, (key,)).rowcount

        return await self._db.write(delete)

    async def prune_delivered(self, before: float) -> int:
        """Delete reminders delivered before `before`; return how many."""

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(_PRUNE, (before,)).rowcount

        return await self._db.write(delete)


def _decode(row: tuple[Any, ...]) -> Reminder:
    row_id, user_id, channel_id, guild_id, what, due_at, created_at, delivered_at, failure = row
    return Reminder(
        id=row_id,
        user_id=_from_sql(user_id),
        channel_id=_from_sql(channel_id),
        guild_id=None if guild_id is None else _from_sql(guild_id),
        what=what,
        due_at=due_at,
        created_at=created_at,
        delivered_at=delivered_at,
        failure=failure,
    )
