"""Follow-up windows: after the bot replies in a channel, it keeps listening there for a while."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

import trio

__all__ = ["Sessions", "SessionsStatistics"]

# Open windows remembered at most; expired ones are swept first.
_MAX_OPEN: Final = 10_000


@dataclass(frozen=True, slots=True)
class SessionsStatistics:
    open: int


@final
class Sessions:
    """Per-channel follow-up windows on trio's clock. Only the trio thread touches it, and no
    method awaits, so there is no lock."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._until: dict[int, float] = {}

    def touch(self, channel_id: int) -> None:
        """The bot just replied in ``channel_id``: (re)open its window."""
        if self._window <= 0:
            return
        now = trio.current_time()
        if len(self._until) >= _MAX_OPEN:
            self._until = {c: t for c, t in self._until.items() if t > now}
        self._until[channel_id] = now + self._window

    def renew(self, channel_id: int) -> None:
        """Restart an open window (a reply just finished); a window ended meanwhile, by
        ``/end_session`` during the reply, stays ended."""
        if self.is_open(channel_id):
            self.touch(channel_id)

    def is_open(self, channel_id: int) -> bool:
        until = self._until.get(channel_id)
        if until is None:
            return False
        if until <= trio.current_time():
            del self._until[channel_id]
            return False
        return True

    def end(self, channel_id: int) -> bool:
        """Close the window (``/end_session``); whether one was open."""
        was_open = self.is_open(channel_id)
        self._until.pop(channel_id, None)
        return was_open

    def statistics(self) -> SessionsStatistics:
        now = trio.current_time()
        return SessionsStatistics(open=sum(1 for t in self._until.values() if t > now))
