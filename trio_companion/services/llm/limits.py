"""How many LLM requests may run at once, and start per minute, across every caller.

Theory of operation
-------------------
One `LLMLimits` is made from the config and shared by every backend and caller (chat replies,
summaries, ambient remarks, embeddings), because they all load the same local server. A request
holds a *slot* for its whole life (a streamed reply holds it until the stream is closed)::

    with trio.fail_after(QUEUE_DEADLINE):       # the caller decides how long it will wait
        async with limits.slot():
            ...

``slot()`` first takes a token of a `trio.CapacityLimiter` (``max_concurrency``), then a place
in a sliding one-minute window of request starts (``requests_per_minute``). The window is a deque
of the times at which recent starts leave it, on trio's clock: when it holds
``requests_per_minute`` of them, the next request sleeps until the oldest one leaves. Waiters for
the window queue behind a `trio.Lock`, which is FIFO-fair, so requests start in arrival order.
The concurrency token is taken first: a request waiting for the window holds no place in it.

``slot_nowait()`` is the non-waiting twin for work that should rather not happen than queue (an
ambient remark): it raises `LLMBusy` at once when either limit is reached.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final, final

import trio

from trio_companion.services.llm.errors import LLMBusy

__all__ = ["WINDOW", "LLMLimits", "LLMLimitsStatistics"]

# The budget is "per minute" (LLMConfig.requests_per_minute); a sliding window avoids the burst of
# twice the budget that a fixed window allows at its boundary.
WINDOW: Final = 60.0


@dataclass(frozen=True, slots=True)
class LLMLimitsStatistics:
    """A snapshot of the limits: requests running and waiting, and the window's use."""

    max_concurrency: int
    running: int  #: requests holding a slot
    waiting_for_concurrency: int
    waiting_for_budget: int
    requests_per_minute: int
    used_in_window: int  #: requests started in the last 60 s
    budget_frees_in: float  #: seconds until the window has room (0.0 when it has now)


@final
class LLMLimits:
    """Concurrency and per-minute limits shared by every LLM caller. See the module docstring."""

    def __init__(self, max_concurrency: int, requests_per_minute: int) -> None:
        if max_concurrency < 1 or requests_per_minute < 1:
            raise ValueError("LLM limits must be at least 1")
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._rpm = requests_per_minute
        self._expiries: deque[float] = deque()  # when each recent start leaves the window
        self._budget_lock = trio.Lock()
        self._waiting_for_budget = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a concurrency token and a place in the window; hold the token inside.

        Waits as long as it takes: put a deadline around it. Cancelled while waiting, it takes
        nothing. A task may hold more than one slot, but nesting them with ``max_concurrency``
        of 1 waits forever, as nesting any lock does.
        """
        borrower = object()  # one per slot, so a task may hold two (a reply and an embedding)
        await self._limiter.acquire_on_behalf_of(borrower)
        try:
            self._waiting_for_budget += 1
            try:
                async with self._budget_lock:
                    # Under the lock nobody else starts, so one wait is always enough.
                    if (frees_at := self._frees_at(trio.current_time())) is not None:
                        await trio.sleep_until(frees_at)
                        self._frees_at(trio.current_time())  # forget the start that just left
                    self._expiries.append(trio.current_time() + WINDOW)
            finally:
                self._waiting_for_budget -= 1
            yield
        finally:
            self._limiter.release_on_behalf_of(borrower)

    @contextmanager
    def slot_nowait(self) -> Iterator[None]:
        """Take a slot now or raise `LLMBusy` (``retry_after`` set when the window is full)."""
        now = trio.current_time()
        frees_at = self._frees_at(now)
        if frees_at is not None or self._budget_lock.locked():
            raise LLMBusy(frees_at - now if frees_at is not None else None)
        borrower = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            raise LLMBusy(None) from None
        try:
            self._expiries.append(now + WINDOW)
            yield
        finally:
            self._limiter.release_on_behalf_of(borrower)

    def statistics(self) -> LLMLimitsStatistics:
        now = trio.current_time()
        frees_at = self._frees_at(now)
        limiter = self._limiter.statistics()
        return LLMLimitsStatistics(
            max_concurrency=int(limiter.total_tokens),
            running=limiter.borrowed_tokens,
            waiting_for_concurrency=limiter.tasks_waiting,
            waiting_for_budget=self._waiting_for_budget,
            requests_per_minute=self._rpm,
            used_in_window=len(self._expiries),
            budget_frees_in=0.0 if frees_at is None else frees_at - now,
        )

    def _frees_at(self, now: float) -> float | None:
        """Forget starts older than the window; when it is full, when its oldest start leaves.

        Expiry times are stored (not start times) so that waking at ``sleep_until(frees_at)``
        always finds that entry expired: no float rounding of ``start + WINDOW - WINDOW``.
        """
        while self._expiries and self._expiries[0] <= now:
            self._expiries.popleft()
        if len(self._expiries) < self._rpm:
            return None
        return self._expiries[0]
