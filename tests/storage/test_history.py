from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest
import trio

from tests.storage.helpers import DEADLINE_S, make_turn, query_fresh
from trio_companion.storage import StoredTurn, Turn, open_store

if TYPE_CHECKING:
    from pathlib import Path

_MAX_SNOWFLAKE = 2**64 - 1


async def test_append_then_recent_gives_the_newest_oldest_first(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            ids = [await store.history.append(make_turn(content=f"m{i}")) for i in range(5)]
            recent = await store.history.recent(1, 3)
            everything = await store.history.recent(1, 100)
            assert await store.history.recent(1, 0) == []
    assert ids == sorted(ids)
    assert [turn.content for turn in recent] == ["m2", "m3", "m4"]
    assert [turn.id for turn in everything] == ids
    assert everything[0] == StoredTurn(id=ids[0], **msgspec.structs.asdict(make_turn(content="m0")))


async def test_channels_are_kept_apart(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.history.append_many([make_turn(channel_id=10, content="a")] * 3)
            await store.history.append(make_turn(channel_id=20, content="b"))
            assert await store.history.count(10) == 3
            assert await store.history.count(20) == 1
            assert await store.history.count(30) == 0
            assert await store.history.clear(10) == 3
            assert await store.history.clear(10) == 0
            assert await store.history.count(10) == 0
            assert [t.content for t in await store.history.recent(20, 10)] == ["b"]


async def test_ids_keep_growing_after_a_clear(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            first = await store.history.append(make_turn())
            await store.history.clear(1)
            assert await store.history.append(make_turn()) > first


async def test_append_many_of_nothing_writes_nothing(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            assert await store.history.append_many([]) == []
            assert store.statistics().writes_done == 0


@pytest.mark.parametrize("snowflake", [0, 1, 2**63 - 1, 2**63, _MAX_SNOWFLAKE])
async def test_snowflakes_round_trip(tmp_path: Path, snowflake: int) -> None:
    turn = make_turn(channel_id=snowflake, author_id=snowflake, message_id=snowflake)
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            row_id = await store.history.append(turn)
            assert await store.history.recent(snowflake, 1) == [
                StoredTurn(id=row_id, **msgspec.structs.asdict(turn))
            ]
            assert await store.history.count(snowflake) == 1
            assert await store.history.clear(snowflake) == 1


async def test_snowflakes_are_stored_as_signed_64_bit(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_store(path) as store:
            await store.history.append(make_turn(channel_id=_MAX_SNOWFLAKE, message_id=2**63))
            rows = await trio.to_thread.run_sync(
                query_fresh, path, "SELECT channel_id, message_id FROM history"
            )
    assert rows == [(-1, -(2**63))]


@pytest.mark.parametrize("bad", [-1, 2**64])
async def test_out_of_range_id_is_refused_and_the_batch_rolled_back(
    tmp_path: Path, bad: int
) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            batch = [make_turn(), make_turn(), make_turn(author_id=bad)]
            with pytest.raises(ValueError, match=r"a Discord id must be in 0\.\.2\*\*64-1"):
                await store.history.append_many(batch)
            assert await store.history.count(1) == 0
            with pytest.raises(ValueError, match="a Discord id"):
                await store.history.recent(bad, 1)
            await store.history.append(make_turn())
            assert await store.history.count(1) == 1


async def test_unknown_role_is_refused(tmp_path: Path) -> None:
    turn = make_turn(role="narrator")  # type: ignore[arg-type]
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            with pytest.raises(ValueError, match="role must be one of"):
                await store.history.append(turn)


async def test_negative_limit_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            with pytest.raises(ValueError, match="limit must be 0 or more"):
                await store.history.recent(1, -1)


async def test_concurrent_writers_keep_their_order_and_batches_stay_contiguous(
    tmp_path: Path,
) -> None:
    tasks, per_task, batch_size = 50, 20, 5
    batches: list[list[int]] = []

    def turn(task: int, i: int) -> Turn:
        return make_turn(author_id=task, content=f"{task}:{i}")

    async def writer(task: int) -> None:
        if task % 2:  # odd tasks append one by one, even ones in batches
            for i in range(per_task):
                await store.history.append(turn(task, i))
        else:
            for start in range(0, per_task, batch_size):
                batch = [turn(task, i) for i in range(start, start + batch_size)]
                batches.append(await store.history.append_many(batch))

    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            async with trio.open_nursery() as nursery:
                for task in range(tasks):
                    nursery.start_soon(writer, task)
            rows = await store.history.recent(1, 10 * tasks * per_task)
            writes_done = store.statistics().writes_done
    # Odd tasks made one write per turn, even ones one per batch.
    assert writes_done == tasks // 2 * per_task + tasks // 2 * (per_task // batch_size)

    assert len(rows) == tasks * per_task
    by_task: dict[int, list[str]] = {}
    for row in rows:
        by_task.setdefault(row.author_id, []).append(row.content)
    assert by_task == {t: [f"{t}:{i}" for i in range(per_task)] for t in range(tasks)}
    assert len(batches) == tasks // 2 * (per_task // batch_size)
    content_by_id = {row.id: row.content for row in rows}
    for ids in batches:
        assert ids == list(range(ids[0], ids[0] + batch_size))
        owner, first = content_by_id[ids[0]].split(":")
        assert [content_by_id[i] for i in ids] == [
            f"{owner}:{int(first) + k}" for k in range(batch_size)
        ]


async def test_replace_swaps_a_channels_turns_in_one_transaction(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.history.append_many([make_turn(content=f"old{i}") for i in range(3)])
            await store.history.append(make_turn(channel_id=20, content="elsewhere"))
            writes_before = store.statistics().writes_done
            new = [make_turn(content="new0"), make_turn(content="new1", role="assistant")]
            assert await store.history.replace(1, new) == 3
            assert store.statistics().writes_done == writes_before + 1
            stored = await store.history.recent(1, 10)
            assert [t.content for t in stored] == ["new0", "new1"]
            assert stored[1].id == stored[0].id + 1
            assert [t.content for t in await store.history.recent(20, 10)] == ["elsewhere"]
            # Replacing with nothing is a clear.
            assert await store.history.replace(1, []) == 2
            assert await store.history.count(1) == 0


@pytest.mark.parametrize(
    "bad",
    [
        make_turn(author_id=2**64),
        make_turn(role="narrator"),  # type: ignore[arg-type]
        make_turn(channel_id=20),
    ],
    ids=["bad id", "bad role", "other channel"],
)
async def test_a_refused_replace_keeps_the_old_turns(tmp_path: Path, bad: Turn) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.history.append_many([make_turn(content="kept")] * 2)
            with pytest.raises(ValueError, match=r"Discord id|role must be|channel 20"):
                await store.history.replace(1, [make_turn(content="new"), bad])
            assert [t.content for t in await store.history.recent(1, 10)] == ["kept", "kept"]


async def test_delete_older_than_removes_only_turns_before_the_cutoff(tmp_path: Path) -> None:
    def at(created_at: float, channel_id: int) -> Turn:
        return msgspec.structs.replace(
            make_turn(channel_id=channel_id, content=str(created_at)), created_at=created_at
        )

    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.history.append_many([at(100.0, 1), at(199.5, 2), at(200.0, 1), at(300, 2)])
            writes = store.statistics().writes_done
            assert await store.history.delete_older_than(200.0) == 2
            assert store.statistics().writes_done == writes + 1  # one transaction
            assert await store.history.delete_older_than(200.0) == 0
            left = await store.history.recent(1, 10) + await store.history.recent(2, 10)
    assert sorted(turn.created_at for turn in left) == [200.0, 300.0]
