"""Benchmark: durable writes through the store against plain sqlite3 in a loop.

    python bench/storage_writes.py [--dir DIR] [--synchronous full|normal]

Both sides make the same 1000 single-row history inserts, each its own committed transaction,
on a fresh file with the same pragmas (WAL, the chosen ``synchronous``, foreign keys):

* baseline: one sqlite3 connection on the main thread, ``BEGIN IMMEDIATE; INSERT; COMMIT`` in a
  loop, no trio;
* store: 50 trio tasks appending 20 turns each through `open_store`, so every write hops to a
  worker thread and queues on the write limiter.

The ratio is the price of not blocking the trio thread. With ``synchronous=full`` each commit is
an fsync, which dominates on a real disk; on tmpfs the thread hop dominates. Pass ``--dir`` to
measure the disk the bot's data will live on.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Final

import trio

from trio_companion.storage import StoreStatistics, Synchronous, Turn, open_store
from trio_companion.storage.migrations import migrate

TASKS: Final = 50
PER_TASK: Final = 20
WRITES: Final = TASKS * PER_TASK

# The baseline is plain sqlite3 on purpose, so it spells out the insert the history repository
# makes (snowflakes here are small, so the signed-64-bit mapping is the identity).
_BASELINE_INSERT: Final = (
    "INSERT INTO history (channel_id, author_id, author_name, role, content, created_at, "
    "message_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _turn(task: int, i: int) -> Turn:
    return Turn(
        channel_id=1,
        author_id=task,
        author_name=f"author {task}",
        role="user",
        content=f"message {i} of task {task}",
        created_at=1_700_000_000.0 + i,
        message_id=None,
    )


def baseline(path: Path, synchronous: Synchronous) -> float:
    """Seconds for WRITES inserts on one connection, one commit each."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, path)
        start = time.perf_counter()
        for task in range(TASKS):
            for i in range(PER_TASK):
                turn = _turn(task, i)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    _BASELINE_INSERT,
                    (
                        turn.channel_id,
                        turn.author_id,
                        turn.author_name,
                        turn.role,
                        turn.content,
                        turn.created_at,
                        turn.message_id,
                    ),
                )
                conn.execute("COMMIT")
        return time.perf_counter() - start


async def through_store(path: Path, synchronous: Synchronous) -> tuple[float, int, StoreStatistics]:
    """Seconds for WRITES appends from TASKS concurrent tasks, the longest write queue seen, and
    the store's statistics at the end."""
    peak_waiting = 0
    async with open_store(path, synchronous=synchronous) as store:

        async def writer(task: int) -> None:
            nonlocal peak_waiting
            for i in range(PER_TASK):
                peak_waiting = max(peak_waiting, store.statistics().writes_waiting)
                await store.history.append(_turn(task, i))

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for task in range(TASKS):
                nursery.start_soon(writer, task)
        elapsed = trio.current_time() - start
        statistics = store.statistics()
        if await store.history.count(1) != WRITES:
            raise AssertionError("the store lost writes")
    return elapsed, peak_waiting, statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the test files")
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    synchronous: Synchronous = args.synchronous
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="storage-bench-") as directory:
        base_s = baseline(Path(directory) / "baseline.sqlite3", synchronous)
        store_s, peak_waiting, statistics = trio.run(
            through_store, Path(directory) / "store.sqlite3", synchronous
        )
        print(f"directory: {directory}  synchronous={synchronous}  writes: {WRITES}")
    print(f"baseline (sqlite3 loop, 1 commit each): {WRITES / base_s:10.0f} writes/s")
    print(f"store ({TASKS} tasks x {PER_TASK} appends):       {WRITES / store_s:10.0f} writes/s")
    print(f"store / baseline: {base_s / store_s:.2f}x the baseline's throughput")
    print(f"longest write queue seen: {peak_waiting} tasks")
    print(f"store statistics at the end: {statistics}")


if __name__ == "__main__":
    main()
