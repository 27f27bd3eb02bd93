"""Small synchronous SQLite helpers shared by the engine and the migrations.

Everything here blocks: it runs in a worker thread that holds the connection's limiter.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_T = TypeVar("_T")

# SQLite's primary result codes that describe the environment rather than our SQL, with what a
# user can do about each. Extended codes (SQLITE_IOERR_WRITE, …) match by prefix.
# https://www.sqlite.org/rescode.html
_ENVIRONMENT_FAILURES: Final = (
    ("SQLITE_FULL", "the disk is full; free some space"),
    ("SQLITE_IOERR", "the disk reported an I/O error; check the disk and the filesystem"),
    ("SQLITE_READONLY", "the file is read-only; check its permissions and its filesystem"),
    ("SQLITE_CANTOPEN", "SQLite could not open the file; check that the path is accessible"),
    ("SQLITE_BUSY", "the database is locked by another process; stop that process"),
    ("SQLITE_LOCKED", "the database is locked by another process; stop that process"),
    ("SQLITE_PROTOCOL", "the database is locked by another process; stop that process"),
    ("SQLITE_NOMEM", "SQLite ran out of memory"),
    (
        "SQLITE_NOTADB",
        "it is not a SQLite database or is damaged; move it away or restore a backup",
    ),
    (
        "SQLITE_CORRUPT",
        "it is not a SQLite database or is damaged; move it away or restore a backup",
    ),
)


def environment_failure(exc: sqlite3.Error) -> str | None:
    """Say what the user can do about `exc`, or None if it is a bug (bad SQL, a constraint)."""
    name = getattr(exc, "sqlite_errorname", None)
    if not isinstance(name, str):
        return None
    for prefix, reason in _ENVIRONMENT_FAILURES:
        if name.startswith(prefix):
            return reason
    return None


def run_transaction(
    conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T], *, begin: str
) -> _T:
    """Run ``fn(conn)`` between `begin` and COMMIT; roll back and re-raise if anything fails.

    `conn` must be in autocommit mode (``isolation_level=None``) so that the sqlite3 module opens
    no transaction of its own. When this returns, COMMIT has completed.
    """
    conn.execute(begin)
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException as exc:
        # A failed COMMIT (SQLITE_BUSY) leaves the transaction open; other failures may already
        # have ended it, hence the check.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as rollback_exc:
                exc.add_note(f"the rollback failed too: {rollback_exc}")
        raise
    return result


def split_statements(script: str) -> Iterator[str]:
    """Yield the statements of `script` one by one, trigger bodies kept whole.

    `sqlite3.Connection.executescript` would do this, but it commits any open transaction first,
    so a migration could not share one transaction with its ``user_version`` bump.
    """
    *pieces, rest = script.split(";")
    pending = ""
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if (statement := pending.strip()) != ";":
                yield statement
            pending = ""
    # Only whitespace and comments may follow the last complete statement.
    if (pending + rest).strip() and not _only_comments(pending + rest):
        raise ValueError(f"incomplete SQL statement at the end of the script: {pending + rest!r}")


def _only_comments(sql: str) -> bool:
    lines = (line.strip() for line in sql.splitlines())
    return all(not line or line.startswith("--") for line in lines)
