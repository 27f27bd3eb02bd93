"""The errors the storage package raises on purpose.

::

    CompanionError                  (trio_companion.errors)
    └── StorageError                (this module: root of the storage package)
        ├── StorageOpenError        open_store: the file or its directory cannot be used
        ├── StorageSchemaError      open_store: the schema is newer than this code, or an
        │                           upgrade of it failed
        └── StorageIOError          repository methods: SQLite reported a failure of the
                                    environment (disk full, I/O error, file locked or damaged)

Only failures the user can do something about become a `StorageError`. A misuse of the API is a
bug and stays what it is: `ValueError` for an argument out of range (a snowflake beyond 2**64-1,
a negative limit), `trio.ClosedResourceError` for a call on a store that `open_store` already
closed, and any other `sqlite3.Error` (a constraint or SQL error) propagates unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from trio_companion.errors import CompanionError

if TYPE_CHECKING:
    from pathlib import Path


class StorageError(CompanionError):
    """Root of the storage package's errors: the database cannot be opened, upgraded or used."""


@final
class StorageOpenError(StorageError):
    """Raised by `open_store` when the database file or its directory cannot be used.

    ``reason`` is a clause saying what is wrong and what to do, e.g. ``"directory /data is not
    writable (Read-only file system); choose a writable data path"``; ``str(error)`` puts it after
    the path. The raw SQLite or OS error, if any, is the ``__cause__``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"Cannot open the database {path}: {reason}.")


@final
class StorageSchemaError(StorageError):
    """Raised by `open_store` when the database's schema cannot be brought to the current one.

    Either the file was written by a newer trio_companion (``version`` is then newer than any
    migration this code knows) or applying a migration failed, in which case that migration was
    rolled back and the file stays at ``version``.
    """

    def __init__(self, path: Path, version: int, reason: str) -> None:
        self.path = path
        self.version = version
        self.reason = reason
        super().__init__(f"Cannot open the database {path}: {reason}.")


@final
class StorageIOError(StorageError):
    """Raised by repository methods when SQLite reports a failure of its environment.

    Covers a full disk, an I/O error, a file that became read-only, a lock held too long by another
    process, and damage found while reading. A write that raises this was rolled back: nothing of
    it is stored. ``reason`` says what happened and what to do.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"The database {path} failed: {reason}.")
