"""Identify concurrency buckets and the daily session-start budget, on MockClock."""

from __future__ import annotations

import trio
import trio.testing

from trio_companion.gateway.identify import IdentifyGate


async def identify_times(gate: IdentifyGate, shard_ids: list[int]) -> list[tuple[int, float]]:
    """(shard id, time) of each identify, in the order they were allowed."""
    times: list[tuple[int, float]] = []

    async def one(shard_id: int) -> None:
        await gate.wait_turn(shard_id)
        times.append((shard_id, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for shard_id in shard_ids:
            nursery.start_soon(one, shard_id)
            await trio.testing.wait_all_tasks_blocked()
    return times


async def test_one_identify_per_bucket_per_5_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        start = trio.current_time()
        gate = IdentifyGate(2, total=1000, remaining=1000, reset_after=0)
        times = await identify_times(gate, [0, 1, 2, 3, 4])
    offsets = {k: round(v - start, 6) for k, v in times}
    # Buckets 0 (shards 0, 2, 4) and 1 (shards 1, 3) each go once per 5 s, in order.
    assert offsets == {0: 0.0, 1: 0.0, 2: 5.0, 3: 5.0, 4: 10.0}
    assert gate.statistics().remaining == 995


async def test_waits_for_the_daily_reset_when_no_starts_are_left(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10_000):
        start = trio.current_time()
        gate = IdentifyGate(1, total=1000, remaining=1, reset_after=3600)
        times = await identify_times(gate, [0, 0])
    # The second identify of the day waited for the reset, an hour later.
    assert [round(t - start) for _, t in times] == [0, 3600]
    assert gate.statistics().identifies == 2
