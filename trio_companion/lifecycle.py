"""The shutdown protocol: stop taking new work, let in-flight work finish, then cancel.

Theory of operation
-------------------
Work that must not be cut in half (answering an interaction, writing a reply, delivering a
reminder) runs inside ``with lifecycle.work("what"):``. Entering it once shutdown has begun raises
`ShuttingDown`, so nothing new starts. `request_stop` begins the shutdown; the app then waits for
`wait_drained` up to its grace period, and only then cancels whatever is still running (listeners,
heartbeats, and in-flight work that overran the grace period). Components that only listen need
no cooperation: cancellation ends them.

Everything here is synchronous bookkeeping on the trio thread plus `trio.Event`s, so there is no
lock: trio runs one task at a time, and no method awaits between reading and writing state.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import final

import trio

from trio_companion.errors import CompanionError

__all__ = ["Lifecycle", "LifecycleStatistics", "ShuttingDown", "wait_then_cancel"]

log = logging.getLogger(__name__)


class ShuttingDown(CompanionError):
    """Raised by `Lifecycle.work` once shutdown has begun: the work was not started."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"The companion is shutting down; {what} was not started.")


@dataclass(frozen=True, slots=True)
class LifecycleStatistics:
    stopping: bool
    reason: str | None
    in_flight: int
    in_flight_names: tuple[str, ...]


@final
class Lifecycle:
    """Tracks in-flight work and whether the app is stopping. One per app."""

    def __init__(self) -> None:
        self._stopping = trio.Event()
        self._reason: str | None = None
        self._in_flight: dict[int, str] = {}
        self._ids = itertools.count()
        self._drained = trio.Event()
        self._drained.set()
        self.forced_exit_code: int | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def reason(self) -> str | None:
        return self._reason

    def request_stop(self, reason: str) -> None:
        """Begin shutdown (idempotent: the first reason is kept)."""
        if not self._stopping.is_set():
            self._reason = reason
            self._stopping.set()

    def force(self, reason: str, exit_code: int) -> None:
        """Record that shutdown was forced; the app cancels everything and exits ``exit_code``."""
        self.request_stop(reason)
        if self.forced_exit_code is None:
            self.forced_exit_code = exit_code

    async def wait_stopping(self) -> None:
        await self._stopping.wait()

    async def wait_drained(self) -> None:
        """Return once no work is in flight (at once if none is)."""
        await self._drained.wait()

    @contextmanager
    def work(self, what: str) -> Iterator[None]:
        """Mark a piece of work as in flight; refuse it with `ShuttingDown` once stopping."""
        if self.stopping:
            raise ShuttingDown(what)
        key = next(self._ids)
        if not self._in_flight:
            self._drained = trio.Event()
        self._in_flight[key] = what
        try:
            yield
        finally:
            del self._in_flight[key]
            if not self._in_flight:
                self._drained.set()

    def statistics(self) -> LifecycleStatistics:
        return LifecycleStatistics(
            stopping=self.stopping,
            reason=self._reason,
            in_flight=len(self._in_flight),
            in_flight_names=tuple(self._in_flight.values()),
        )


async def wait_then_cancel(lifecycle: Lifecycle, grace: float, scope: trio.CancelScope) -> None:
    """Wait for shutdown, give in-flight work ``grace`` seconds to drain, then cancel ``scope``.

    The app calls it as the last step of its components' nursery body, with that nursery's scope.
    """
    await lifecycle.wait_stopping()
    log.info("shutting down: %s", lifecycle.reason)
    with trio.move_on_after(grace) as waited:
        await lifecycle.wait_drained()
    if waited.cancelled_caught:
        names = ", ".join(lifecycle.statistics().in_flight_names)
        log.warning("grace period over; abandoning in-flight work: %s", names)
    scope.cancel("shutting down")
