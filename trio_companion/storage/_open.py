"""Opening the database file: checks that turn every failure into a clear `StorageOpenError`.

Order matters for the messages: the directory is probed first (a read-only mount, a regular file
in the way), then SQLite opens the file, and the first PRAGMA that reads it tells a damaged file
or a non-database apart. Only then is the schema migrated and the read connection opened.
"""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack
from typing import TYPE_CHECKING, Final

from trio_companion.storage._sqlite import environment_failure
from trio_companion.storage.errors import StorageOpenError
from trio_companion.storage.migrations import migrate
from trio_companion.storage.paths import find_dir_problem

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from trio_companion.storage.db import Synchronous
    from trio_companion.storage.migrations import Migration

# Our own writers never contend for SQLite's lock (they queue on the limiter); this only bounds
# how long another process holding it (a backup tool, the sqlite3 shell) can stall a call.
_BUSY_TIMEOUT_S: Final = 5.0
# UPSERT (INSERT … ON CONFLICT DO UPDATE), used by the meta repository, arrived in SQLite 3.24.
_MIN_SQLITE: Final = (3, 24, 0)


def open_connections(
    path: Path, synchronous: Synchronous, migrations: Sequence[Migration]
) -> tuple[sqlite3.Connection, sqlite3.Connection, int]:
    """Open, check and migrate the file at `path`; return (write, read, schema version).

    Blocking: run it in a worker thread. Raises `StorageOpenError` or `StorageSchemaError`, never
    a bare `sqlite3.Error`, and closes whatever it opened before raising.
    """
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        needed = ".".join(map(str, _MIN_SQLITE))
        raise StorageOpenError(
            path, f"SQLite {sqlite3.sqlite_version} is too old; {needed} or newer is needed"
        )
    _prepare_directory(path)
    with ExitStack() as on_failure:
        try:
            write_conn = _connect(path, synchronous, on_failure)
            # The first statement that reads the file: a damaged or foreign file fails here.
            (mode,) = write_conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StorageOpenError(
                    path,
                    f"its filesystem does not support write-ahead logging (journal mode "
                    f"{mode}); choose a data path on a local disk",
                )
            schema_version = migrate(write_conn, path, migrations)
            read_conn = _connect(path, synchronous, on_failure)
            read_conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            reason = environment_failure(exc) or f"SQLite failed ({exc}); please report this bug"
            raise StorageOpenError(path, reason) from exc
        on_failure.pop_all()  # success: the connections now belong to the caller
    return write_conn, read_conn, schema_version


def _prepare_directory(path: Path) -> None:
    problem = find_dir_problem(path.parent)
    if problem is not None:
        raise StorageOpenError(path, problem.describe())
    if path.is_dir():
        raise StorageOpenError(path, "it is a directory; give the path of a database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create directory {path.parent} ({exc.strerror or exc})"
        raise StorageOpenError(path, reason) from exc


def _connect(path: Path, synchronous: Synchronous, on_failure: ExitStack) -> sqlite3.Connection:
    # Autocommit mode: run_transaction issues BEGIN/COMMIT itself. check_same_thread=False: see
    # the theory of operation in trio_companion.storage.db.
    conn = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    on_failure.callback(conn.close)
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn
