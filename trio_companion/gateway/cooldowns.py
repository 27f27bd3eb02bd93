"""Per-user cooldowns for commands, on trio's clock."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, final

import trio

__all__ = ["Cooldowns", "CooldownsStatistics"]

# Entries kept before expired ones are swept; bounds memory under a flood of distinct users.
_SWEEP_AT: Final = 10_000


@dataclass(frozen=True, slots=True)
class CooldownsStatistics:
    tracked: int


@final
class Cooldowns:
    """Remembers when each (command, user) may run again.

    `try_acquire` either starts the cooldown and returns 0.0, or returns the seconds left. Only
    the trio thread calls it and it does not await, so check-and-set is atomic.
    """

    def __init__(self) -> None:
        self._ready_at: dict[Hashable, float] = {}

    def try_acquire(self, key: Hashable, period: float) -> float:
        now = trio.current_time()
        ready_at = self._ready_at.get(key, now)
        if ready_at > now:
            return ready_at - now
        if len(self._ready_at) >= _SWEEP_AT:
            self._ready_at = {k: t for k, t in self._ready_at.items() if t > now}
        self._ready_at[key] = now + period
        return 0.0

    def statistics(self) -> CooldownsStatistics:
        return CooldownsStatistics(tracked=len(self._ready_at))
