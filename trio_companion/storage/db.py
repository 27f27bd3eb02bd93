"""The storage engine: one SQLite file, two connections, every call in a worker thread.

Theory of operation
-------------------
SQLite is a blocking C library, so no SQLite call runs on the trio thread. A `Database` owns two
connections to one file in write-ahead-log (WAL) mode:

* The **write connection** is used only through ``trio.to_thread.run_sync(...,
  limiter=<CapacityLimiter(1)>)``. The limiter makes it exclusive: one write transaction at a
  time, the other writers queued first come, first served. Each `Database.write` is one
  ``BEGIN IMMEDIATE … COMMIT`` transaction (ROLLBACK if anything raises) and returns only after
  COMMIT, so a write acknowledged to its caller is durable: with ``synchronous="full"`` across a
  power loss, with ``"normal"`` across a crash of the process (the last commits may be lost if the
  machine loses power, but the file is never damaged).
* The **read connection** has its own CapacityLimiter(1), so reads never queue behind writes; WAL
  lets it read the last committed state while a write is in progress. It is ``query_only``, and
  each `Database.read` is one deferred transaction, so all its statements see one snapshot.

Both connections are opened with ``check_same_thread=False`` because trio's thread cache may run
successive calls in different threads; the limiters, not the threads, guarantee exclusive use.

Cancellation: a task cancelled while it waits for a connection leaves without touching the file.
Once its function runs in the thread, trio waits for it (`trio.to_thread.run_sync`'s default
``abandon_on_cancel=False``): the transaction commits or rolls back, the call returns or raises as
if not cancelled, and the cancellation arrives at the caller's next checkpoint. A cancelled write
may therefore have been committed, but a committed write is never lost.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, TypeVar, final

import msgspec
import trio

from trio_companion.storage._open import open_connections
from trio_companion.storage._sqlite import environment_failure, run_transaction
from trio_companion.storage.errors import StorageIOError
from trio_companion.storage.migrations import MIGRATIONS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    from trio_companion.storage.migrations import Migration

_T = TypeVar("_T")

Synchronous: TypeAlias = Literal["normal", "full"]
"""``PRAGMA synchronous``: "full" survives power loss, "normal" survives a process crash."""

_LOG: Final = logging.getLogger(__name__)

# Closing the last connection checkpoints the WAL into the database file; allow a large WAL on a
# slow disk. Shorter than the app's shutdown grace, so closing never eats all of it.
_CLOSE_GRACE_S: Final = 5.0


@final
class StoreStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the store's counters and queues, for ``/status`` and the benchmarks."""

    path: str
    synchronous: Synchronous
    schema_version: int
    writes_done: int
    """Write transactions committed since the store was opened."""
    writes_failed: int
    """Write transactions rolled back because something raised."""
    writes_waiting: int
    """Tasks queued for the write connection (the one using it is not counted)."""
    reads_done: int
    reads_waiting: int
    closed: bool


@final
class Database:
    """Two connections to one SQLite file, used from worker threads; see the module docstring.

    Made by `open_database`, which also closes it.
    """

    def __init__(
        self,
        *,
        path: Path,
        synchronous: Synchronous,
        schema_version: int,
        write_conn: sqlite3.Connection,
        read_conn: sqlite3.Connection,
    ) -> None:
        self._path = path
        self._synchronous: Synchronous = synchronous
        self._schema_version = schema_version
        # Each is None once closed; only touched in a thread holding the matching limiter.
        self._write_conn: sqlite3.Connection | None = write_conn
        self._read_conn: sqlite3.Connection | None = read_conn
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)
        self._closing = False
        self._writes_done = 0
        self._write_committed = trio.Event()
        self._writes_failed = 0
        self._reads_done = 0

    @property
    def path(self) -> Path:
        return self._path

    async def write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(connection)`` in one write transaction; return its result after COMMIT.

        `fn` runs in a worker thread and must only use the connection it is given. If it raises,
        the transaction is rolled back and the exception propagates. Raises `StorageIOError` when
        SQLite reports a failure of the environment (disk full, I/O error) and
        `trio.ClosedResourceError` once the database is closing. Cancellation: see the module
        docstring; a cancelled caller's transaction still completes.
        """
        if self._closing:
            raise trio.ClosedResourceError("the store is closed")
        try:
            result = await trio.to_thread.run_sync(
                self._write_in_thread, fn, limiter=self._write_limiter
            )
        except Exception as exc:
            self._writes_failed += 1
            self._raise_if_environment_failure(exc)
            raise
        self._writes_done += 1
        self._write_committed.set()
        self._write_committed = trio.Event()
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(connection)`` on the read connection, in one snapshot of committed data.

        `fn` runs in a worker thread and must not write (the connection is query-only). Raises
        like `write`; never waits for a write in progress.
        """
        if self._closing:
            raise trio.ClosedResourceError("the store is closed")
        try:
            result = await trio.to_thread.run_sync(
                self._read_in_thread, fn, limiter=self._read_limiter
            )
        except Exception as exc:
            self._raise_if_environment_failure(exc)
            raise
        self._reads_done += 1
        return result

    async def wait_writes(self, count: int) -> None:
        """Return once `count` write transactions in all have committed (see `statistics`).

        For code that must know a background writer got somewhere: read ``writes_done``, start
        the work, then wait for more.
        """
        while self._writes_done < count:
            await self._write_committed.wait()

    def statistics(self) -> StoreStatistics:
        write_stats = self._write_limiter.statistics()
        read_stats = self._read_limiter.statistics()
        return StoreStatistics(
            path=str(self._path),
            synchronous=self._synchronous,
            schema_version=self._schema_version,
            writes_done=self._writes_done,
            writes_failed=self._writes_failed,
            writes_waiting=write_stats.tasks_waiting,
            reads_done=self._reads_done,
            reads_waiting=read_stats.tasks_waiting,
            closed=self._closing,
        )

    async def aclose(self) -> None:
        """Refuse new calls, let queued ones finish, then close both connections.

        Shielded from cancellation and bounded by a grace period, so a shutdown by cancellation
        still closes the file. If the grace period runs out (a write stuck on the disk), the
        connections are left to the process's exit; every acknowledged write is already durable.
        Idempotent.
        """
        self._closing = True
        with trio.move_on_after(_CLOSE_GRACE_S, shield=True) as scope:
            # The write connection last: closing the last connection checkpoints the WAL.
            await trio.to_thread.run_sync(self._close_read_in_thread, limiter=self._read_limiter)
            await trio.to_thread.run_sync(self._close_write_in_thread, limiter=self._write_limiter)
        if scope.cancelled_caught:
            _LOG.warning(
                "the database %s was not closed within %s s; it will be on exit",
                self._path,
                _CLOSE_GRACE_S,
            )

    def _raise_if_environment_failure(self, exc: Exception) -> None:
        # Anything else (bad SQL, a constraint, the caller's own exception) is a bug and
        # propagates unchanged.
        if isinstance(exc, sqlite3.Error) and (reason := environment_failure(exc)) is not None:
            raise StorageIOError(self._path, reason) from exc

    def _write_in_thread(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._write_conn is None:
            raise trio.ClosedResourceError("the store is closed")
        return run_transaction(self._write_conn, fn, begin="BEGIN IMMEDIATE")

    def _read_in_thread(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._read_conn is None:
            raise trio.ClosedResourceError("the store is closed")
        return run_transaction(self._read_conn, fn, begin="BEGIN")

    def _close_read_in_thread(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    def _close_write_in_thread(self) -> None:
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None


@asynccontextmanager
async def open_database(
    path: Path,
    *,
    synchronous: Synchronous = "full",
    migrations: Sequence[Migration] = MIGRATIONS,
) -> AsyncIterator[Database]:
    """Open (creating if needed) the database at `path`, migrate it, and close it on exit.

    Raises `StorageOpenError` or `StorageSchemaError` with a message fit for the user. Opening
    runs in a worker thread; if cancelled meanwhile, the open completes, is closed again, and the
    cancellation propagates. See `Database.aclose` for the exit.
    """
    if synchronous not in ("normal", "full"):
        raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
    write_conn, read_conn, schema_version = await trio.to_thread.run_sync(
        open_connections, path, synchronous, migrations
    )
    db = Database(
        path=path,
        synchronous=synchronous,
        schema_version=schema_version,
        write_conn=write_conn,
        read_conn=read_conn,
    )
    try:
        yield db
    finally:
        await db.aclose()
