"""ProfilesRepository against a real file: bounds, dedupe, affection, forget_user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, make_turn, query_fresh
from trio_companion.storage import ForgetReport, open_store
from trio_companion.storage.profiles import normalize_fact

if TYPE_CHECKING:
    from pathlib import Path

ANN: Final = 2**64 - 5  # above 2**63: stored negative
BOB: Final = 7
T0: Final = 1_700_000_000.0


def test_normalize_fact() -> None:
    assert normalize_fact("  Likes   TEA. ") == "likes tea"
    assert normalize_fact("likes tea!?") == normalize_fact("Likes tea")


async def test_add_dedupes_and_keeps_the_newest_within_the_cap(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            first = await store.profiles.add_facts(
                ANN,
                [("interest", "hiking"), ("interest", "Hiking."), ("fact", "has a cat")],
                source="conversation",
                cap=3,
                channel_id=ANN,
                created_at=T0,
            )
            again = await store.profiles.add_facts(
                ANN,
                [("interest", "HIKING"), ("interest", "chess"), ("interest", "tea")],
                source="conversation",
                cap=3,
            )
            over = await store.profiles.add_facts(
                ANN, [("interest", "go"), ("interest", "jazz")], source="conversation", cap=3
            )
            interests = await store.profiles.list_facts(ANN, "interest", limit=10)
            everything = await store.profiles.list_facts(ANN, limit=10)
            assert await store.profiles.count(BOB) == 0
    assert [f.text for f in first.added] == ["hiking", "has a cat"]
    assert first.duplicates == 1
    assert first.added[0].channel_id == ANN
    assert first.added[0].user_id == ANN
    assert first.added[0].created_at == T0
    assert (len(again.added), again.duplicates, again.dropped) == (2, 1, 0)
    assert (len(over.added), over.dropped) == (2, 2)
    assert [f.text for f in interests] == ["jazz", "go", "tea"]  # newest first, oldest dropped
    assert {f.kind for f in everything} == {"interest", "fact"}
    assert len(everything) == 4  # the fact was not trimmed by the interests' cap


async def test_a_batch_larger_than_the_cap_reports_only_what_it_kept(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            result = await store.profiles.add_facts(
                ANN, [("fact", f"f{i}") for i in range(5)], source="conversation", cap=2
            )
    assert [f.text for f in result.added] == ["f3", "f4"]
    assert result.dropped == 3


async def test_bad_input_stores_nothing(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            with pytest.raises(ValueError, match="kind must be one of"):
                await store.profiles.add_facts(
                    ANN,
                    [("fact", "ok"), ("secret", "no")],  # type: ignore[list-item]
                    source="x",
                    cap=5,
                )
            with pytest.raises(ValueError, match="cap"):
                await store.profiles.add_facts(ANN, [("fact", "ok")], source="x", cap=-1)
            assert await store.profiles.count(ANN) == 0


async def test_affection_updates_in_one_transaction(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            assert await store.profiles.affection(ANN) is None
            await store.profiles.update_affection(ANN, lambda s: s + 5, at=T0)
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(store.profiles.update_affection, ANN, lambda s: s + 1)
            stored = await store.profiles.affection(ANN)
    assert stored is not None
    assert (stored.user_id, stored.score, stored.interactions) == (ANN, 15.0, 11)


async def test_forget_user_deletes_everything_of_one_user_only(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_store(path) as store:
            for user in (ANN, BOB):
                await store.profiles.add_facts(
                    user, [("fact", "a"), ("instruction", "b")], source="remember", cap=5
                )
                await store.profiles.update_affection(user, lambda s: s + 1)
                await store.notes.add(user, "general", "note", cap=10)
                await store.reminders.add(user, 1, None, "x", T0, cap=10)
                await store.history.append_many(
                    [make_turn(author_id=user), make_turn(author_id=user, channel_id=9)]
                )
                await store.meta.set(f"user:{user}:timezone", "Europe/Paris")
                await store.meta.set(f"user:{user}:other", "1")
            await store.history.append(make_turn(author_id=99, role="assistant"))
            await store.meta.set(f"user:{ANN}0:timezone", "UTC")  # another id with ANN's prefix
            report = await store.profiles.forget_user(ANN)
            again = await store.profiles.forget_user(ANN)
        counts = {
            table: await trio.to_thread.run_sync(query_fresh, path, sql)
            for table, sql in {
                "facts": "SELECT count(*) FROM profile_facts",
                "affection": "SELECT count(*) FROM user_affection",
                "notes": "SELECT count(*) FROM notes",
                "reminders": "SELECT count(*) FROM reminders",
                "history": "SELECT count(*) FROM history",
                "meta": "SELECT key FROM meta WHERE key LIKE 'user:%' ORDER BY key",
            }.items()
        }
    assert report == ForgetReport(profile=2, affection=1, notes=1, reminders=1, history=2, meta=2)
    assert report.total == 9
    assert again.total == 0
    assert counts["facts"] == [(2,)]
    assert counts["affection"] == [(1,)]
    assert counts["notes"] == [(1,)]
    assert counts["reminders"] == [(1,)]
    assert counts["history"] == [(3,)]  # Bob's two and the assistant's
    assert counts["meta"] == [
        (f"user:{ANN}0:timezone",),
        (f"user:{BOB}:other",),
        (f"user:{BOB}:timezone",),
    ]


async def test_history_delete_by_author(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.history.append_many(
                [make_turn(author_id=ANN), make_turn(author_id=BOB), make_turn(author_id=ANN)]
            )
            deleted = await store.history.delete_by_author(ANN)
            left = await store.history.recent(1, 10)
    assert deleted == 2
    assert [t.author_id for t in left] == [BOB]
