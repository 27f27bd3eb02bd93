"""`LLMLimits`: concurrency and a sliding per-minute budget on trio's clock (MockClock)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_companion.services.llm.errors import LLMBusy
from trio_companion.services.llm.limits import WINDOW, LLMLimits, LLMLimitsStatistics


async def test_121st_request_waits_until_the_window_frees(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = LLMLimits(max_concurrency=200, requests_per_minute=120)
    entered: list[float] = []
    with trio.fail_after(WINDOW * 3):
        t0 = trio.current_time()

        async def request(delay: float) -> None:
            await trio.sleep(delay)
            async with limits.slot():
                entered.append(trio.current_time() - t0)

        async with trio.open_nursery() as nursery:
            for i in range(121):
                nursery.start_soon(request, i * 0.1)  # 120 starts spread over 12 s
    assert entered[:120] == pytest.approx([i * 0.1 for i in range(120)])
    # The 121st asked at 12.0 s; the window frees when the first start (0.0 s) is 60 s old.
    assert entered[120] == pytest.approx(WINDOW)


async def test_window_slides_rather_than_resetting(autojump_clock: trio.testing.MockClock) -> None:
    limits = LLMLimits(max_concurrency=10, requests_per_minute=2)
    entered: list[float] = []
    with trio.fail_after(WINDOW * 5):
        for _ in range(5):
            async with limits.slot():
                entered.append(trio.current_time())
            await trio.sleep(1)
    start = entered[0]
    assert [t - start for t in entered] == pytest.approx([0, 1, 60, 61, 120])


async def test_concurrency_is_limited_and_waiters_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = LLMLimits(max_concurrency=2, requests_per_minute=1000)
    running = 0
    most = 0
    order: list[int] = []
    with trio.fail_after(60):

        async def work(i: int) -> None:
            nonlocal running, most
            async with limits.slot():
                order.append(i)
                running += 1
                most = max(most, running)
                await trio.sleep(1)
                running -= 1

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(work, i)
                await trio.testing.wait_all_tasks_blocked()
            stats = limits.statistics()
            assert stats.running == 2
            assert stats.waiting_for_concurrency == 4
        elapsed = trio.current_time()
    assert most == 2
    # Two tasks released at the same instant start in either order (trio shuffles them).
    assert [sorted(order[i : i + 2]) for i in (0, 2, 4)] == [[0, 1], [2, 3], [4, 5]]
    assert elapsed == pytest.approx(3)


async def test_statistics_while_waiting_for_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = LLMLimits(max_concurrency=4, requests_per_minute=1)
    with trio.fail_after(WINDOW * 2):
        async with limits.slot():
            pass
        async with trio.open_nursery() as nursery:

            async def second() -> None:
                async with limits.slot():
                    pass

            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            assert limits.statistics() == LLMLimitsStatistics(
                max_concurrency=4,
                running=1,
                waiting_for_concurrency=0,
                waiting_for_budget=1,
                requests_per_minute=1,
                used_in_window=1,
                budget_frees_in=WINDOW,
            )
        stats = limits.statistics()
    assert (stats.running, stats.waiting_for_budget, stats.used_in_window) == (0, 0, 1)


async def test_cancelled_waiter_takes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    limits = LLMLimits(max_concurrency=1, requests_per_minute=1)
    with trio.fail_after(WINDOW * 2):
        async with limits.slot():
            pass
        with trio.move_on_after(10) as scope:
            async with limits.slot():
                pytest.fail("the budget was spent")
        assert scope.cancelled_caught
        stats = limits.statistics()
        assert (stats.running, stats.waiting_for_budget, stats.used_in_window) == (0, 0, 1)
        async with limits.slot():  # still frees at 60 s, not later
            assert trio.current_time() == pytest.approx(WINDOW)


async def test_slot_nowait(autojump_clock: trio.testing.MockClock) -> None:
    limits = LLMLimits(max_concurrency=1, requests_per_minute=2)
    with trio.fail_after(WINDOW * 2):
        with limits.slot_nowait():
            with pytest.raises(LLMBusy) as busy, limits.slot_nowait():
                pass  # pragma: no cover
            assert busy.value.retry_after is None  # concurrency, not the budget
        await trio.sleep(15)
        with limits.slot_nowait():
            pass
        with pytest.raises(LLMBusy) as busy, limits.slot_nowait():
            pass  # pragma: no cover
        assert busy.value.retry_after == pytest.approx(WINDOW - 15)
        assert str(busy.value) == "The LLM is busy right now: try again in 45 seconds."
        await trio.sleep(WINDOW - 15)
        with limits.slot_nowait():
            pass


async def test_one_task_may_hold_two_slots(autojump_clock: trio.testing.MockClock) -> None:
    limits = LLMLimits(max_concurrency=2, requests_per_minute=10)
    with trio.fail_after(5):
        async with limits.slot(), limits.slot():
            assert limits.statistics().running == 2


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LLMLimits(0, 10)
