"""ReminderScheduler against the real store, on the real clock.

Storage works in worker threads, and MockClock's autojump would count a task waiting for a
thread as idle, so these run on the real clock with reminders due a few tenths of a second
ahead; each test takes well under a second. "On time" means delivered no earlier than due_at
and less than `LATE` seconds after it, both read on the wall clock the scheduler uses.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from trio_companion.services.reminders.scheduler import ReminderScheduler
from trio_companion.storage import Reminder, Store, open_store

DEADLINE = 10
LATE = 1.0
CAP = 100


@dataclass
class Recorder:
    """The `deliver` callback: records what was sent and when; fails for texts in `failing`."""

    sent: list[tuple[Reminder, float]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    changed: trio.Event = field(default_factory=trio.Event)

    async def __call__(self, reminder: Reminder) -> None:
        if reminder.what in self.failing:
            raise RuntimeError(f"cannot send {reminder.what}")
        self.sent.append((reminder, time.time()))
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.sent) < count:
            await self.changed.wait()

    @property
    def texts(self) -> list[str]:
        return [reminder.what for reminder, _ in self.sent]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "db.sqlite3", synchronous="normal") as opened:
        yield opened


async def add(store: Store, what: str, due_at: float, user: int = 1) -> Reminder:
    return await store.reminders.add(user, 10, None, what, due_at, cap=CAP)


def on_time(recorder: Recorder) -> bool:
    return all(0 <= at - reminder.due_at < LATE for reminder, at in recorder.sent)


async def test_delivers_in_due_order_on_time(store: Store) -> None:
    recorder = Recorder()
    scheduler = ReminderScheduler(store.reminders, recorder)
    with trio.fail_after(DEADLINE):
        now = time.time()
        await add(store, "second", now + 0.35)
        await add(store, "first", now + 0.2)
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            stats = scheduler.statistics()
            third = await add(store, "third", now + 0.5)
            scheduler.notify(third.due_at)
            await recorder.wait_for(3)
            nursery.cancel_scope.cancel()
        pending = await store.reminders.next_due()
    assert recorder.texts == ["first", "second", "third"]
    assert on_time(recorder)
    assert stats.running
    assert stats.delivered == 0
    assert pending is None
    assert scheduler.statistics().delivered == 3
    assert not scheduler.statistics().running


async def test_an_earlier_reminder_wakes_the_sleeping_scheduler(store: Store) -> None:
    recorder = Recorder()
    scheduler = ReminderScheduler(store.reminders, recorder)
    with trio.fail_after(DEADLINE):
        await add(store, "later", time.time() + 60)
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            soon = await add(store, "soon", time.time() + 0.2)
            scheduler.notify(soon.due_at)
            await recorder.wait_for(1)
            nursery.cancel_scope.cancel()
    assert recorder.texts == ["soon"]
    assert on_time(recorder)


async def test_an_idle_scheduler_is_woken_by_the_first_reminder(store: Store) -> None:
    recorder = Recorder()
    scheduler = ReminderScheduler(store.reminders, recorder)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            first = await add(store, "first", time.time() + 0.2)
            scheduler.notify(first.due_at)
            await recorder.wait_for(1)
            nursery.cancel_scope.cancel()
    assert recorder.texts == ["first"]
    assert on_time(recorder)


async def test_overdue_ones_are_delivered_once_at_start_and_never_again(store: Store) -> None:
    recorder = Recorder()
    with trio.fail_after(DEADLINE):
        now = time.time()
        await add(store, "missed b", now - 30)
        await add(store, "missed a", now - 3600)
        for _ in range(2):  # two runs of the bot on the same database
            scheduler = ReminderScheduler(store.reminders, recorder)
            async with trio.open_nursery() as nursery:
                # Started only after the overdue ones were sent.
                await nursery.start(scheduler.run)
                nursery.cancel_scope.cancel()
    assert recorder.texts == ["missed a", "missed b"]


async def test_cancelled_ones_are_skipped_and_failures_recorded(store: Store) -> None:
    recorder = Recorder(failing={"broken"})
    scheduler = ReminderScheduler(store.reminders, recorder)
    with trio.fail_after(DEADLINE):
        now = time.time()
        cancelled = await add(store, "cancelled", now + 0.2)
        broken = await add(store, "broken", now + 0.2)
        await add(store, "fine", now + 0.3)
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            assert await store.reminders.cancel(1, cancelled.id) is not None
            await recorder.wait_for(1)
            nursery.cancel_scope.cancel()
        stored = await store.reminders.get(broken.id)
    assert recorder.texts == ["fine"]
    assert stored is not None
    assert stored.delivered_at is not None
    assert stored.failure == "RuntimeError: cannot send broken"
    stats = scheduler.statistics()
    assert (stats.delivered, stats.failed) == (1, 1)
