"""User profiles: what the companion learned about each user, and how close they are.

``profile_facts`` holds short texts per user, each with a kind (a fact, an interest, a
preference, or an ``instruction`` the user gave with ``/remember``), where it came from and
when. Every read and write names the ``user_id``: a profile loads by the index on
``(user_id, kind, id)``, never by scanning everybody's. `ProfilesRepository.add_facts` keeps a
profile bounded: it skips texts that are already there (compared after `normalize_fact`) and,
in the same write transaction, drops the oldest of a kind beyond the caller's ``cap``.

``user_affection`` holds one score per user (see `trio_companion.services.profiles.affection`
for what moves it); `ProfilesRepository.update_affection` reads, updates and writes it in one
transaction, so concurrent updates never lose one another.

`ProfilesRepository.forget_user` deletes everything stored about a user — profile, affection,
notes, reminders, the turns they wrote in the chat history and their ``user:{id}:*`` meta keys —
in ONE write transaction: all of it is gone, or (on a failure) none of it. This is the one place
that deletes from other repositories' tables, because only one transaction makes "forget me"
all-or-nothing. Snowflakes are stored signed, as `trio_companion.storage.history` explains.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, final, get_args

import msgspec

from trio_companion.storage.history import _from_sql, _to_sql

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from trio_companion.storage.db import Database

__all__ = [
    "AddedFacts",
    "Affection",
    "FactKind",
    "ForgetReport",
    "ProfileFact",
    "ProfilesRepository",
    "normalize_fact",
]

FactKind: TypeAlias = Literal["fact", "interest", "preference", "instruction"]

FACT_KINDS: Final = frozenset(get_args(FactKind))

_COLUMNS: Final = "id, user_id, kind, text, source, channel_id, created_at"
_INSERT: Final = (
    "INSERT INTO profile_facts (user_id, kind, text, source, channel_id, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_TEXTS: Final = "SELECT text FROM profile_facts WHERE user_id = ? AND kind = ?"
# Keep the newest `cap` of one kind (ids grow with insertion, AUTOINCREMENT).
_TRIM: Final = (
    "DELETE FROM profile_facts WHERE user_id = ? AND kind = ? AND id NOT IN ("
    "SELECT id FROM profile_facts WHERE user_id = ? AND kind = ? ORDER BY id DESC LIMIT ?)"
)
_LIST: Final = f"SELECT {_COLUMNS} FROM profile_facts WHERE user_id = ? ORDER BY id DESC LIMIT ?"
_LIST_KIND: Final = (
    f"SELECT {_COLUMNS} FROM profile_facts WHERE user_id = ? AND kind = ? ORDER BY id DESC LIMIT ?"
)
_COUNT: Final = "SELECT count(*) FROM profile_facts WHERE user_id = ?"
_GET_AFFECTION: Final = (
    "SELECT user_id, score, interactions, updated_at FROM user_affection WHERE user_id = ?"
)
_SET_AFFECTION: Final = (
    "INSERT INTO user_affection (user_id, score, interactions, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET score = excluded.score, "
    "interactions = excluded.interactions, updated_at = excluded.updated_at"
)
# forget_user: every table that holds something about one user. The meta pattern is built from
# the decimal id (digits only), so GLOB sees no wildcard from it.
_FORGET: Final = (
    ("profile", "DELETE FROM profile_facts WHERE user_id = ?"),
    ("affection", "DELETE FROM user_affection WHERE user_id = ?"),
    ("notes", "DELETE FROM notes WHERE user_id = ?"),
    ("reminders", "DELETE FROM reminders WHERE user_id = ?"),
    ("history", "DELETE FROM history WHERE author_id = ?"),
)
_FORGET_META: Final = "DELETE FROM meta WHERE key GLOB ?"


@final
class ProfileFact(msgspec.Struct, frozen=True, kw_only=True):
    """One stored line of a profile."""

    id: int
    user_id: int
    kind: FactKind
    text: str
    source: str
    """Where it came from: ``conversation`` (extraction) or ``remember`` (the command)."""
    channel_id: int | None
    """The channel it was learned in, if any."""
    created_at: float
    """Unix time in seconds."""


@final
class AddedFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What `ProfilesRepository.add_facts` did."""

    added: tuple[ProfileFact, ...]
    duplicates: int
    """Texts skipped because the profile already had them (or the batch had them twice)."""
    dropped: int
    """Older entries deleted to stay within the cap."""


@final
class Affection(msgspec.Struct, frozen=True, kw_only=True):
    """A user's affection score (in [-100, 100]) and how many messages moved it."""

    user_id: int
    score: float
    interactions: int
    updated_at: float


@final
class ForgetReport(msgspec.Struct, frozen=True, kw_only=True):
    """How many rows `ProfilesRepository.forget_user` deleted, per kind of data."""

    profile: int
    affection: int
    notes: int
    reminders: int
    history: int
    meta: int

    @property
    def total(self) -> int:
        return (
            self.profile + self.affection + self.notes + self.reminders + self.history + self.meta
        )


def normalize_fact(text: str) -> str:
    """The form two texts are compared in: case-folded, whitespace collapsed, trailing
    punctuation removed ("Likes tea." and "likes  tea" are one fact)."""
    return " ".join(text.split()).casefold().rstrip(".!?;,: ")


@final
class ProfilesRepository:
    """The ``profile_facts`` and ``user_affection`` tables (and `forget_user`).

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`; an id outside 0..2**64-1, an unknown kind or a negative
    cap or limit raises `ValueError` and nothing of that call is stored.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_facts(
        self,
        user_id: int,
        facts: Sequence[tuple[FactKind, str]],
        *,
        source: str,
        cap: int,
        channel_id: int | None = None,
        created_at: float | None = None,
    ) -> AddedFacts:
        """Store `facts` (kind, text) for `user_id`, skipping ones the profile already has;
        then drop the oldest of each kind beyond `cap`, all in one transaction."""
        if cap < 0:
            raise ValueError(f"cap must be 0 or more, not {cap}")
        for kind, _text in facts:
            if kind not in FACT_KINDS:
                raise ValueError(f"kind must be one of {sorted(FACT_KINDS)}, not {kind!r}")
        batch = tuple((kind, text.strip()) for kind, text in facts if text.strip())
        user = _to_sql(user_id)
        channel = None if channel_id is None else _to_sql(channel_id)
        when = time.time() if created_at is None else created_at

        def insert(conn: sqlite3.Connection) -> AddedFacts:
            added: list[ProfileFact] = []
            duplicates = dropped = 0
            seen: dict[str, set[str]] = {}
            for kind, text in batch:
                if kind not in seen:
                    rows = conn.execute(_TEXTS, (user, kind)).fetchall()
                    seen[kind] = {normalize_fact(row[0]) for row in rows}
                key = normalize_fact(text)
                if key in seen[kind]:
                    duplicates += 1
                    continue
                seen[kind].add(key)
                row_id = conn.execute(_INSERT, (user, kind, text, source, channel, when)).lastrowid
                if row_id is None:  # pragma: no cover - SQLite sets it after every INSERT
                    raise AssertionError("INSERT did not set lastrowid")
                added.append(
                    ProfileFact(
                        id=row_id,
                        user_id=user_id,
                        kind=kind,
                        text=text,
                        source=source,
                        channel_id=channel_id,
                        created_at=when,
                    )
                )
            for trimmed in seen:
                dropped += conn.execute(_TRIM, (user, trimmed, user, trimmed, cap)).rowcount
            kept = tuple(fact for fact in added if _still_there(conn, fact.id))
            return AddedFacts(added=kept, duplicates=duplicates, dropped=dropped)

        return await self._db.write(insert)

    async def list_facts(
        self, user_id: int, kind: FactKind | None = None, *, limit: int
    ) -> list[ProfileFact]:
        """Up to `limit` entries of `user_id`'s profile (only `kind`'s if given), newest first."""
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        if kind is not None and kind not in FACT_KINDS:
            raise ValueError(f"kind must be one of {sorted(FACT_KINDS)}, not {kind!r}")
        user = _to_sql(user_id)

        def select(conn: sqlite3.Connection) -> list[ProfileFact]:
            if kind is None:
                rows = conn.execute(_LIST, (user, limit)).fetchall()
            else:
                rows = conn.execute(_LIST_KIND, (user, kind, limit)).fetchall()
            return [_decode(row) for row in rows]

        return await self._db.read(select)

    async def count(self, user_id: int) -> int:
        """How many profile entries `user_id` has, of every kind."""
        user = _to_sql(user_id)

        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute(_COUNT, (user,)).fetchone()[0])

        return await self._db.read(count)

    async def affection(self, user_id: int) -> Affection | None:
        """`user_id`'s affection, or None before their first counted message."""
        user = _to_sql(user_id)

        def select(conn: sqlite3.Connection) -> Affection | None:
            row = conn.execute(_GET_AFFECTION, (user,)).fetchone()
            return None if row is None else _decode_affection(row)

        return await self._db.read(select)

    async def update_affection(
        self, user_id: int, update: Callable[[float], float], *, at: float | None = None
    ) -> Affection:
        """Set `user_id`'s score to ``update(old score)`` (0.0 for a new user), count one
        interaction, and return the result; read and write in one transaction.

        `update` runs in the worker thread: it must be a quick pure function.
        """
        user = _to_sql(user_id)
        when = time.time() if at is None else at

        def upsert(conn: sqlite3.Connection) -> Affection:
            row = conn.execute(_GET_AFFECTION, (user,)).fetchone()
            old = None if row is None else _decode_affection(row)
            score = update(0.0 if old is None else old.score)
            interactions = 1 if old is None else old.interactions + 1
            conn.execute(_SET_AFFECTION, (user, score, interactions, when))
            return Affection(
                user_id=user_id, score=score, interactions=interactions, updated_at=when
            )

        return await self._db.write(upsert)

    async def forget_user(self, user_id: int) -> ForgetReport:
        """Delete everything stored about `user_id` in one transaction; return the counts.

        Their profile and affection, their notes, all their reminders (delivered ones too), the
        chat-history turns they wrote (in every channel; the bot's answers stay) and the meta
        keys ``user:{user_id}:*``. Other users' rows are untouched.
        """
        user = _to_sql(user_id)
        pattern = f"user:{user_id:d}:*"

        def delete(conn: sqlite3.Connection) -> ForgetReport:
            counts = {name: conn.execute(sql, (user,)).rowcount for name, sql in _FORGET}
            counts["meta"] = conn.execute(_FORGET_META, (pattern,)).rowcount
            return ForgetReport(**counts)

        return await self._db.write(delete)


def _still_there(conn: sqlite3.Connection, fact_id: int) -> bool:
    # A batch larger than the cap trims some of its own rows; report only the kept ones.
    row = conn.execute("SELECT 1 FROM profile_facts WHERE id = ?", (fact_id,)).fetchone()
    return row is not None


def _decode(row: tuple[Any, ...]) -> ProfileFact:
    # The CHECK constraint admits only FactKind values.
    row_id, user_id, kind, text, source, channel_id, created_at = row
    return ProfileFact(
        id=row_id,
        user_id=_from_sql(user_id),
        kind=kind,
        text=text,
        source=source,
        channel_id=None if channel_id is None else _from_sql(channel_id),
        created_at=created_at,
    )


def _decode_affection(row: tuple[Any, ...]) -> Affection:
    user_id, score, interactions, updated_at = row
    return Affection(
        user_id=_from_sql(user_id),
        score=float(score),
        interactions=int(interactions),
        updated_at=float(updated_at),
    )
