"""Conversation summaries per channel and their summary point (``store.summaries``).

A summary covers a contiguous run of one channel's history turns, ``first_turn_id`` to
``last_turn_id``. The channel's *summary point* is the largest ``last_turn_id`` of its summaries
(0 when it has none): turns up to it are summarised already. `SummariesRepository.add` checks, in
the transaction that inserts the summary, that the new range starts after the point, so two
summarisers racing over the same turns store one summary, never two. History ids only grow (see
`trio_companion.storage.history`), also across a cleared history, so the point stays meaningful.

Snowflakes are stored two's-complement, as in `trio_companion.storage.history`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final, final

import msgspec

# The same snowflake mapping and row decoding as the history table, whose rows this reads.
from trio_companion.storage.history import _decode, _from_sql, _to_sql

if TYPE_CHECKING:
    import sqlite3

    from trio_companion.storage.db import Database
    from trio_companion.storage.history import StoredTurn

__all__ = ["SummariesRepository", "Summary"]

_POINT: Final = "SELECT coalesce(max(last_turn_id), 0) FROM summaries WHERE channel_id = ?"
_INSERT: Final = (
    "INSERT INTO summaries (channel_id, first_turn_id, last_turn_id, text, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_COLUMNS: Final = "id, channel_id, first_turn_id, last_turn_id, text, created_at"
_LIST: Final = (
    f"SELECT {_COLUMNS} FROM summaries WHERE channel_id = ? ORDER BY last_turn_id DESC LIMIT ?"
)
_GET: Final = f"SELECT {_COLUMNS} FROM summaries WHERE id = ?"
_COUNT_AFTER: Final = "SELECT count(*) FROM history WHERE channel_id = ? AND id > ?"
_TURNS_AFTER: Final = (
    "SELECT id, channel_id, author_id, author_name, role, content, created_at, message_id "
    "FROM history WHERE channel_id = ? AND id > ? ORDER BY id LIMIT ?"
)


@final
class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """One stored summary of the turns `first_turn_id`..`last_turn_id` of `channel_id`."""

    id: int
    channel_id: int
    first_turn_id: int
    last_turn_id: int
    text: str
    created_at: float
    """Unix time in seconds."""


@final
class SummariesRepository:
    """The ``summaries`` table, and the history turns not summarised yet.

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`; a channel id outside 0..2**64-1 raises `ValueError`.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def latest_point(self, channel_id: int) -> int:
        """The last summarised turn id of `channel_id`; 0 if nothing is summarised."""
        key = _to_sql(channel_id)

        def select(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_POINT, (key,)).fetchone()[0])

        return await self._db.read(select)

    async def pending(self, channel_id: int) -> tuple[int, int]:
        """``(point, count)``: the summary point and how many turns come after it."""
        key = _to_sql(channel_id)

        def select(conn: sqlite3.Connection) -> tuple[int, int]:
            point = int(conn.execute(_POINT, (key,)).fetchone()[0])
            count = int(conn.execute(_COUNT_AFTER, (key, point)).fetchone()[0])
            return point, count

        return await self._db.read(select)

    async def turns_after(self, channel_id: int, after_id: int, *, limit: int) -> list[StoredTurn]:
        """The oldest `limit` turns of `channel_id` with an id above `after_id`, oldest first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        key = _to_sql(channel_id)

        def select(conn: sqlite3.Connection) -> list[StoredTurn]:
            return [_decode(row) for row in conn.execute(_TURNS_AFTER, (key, after_id, limit))]

        return await self._db.read(select)

    async def add(
        self,
        channel_id: int,
        first_turn_id: int,
        last_turn_id: int,
        text: str,
        *,
        created_at: float | None = None,
    ) -> Summary | None:
        """Store a summary of turns `first_turn_id`..`last_turn_id`, moving the summary point to
        `last_turn_id`; return it, or None (nothing stored) if `first_turn_id` is not after the
        current point: those turns were summarised meanwhile.
        """
        if last_turn_id < first_turn_id:
            raise ValueError(f"empty range {first_turn_id}..{last_turn_id}")
        key = _to_sql(channel_id)
        when = time.time() if created_at is None else created_at

        def insert(conn: sqlite3.Connection) -> Summary | None:
            point = int(conn.execute(_POINT, (key,)).fetchone()[0])
            if first_turn_id <= point:
                return None
            cursor = conn.execute(_INSERT, (key, first_turn_id, last_turn_id, text, when))
            if cursor.lastrowid is None:  # pragma: no cover - SQLite sets it after every INSERT
                raise AssertionError("INSERT did not set lastrowid")
            return Summary(
                id=cursor.lastrowid,
                channel_id=channel_id,
                first_turn_id=first_turn_id,
                last_turn_id=last_turn_id,
                text=text,
                created_at=when,
            )

        return await self._db.write(insert)

    async def list(self, channel_id: int, *, limit: int) -> list[Summary]:
        """The newest `limit` summaries of `channel_id`, newest first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        key = _to_sql(channel_id)

        def select(conn: sqlite3.Connection) -> list[Summary]:
            return [_summary(row) for row in conn.execute(_LIST, (key, limit))]

        return await self._db.read(select)

    async def get(self, summary_id: int) -> Summary | None:
        """The summary with id `summary_id`, if there is one."""

        def select(conn: sqlite3.Connection) -> Summary | None:
            row = conn.execute(_GET, (summary_id,)).fetchone()
            return None if row is None else _summary(row)

        return await self._db.read(select)


def _summary(row: tuple[Any, ...]) -> Summary:
    # Values come back as the schema stored them.
    row_id, channel_id, first, last, text, created_at = row
    return Summary(
        id=row_id,
        channel_id=_from_sql(channel_id),
        first_turn_id=first,
        last_turn_id=last,
        text=text,
        created_at=created_at,
    )
