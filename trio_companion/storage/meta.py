"""Key/value strings that the bot remembers between runs (e.g. the hash of synced commands)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    import sqlite3

    from trio_companion.storage.db import Database

_GET: Final = "SELECT value FROM meta WHERE key = ?"
_SET: Final = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_DELETE: Final = "DELETE FROM meta WHERE key = ?"
# substr/length rather than LIKE: a prefix may hold % or _ and needs no escaping. The table is a
# handful of rows, so the scan is free.
_KEYS: Final = "SELECT key FROM meta WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key"


@final
class MetaRepository:
    """The ``meta`` table: one string value per string key.

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        """Return the value stored under `key`, or None if there is none."""

        def select(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(_GET, (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(select)

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing any previous value."""

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(_SET, (key, value))

        await self._db.write(upsert)

    async def delete(self, key: str) -> bool:
        """Remove `key`; return whether it was there."""

        def delete(conn: sqlite3.Connection) -> bool:
            return conn.execute(_DELETE, (key,)).rowcount > 0

        return await self._db.write(delete)

    async def keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, in ascending order."""

        def select(conn: sqlite3.Connection) -> list[str]:
            return [str(row[0]) for row in conn.execute(_KEYS, (prefix,))]

        return await self._db.read(select)
