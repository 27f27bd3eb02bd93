"""The public face of storage: `open_store` and the `Store` it yields."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, final

from trio_companion.storage.db import open_database
from trio_companion.storage.documents import DocumentsRepository
from trio_companion.storage.history import HistoryRepository
from trio_companion.storage.meta import MetaRepository
from trio_companion.storage.notes import NotesRepository
from trio_companion.storage.profiles import ProfilesRepository
from trio_companion.storage.reminders import RemindersRepository
from trio_companion.storage.summaries import SummariesRepository

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from trio_companion.storage.db import Database, StoreStatistics, Synchronous


@final
class Store:
    """The open database, as typed repositories. Made by `open_store`; valid inside it only.

    After `open_store` exits, every method raises `trio.ClosedResourceError`.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.meta: Final = MetaRepository(db)
        self.history: Final = HistoryRepository(db)
        self.notes: Final = NotesRepository(db)
        self.documents: Final = DocumentsRepository(db)
        self.reminders: Final = RemindersRepository(db)
        self.profiles: Final = ProfilesRepository(db)
        self.summaries: Final = SummariesRepository(db)

    @property
    def path(self) -> Path:
        return self._db.path

    def statistics(self) -> StoreStatistics:
        """Counters and queue lengths; cheap, does not touch the database."""
        return self._db.statistics()

    async def wait_writes(self, count: int) -> None:
        """Return once `count` writes in all have committed (``statistics().writes_done``)."""
        await self._db.wait_writes(count)


@asynccontextmanager
async def open_store(path: Path, *, synchronous: Synchronous = "full") -> AsyncIterator[Store]:
    """Open the database file at `path` (creating it and its directory if missing) as a `Store`.

    Migrates the schema to the current version first. Raises `StorageOpenError` when the file or
    its directory cannot be used and `StorageSchemaError` when the file's schema is newer than
    this code or cannot be upgraded; both say what to do, in one sentence.

    Every write through the store returns only after its transaction committed; with
    ``synchronous="full"`` (the default) it then survives a power loss, with ``"normal"`` a crash
    of the process. A caller cancelled during a write does not abort it: the worker thread
    finishes the transaction (trio's ``abandon_on_cancel=False``), so the write may be stored.

    On exit (also by cancellation) both connections are closed in a worker thread, shielded and
    within a bounded grace period.
    """
    async with open_database(path, synchronous=synchronous) as db:
        yield Store(db)
