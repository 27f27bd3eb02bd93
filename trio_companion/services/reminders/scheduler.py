"""Delivering stored reminders on time: one task that sleeps until the next one is due.

Theory of operation
-------------------
Reminders live in the database (`trio_companion.storage.RemindersRepository`); ``due_at`` is a
wall-clock instant (unix UTC seconds), so they survive restarts. `ReminderScheduler.run` loops:

1. **Arm** a fresh wake-up `trio.Event`.
2. **Deliver** every pending reminder whose ``due_at`` has passed, earliest first. On the first
   pass these are the ones that fell due while the bot was down; ``task_status.started()`` is
   called after that pass.
3. **Sleep** until the earliest pending ``due_at`` — converted from the wall clock to trio's
   clock as ``trio.current_time() + (due_at - time.time())`` — or until the event is set. There
   is no polling: with nothing pending it waits on the event alone. `ReminderScheduler.notify`,
   called after a reminder is stored, sets the event when the new reminder is due before the
   time the loop sleeps until (or when that time is not known yet, because the loop is between
   its reads), so the reminder is never slept past. A cancelled reminder needs no wake-up: the
   loop wakes at its old time, finds nothing due and sleeps again.

   A single sleep lasts at most `MAX_SLEEP`: trio's clock is monotonic and on Linux stops while
   the machine is suspended, and the wall clock can be stepped; re-reading the wall clock that
   often bounds how late either can make a reminder. This is a bounded re-check, not a poll.

Delivery semantics: **at most once**. The issue asks that a reminder is "never twice", so each
one is claimed in the database first (`RemindersRepository.mark_delivered`, an ``UPDATE ...
WHERE delivered_at IS NULL`` that only one caller can win) and only then sent. If the send fails
(Discord refuses, the network breaks, the process dies between claim and send) the reminder is
not retried: the failure is logged and stored in its row (``failure``), and `statistics` counts
it. The alternative, send then mark, would repeat a reminder after a crash between the two, and
Discord's message nonce deduplicates only for a few minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import trio

if TYPE_CHECKING:
    from trio_companion.storage import Reminder, RemindersRepository

__all__ = ["MAX_SLEEP", "ReminderScheduler", "SchedulerStatistics"]

log = logging.getLogger(__name__)

# Policy: the longest single sleep, in seconds; bounds lateness after a suspend or a wall-clock
# step (see the module docstring). An hour costs one indexed read per hour.
MAX_SLEEP: Final = 3600.0
# Policy: reminders fetched per read; more are fetched until none is due.
BATCH: Final = 100
# Policy: the longest a failure reason stored in the database may be, in characters.
_MAX_REASON: Final = 500

Deliver = Callable[["Reminder"], Awaitable[None]]


@final
@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    running: bool
    delivered: int
    """Reminders claimed and sent without error since start."""
    failed: int
    """Reminders claimed whose send raised (not retried)."""
    next_due_at: float | None
    """The wall-clock time (unix UTC) the loop sleeps until; None while idle or busy."""


@final
class ReminderScheduler:
    """Delivers the reminders of `repository` through `deliver` when they fall due.

    ``deliver(reminder)`` sends one reminder; an exception from it (other than cancellation) is
    logged and recorded as that reminder's failure. ``wall_clock`` returns unix UTC seconds.
    """

    def __init__(
        self,
        repository: RemindersRepository,
        deliver: Deliver,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._deliver = deliver
        self._wall_clock = wall_clock
        self._wake = trio.Event()
        self._sleeping_until: float | None = None
        self._running = False
        self._delivered = 0
        self._failed = 0

    def notify(self, due_at: float) -> None:
        """Tell the loop that a reminder due at `due_at` was stored (call after it committed)."""
        if self._sleeping_until is None or due_at < self._sleeping_until:
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver reminders until cancelled; started once the overdue ones were delivered.

        Raises the store's errors (`trio_companion.storage.StorageError`) if it fails. Cancelled
        between a claim and its send, that reminder is lost (at most once, as documented above).
        """
        self._running = True
        try:
            started = False
            while True:
                # Armed before the reads, so a notify() during them is not lost.
                self._wake = trio.Event()
                self._sleeping_until = None
                await self._deliver_due()
                if not started:
                    task_status.started()
                    started = True
                next_due = await self._repository.next_due()
                if next_due is None:
                    await self._wake.wait()
                    continue
                self._sleeping_until = next_due
                delay = min(max(next_due - self._wall_clock(), 0.0), MAX_SLEEP)
                with trio.move_on_at(trio.current_time() + delay):
                    await self._wake.wait()
        finally:
            self._running = False
            self._sleeping_until = None

    async def _deliver_due(self) -> None:
        while batch := await self._repository.due(self._wall_clock(), limit=BATCH):
            for reminder in batch:
                await self._deliver_one(reminder)

    async def _deliver_one(self, reminder: Reminder) -> None:
        if not await self._repository.mark_delivered(reminder.id, at=self._wall_clock()):
            return  # cancelled since it was read, or claimed by another process
        late = self._wall_clock() - reminder.due_at
        try:
            await self._deliver(reminder)
        except Exception as exc:
            # A boundary: one reminder that cannot be sent must not stop the others.
            self._failed += 1
            log.warning("reminder %d could not be delivered: %r", reminder.id, exc)
            reason = f"{type(exc).__name__}: {exc}"[:_MAX_REASON]
            await self._repository.record_failure(reminder.id, reason)
            return
        self._delivered += 1
        log.info("reminder %d delivered %.3f s after its time", reminder.id, late)

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            running=self._running,
            delivered=self._delivered,
            failed=self._failed,
            next_due_at=self._sleeping_until,
        )
