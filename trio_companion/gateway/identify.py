"""Discord's limits on starting sessions: identify concurrency buckets and the daily budget."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import final

import trio

from trio_companion.gateway.protocol import IDENTIFY_WINDOW

__all__ = ["IdentifyGate", "IdentifyGateStatistics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IdentifyGateStatistics:
    max_concurrency: int
    remaining: int
    identifies: int


@final
class IdentifyGate:
    """Shards whose ``shard_id % max_concurrency`` is equal share a bucket, and each bucket may
    identify once per 5 s (PROTOCOL.md 1.9). ``remaining``/``reset_after`` come from
    ``session_start_limit``: when the day's identifies are used up, wait for the reset rather
    than have Discord reset the token (PROTOCOL.md 1.5). Shared by all shards of the process.
    """

    def __init__(self, max_concurrency: int, *, total: int, remaining: int, reset_after: float):
        self._max = max(1, max_concurrency)
        self._total = total
        self._remaining = remaining
        self._reset_after = reset_after
        self._reset_at: float | None = None
        self._next_at: dict[int, float] = {}
        self._locks: defaultdict[int, trio.Lock] = defaultdict(trio.Lock)
        self._identifies = 0

    async def wait_turn(self, shard_id: int) -> None:
        """Return when shard ``shard_id`` may send Identify now; counts it as sent."""
        if self._reset_at is None:
            self._reset_at = trio.current_time() + self._reset_after
        key = shard_id % self._max
        async with self._locks[key]:
            if self._remaining <= 0:
                wait = max(0.0, self._reset_at - trio.current_time())
                log.error("no session starts left today; identifying again in %.0f s", wait)
                await trio.sleep(wait)
                self._remaining = self._total
                self._reset_at = trio.current_time() + 24 * 3600
            await trio.sleep_until(self._next_at.get(key, -math.inf))
            self._next_at[key] = trio.current_time() + IDENTIFY_WINDOW
            self._remaining -= 1
            self._identifies += 1

    def statistics(self) -> IdentifyGateStatistics:
        return IdentifyGateStatistics(self._max, self._remaining, self._identifies)
