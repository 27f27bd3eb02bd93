"""From shard events to handlers: update the cache in order, then run listeners concurrently.

Theory of operation
-------------------
Every shard's reader puts ``(shard_id, event)`` into one bounded channel; `Dispatcher.run` is its
only consumer. For each event it first applies it to the `StateCache` (so handlers see state that
includes their own event), then starts each listener registered for the event's type as a task
in its own nursery. The number of running listener tasks is bounded by a `trio.CapacityLimiter`
acquired *before* the task starts: when handlers are slow, the dispatcher waits, the channel
fills, and the readers block (backpressure, nothing dropped). Heartbeats do not depend on the
readers (see `trio_companion.gateway.shard`), so a slow handler never delays them.

A listener's exception is logged with the event and does not take anything else down.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, final

import trio

from trio_companion.gateway.cache import StateCache
from trio_companion.gateway.events import Event, UnknownEvent
from trio_companion.gateway.shard import ShardEvent

__all__ = ["Dispatcher", "DispatcherStatistics"]

log = logging.getLogger(__name__)

# Events buffered between the readers and the dispatcher.
QUEUE_SIZE: Final = 256
# Listener tasks running at once across the bot.
MAX_HANDLERS: Final = 64

_E = TypeVar("_E")


@dataclass(frozen=True, slots=True)
class DispatcherStatistics:
    queued: int
    handlers_running: int
    handlers_waiting: int
    events: int
    handler_errors: int


@final
class Dispatcher:
    def __init__(self, cache: StateCache, *, max_handlers: int = MAX_HANDLERS) -> None:
        self.cache = cache
        self._send, self._receive = trio.open_memory_channel[ShardEvent](QUEUE_SIZE)
        self._listeners: defaultdict[type[Any], list[Callable[[Any], Awaitable[None]]]] = (
            defaultdict(list)
        )
        self._limiter = trio.CapacityLimiter(max_handlers)
        self._events = 0
        self._errors = 0

    def sender(self) -> trio.MemorySendChannel[ShardEvent]:
        """A send channel for one producer (a shard); closing it does not stop the others."""
        return self._send.clone()

    def add_listener(self, event_type: type[_E], listener: Callable[[_E], Awaitable[None]]) -> None:
        """Call ``listener(event)`` for every event of ``event_type`` (subclasses included)."""
        self._listeners[event_type].append(listener)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for _shard_id, event in self._receive:
                self._events += 1
                self.cache.apply(event)
                if isinstance(event, UnknownEvent) and event.error is not None:
                    log.warning("could not decode %s", event.error)
                for listener in self._listeners_for(event):
                    token = object()
                    await self._limiter.acquire_on_behalf_of(token)
                    nursery.start_soon(self._call, listener, event, token)

    def statistics(self) -> DispatcherStatistics:
        limiter = self._limiter.statistics()
        return DispatcherStatistics(
            queued=self._receive.statistics().current_buffer_used,
            handlers_running=limiter.borrowed_tokens,
            handlers_waiting=limiter.tasks_waiting,
            events=self._events,
            handler_errors=self._errors,
        )

    def _listeners_for(self, event: Event) -> list[Callable[[Any], Awaitable[None]]]:
        return [fn for t, fns in self._listeners.items() if isinstance(event, t) for fn in fns]

    async def _call(
        self, listener: Callable[[Any], Awaitable[None]], event: Event, token: object
    ) -> None:
        try:
            await listener(event)
        except Exception:
            # A boundary: one handler's bug must not stop the bot. Cancellation is not caught.
            self._errors += 1
            log.exception("a handler for %s failed", type(event).__name__)
        finally:
            self._limiter.release_on_behalf_of(token)
