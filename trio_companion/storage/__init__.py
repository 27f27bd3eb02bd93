"""Embedded storage: one SQLite file in WAL mode, used from worker threads.

``async with open_store(path) as store:`` opens (and migrates) the file and yields a `Store`
whose repositories, ``store.meta``, ``store.history``, ``store.notes``, ``store.reminders``,
``store.documents``, ``store.profiles`` and ``store.summaries``, are the only code that speaks
SQL. Writes are
durable when they return. See `trio_companion.storage.db` for the theory of operation and
`trio_companion.storage.errors` for what is raised when.
"""

from trio_companion.storage.db import StoreStatistics, Synchronous
from trio_companion.storage.documents import (
    ChunkHit,
    DocumentsRepository,
    EmbeddedChunk,
    IndexedDocument,
    NewChunk,
    fts_query,
)
from trio_companion.storage.errors import (
    StorageError,
    StorageIOError,
    StorageOpenError,
    StorageSchemaError,
)
from trio_companion.storage.history import HistoryRepository, Role, StoredTurn, Turn
from trio_companion.storage.meta import MetaRepository
from trio_companion.storage.notes import Note, NoteLimitReached, NotesRepository
from trio_companion.storage.paths import check_writable_dir
from trio_companion.storage.profiles import (
    AddedFacts,
    Affection,
    FactKind,
    ForgetReport,
    ProfileFact,
    ProfilesRepository,
)
from trio_companion.storage.reminders import Reminder, ReminderLimitReached, RemindersRepository
from trio_companion.storage.store import Store, open_store
from trio_companion.storage.summaries import SummariesRepository, Summary

__all__ = [
    "AddedFacts",
    "Affection",
    "ChunkHit",
    "DocumentsRepository",
    "EmbeddedChunk",
    "FactKind",
    "ForgetReport",
    "HistoryRepository",
    "IndexedDocument",
    "MetaRepository",
    "NewChunk",
    "Note",
    "NoteLimitReached",
    "NotesRepository",
    "ProfileFact",
    "ProfilesRepository",
    "Reminder",
    "ReminderLimitReached",
    "RemindersRepository",
    "Role",
    "StorageError",
    "StorageIOError",
    "StorageOpenError",
    "StorageSchemaError",
    "Store",
    "StoreStatistics",
    "StoredTurn",
    "SummariesRepository",
    "Summary",
    "Synchronous",
    "Turn",
    "check_writable_dir",
    "fts_query",
    "open_store",
]
