"""The shutdown protocol on trio's MockClock: refuse new work, drain, cancel after the grace."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_companion.lifecycle import Lifecycle, ShuttingDown, wait_then_cancel


async def test_work_is_refused_once_stopping(autojump_clock: trio.testing.MockClock) -> None:
    lifecycle = Lifecycle()
    with lifecycle.work("first"):
        assert lifecycle.statistics().in_flight_names == ("first",)
    lifecycle.request_stop("test")
    lifecycle.request_stop("ignored: the first reason is kept")
    assert lifecycle.reason == "test"
    with pytest.raises(ShuttingDown, match="shutting down; second was not started"):  # noqa: SIM117
        with lifecycle.work("second"):
            pass  # pragma: no cover
    assert lifecycle.statistics().in_flight == 0


async def test_in_flight_work_finishes_within_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lifecycle = Lifecycle()
    finished: list[float] = []

    async def job(seconds: float) -> None:
        with lifecycle.work(f"job {seconds}"):
            await trio.sleep(seconds)
            finished.append(trio.current_time())

    with trio.fail_after(100):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(job, 3.0)
            nursery.start_soon(job, 4.0)
            nursery.start_soon(trio.sleep_forever)  # a listener: ended by cancellation only
            await trio.testing.wait_all_tasks_blocked()
            lifecycle.request_stop("test")
            await wait_then_cancel(lifecycle, 10.0, nursery.cancel_scope)
            stopped_at = trio.current_time()
    assert finished == [start + 3.0, start + 4.0]
    # Cancelled as soon as the work drained, not at the end of the grace period.
    assert stopped_at == start + 4.0


async def test_work_past_grace_is_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    lifecycle = Lifecycle()
    outcome: list[str] = []

    async def slow() -> None:
        with lifecycle.work("slow"):
            try:
                await trio.sleep(60)
                outcome.append("finished")  # pragma: no cover
            except trio.Cancelled:
                outcome.append("cancelled")
                raise

    with trio.fail_after(100):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()
            lifecycle.request_stop("test")
            await wait_then_cancel(lifecycle, 5.0, nursery.cancel_scope)
    assert outcome == ["cancelled"]
    assert trio.current_time() == start + 5.0
    assert lifecycle.statistics().in_flight == 0


async def test_drained_waits_for_new_work_after_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lifecycle = Lifecycle()
    with trio.fail_after(1):
        await lifecycle.wait_drained()  # nothing in flight: returns at once
    with lifecycle.work("x"):
        with trio.move_on_after(1) as waited:
            await lifecycle.wait_drained()
        assert waited.cancelled_caught
    with trio.fail_after(1):
        await lifecycle.wait_drained()
