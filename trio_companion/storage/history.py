"""Chat history per Discord channel: the turns the chat service feeds back to the model.

Snowflakes: Discord ids are unsigned 64-bit (up to 2**64-1) but SQLite's INTEGER is signed
64-bit. ``channel_id``, ``author_id`` and ``message_id`` are therefore stored two's-complement:
an id of 2**63 or more is stored as ``id - 2**64`` (negative) and turned back on the way out.
Equality lookups are unaffected; SQL ordering by these columns is not numeric order, which is why
nothing orders by them. Any other tool reading the file must undo the conversion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, final, get_args

import msgspec

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from trio_companion.storage.db import Database

Role: TypeAlias = Literal["user", "assistant", "system"]

_ROLES: Final = frozenset(get_args(Role))
_TWO_63: Final = 1 << 63
_TWO_64: Final = 1 << 64

_INSERT: Final = (
    "INSERT INTO history (channel_id, author_id, author_name, role, content, created_at, "
    "message_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# The newest `limit` rows, newest first; `recent` reverses them.
_RECENT: Final = (
    "SELECT id, channel_id, author_id, author_name, role, content, created_at, message_id "
    "FROM history WHERE channel_id = ? ORDER BY id DESC LIMIT ?"
)
_COUNT: Final = "SELECT count(*) FROM history WHERE channel_id = ?"
_CLEAR: Final = "DELETE FROM history WHERE channel_id = ?"
_DELETE_BY_AUTHOR: Final = "DELETE FROM history WHERE author_id = ?"
_DELETE_OLDER_THAN: Final = "DELETE FROM history WHERE created_at < ?"


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a conversation, as written to the history."""

    channel_id: int
    author_id: int
    author_name: str
    role: Role
    content: str
    created_at: float
    """Unix time in seconds."""
    message_id: int | None = None
    """The Discord message this turn came from, if any."""


@final
class StoredTurn(Turn, frozen=True, kw_only=True):
    """A `Turn` read back from the history, with the row id the database gave it."""

    id: int
    """Increases with insertion order, also across `HistoryRepository.clear`."""


@final
class HistoryRepository:
    """The ``history`` table.

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`; an id outside 0..2**64-1 or an unknown role raises
    `ValueError` and nothing of that call is stored.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, turn: Turn) -> int:
        """Store `turn` and return its row id."""
        (row_id,) = await self.append_many((turn,))
        return row_id

    async def append_many(self, turns: Sequence[Turn]) -> list[int]:
        """Store `turns` in one transaction, in order; return their row ids.

        All or none are stored, and their ids are contiguous (no other write can interleave).
        """
        batch = tuple(turns)  # the caller may change its list while we wait for the thread
        if not batch:
            return []

        def insert(conn: sqlite3.Connection) -> list[int]:
            ids = []
            for turn in batch:
                row_id = conn.execute(_INSERT, _encode(turn)).lastrowid
                if row_id is None:  # pragma: no cover - SQLite sets it after every INSERT
                    raise AssertionError("INSERT did not set lastrowid")
                ids.append(row_id)
            return ids

        return await self._db.write(insert)

    async def recent(self, channel_id: int, limit: int) -> list[StoredTurn]:
        """Return the newest `limit` turns of `channel_id`, oldest first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        key = _to_sql(channel_id)

        def select(conn: sqlite3.Connection) -> list[StoredTurn]:
            rows = conn.execute(_RECENT, (key, limit)).fetchall()
            return [_decode(row) for row in reversed(rows)]

        return await self._db.read(select)

    async def count(self, channel_id: int) -> int:
        """Return how many turns `channel_id` has."""
        key = _to_sql(channel_id)

        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_COUNT, (key,)).fetchone()[0])

        return await self._db.read(count)

    async def clear(self, channel_id: int) -> int:
        """Delete every turn of `channel_id`; return how many there were."""
        key = _to_sql(channel_id)

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(_CLEAR, (key,)).rowcount

        return await self._db.write(delete)

    async def delete_by_author(self, author_id: int) -> int:
        """Delete every turn written by `author_id`, in every channel (for a "forget me"
        request); return how many there were. The bot's answers to them stay."""
        key = _to_sql(author_id)

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(_DELETE_BY_AUTHOR, (key,)).rowcount

        return await self._db.write(delete)

    async def delete_older_than(self, cutoff_unix: float) -> int:
        """Delete every turn, in every channel, whose ``created_at`` is before `cutoff_unix`
        (unix seconds); return how many there were. Turns at the cutoff or later stay."""

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(_DELETE_OLDER_THAN, (cutoff_unix,)).rowcount

        return await self._db.write(delete)

    async def replace(self, channel_id: int, turns: Sequence[Turn]) -> int:
        """Delete every turn of `channel_id` and store `turns` in their place, in order, in one
        transaction; return how many were deleted.

        All or nothing: a turn that `append_many` would refuse, or one of another channel, raises
        `ValueError` before anything is written, and a failed transaction is rolled back, so the
        old turns stay. Row ids of the new turns are contiguous and above every earlier id.
        """
        key = _to_sql(channel_id)
        for turn in turns:
            if turn.channel_id != channel_id:
                raise ValueError(f"replace({channel_id}) got a turn of channel {turn.channel_id}")
        rows = [_encode(turn) for turn in turns]  # refused here, before the transaction

        def swap(conn: sqlite3.Connection) -> int:
            deleted = conn.execute(_CLEAR, (key,)).rowcount
            conn.executemany(_INSERT, rows)
            return deleted

        return await self._db.write(swap)


def _encode(turn: Turn) -> tuple[object, ...]:
    if turn.role not in _ROLES:
        raise ValueError(f"role must be one of {sorted(_ROLES)}, not {turn.role!r}")
    return (
        _to_sql(turn.channel_id),
        _to_sql(turn.author_id),
        turn.author_name,
        turn.role,
        turn.content,
        turn.created_at,
        None if turn.message_id is None else _to_sql(turn.message_id),
    )


def _decode(row: tuple[Any, ...]) -> StoredTurn:
    # Values come back as the schema stored them; the CHECK constraint admits only Role values.
    row_id, channel_id, author_id, author_name, role, content, created_at, message_id = row
    return StoredTurn(
        id=row_id,
        channel_id=_from_sql(channel_id),
        author_id=_from_sql(author_id),
        author_name=author_name,
        role=role,
        content=content,
        created_at=created_at,
        message_id=None if message_id is None else _from_sql(message_id),
    )


def _to_sql(snowflake: int) -> int:
    """Map an unsigned 64-bit id onto SQLite's signed INTEGER (two's complement)."""
    if not 0 <= snowflake < _TWO_64:
        raise ValueError(f"a Discord id must be in 0..2**64-1, not {snowflake}")
    return snowflake - _TWO_64 if snowflake >= _TWO_63 else snowflake


def _from_sql(stored: int) -> int:
    """Undo `_to_sql`."""
    return stored + _TWO_64 if stored < 0 else stored
