"""Shared by the storage tests: a deadline, a turn factory, and a SQLite look from outside."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING, Any, Final

from trio_companion.storage import Turn

if TYPE_CHECKING:
    from pathlib import Path

    from trio_companion.storage import Role

# Every async test runs inside `trio.fail_after(DEADLINE_S)`; the slowest takes well under 1 s.
DEADLINE_S: Final = 10.0


def make_turn(
    *,
    channel_id: int = 1,
    author_id: int = 2,
    content: str = "hello",
    role: Role = "user",
    message_id: int | None = None,
) -> Turn:
    return Turn(
        channel_id=channel_id,
        author_id=author_id,
        author_name=f"author {author_id}",
        role=role,
        content=content,
        created_at=1_700_000_000.5,
        message_id=message_id,
    )


def query_fresh(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` on a brand-new connection to `path` (blocking: call it via to_thread)."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()
