"""The gateway send budget: 117 ordinary sends per 60 s, 3 more for heartbeats."""

from __future__ import annotations

import trio
import trio.testing

from trio_companion.gateway.shard import SendBudget


async def test_ordinary_sends_leave_room_for_heartbeats(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(600):
        budget = SendBudget()
        start = trio.current_time()
        for _ in range(117):
            await budget.acquire(priority=False)
        assert trio.current_time() == start
        for _ in range(3):  # heartbeats still go out at once
            await budget.acquire(priority=True)
        assert trio.current_time() == start
        assert budget.used == 120
        await budget.acquire(priority=True)  # the window is full: wait for the oldest to age out
        assert trio.current_time() == start + 60


async def test_a_burst_is_spread_over_windows(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        budget = SendBudget()
        start = trio.current_time()
        times = []
        for _ in range(300):
            await budget.acquire(priority=False)
            times.append(trio.current_time() - start)
        # No 60 s window ever holds more than 117 ordinary sends.
        for i, t in enumerate(times):
            in_window = [u for u in times[: i + 1] if u > t - 60]
            assert len(in_window) <= 117
        assert times[-1] == 120.0
