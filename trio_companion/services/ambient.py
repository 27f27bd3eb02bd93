"""Ambient mode: a remark when an opted-in channel falls quiet, and jump-ins on interests.

Theory of operation
-------------------
`AmbientPolicy` is the sans-IO core: plain decisions on a ``now`` taken from trio's clock, with
the randomness drawn from an injected `random.Random`, so tests replay it exactly. Per enabled
channel it keeps when the current *lull* began (the last message of a human, or the moment the
channel was enabled), whether this lull already had its one draw, and when the last ambient
remark and the last jump-in happened.

* A lull remark is due at ``max(lull start + lull_seconds, last remark + min_interval)``. At that
  moment the policy draws **once**: below ``chance`` it speaks. Either way the lull is used up;
  only a new human message starts another. ``chance`` is therefore the probability per lull, and
  the intervals are the configured ones. (The predecessor polled every 30 s, drew on each poll,
  doubled its interval and halved its chance in code: §5.7 of predecessor-features.md.)
* Messages of bots, the companion's own included, are not activity: they neither start nor
  extend a lull, so the companion never answers its own remark with another.
* A jump-in needs an enabled channel, one of the persona's interests as a whole word
  (case-insensitive), ``proactive_cooldown`` since the last jump-in there, then a draw below
  ``proactive_chance``.

`AmbientRunner` is the trio shell. One loop sleeps until the earliest lull deadline among the
enabled channels (or, with none, only on its wake-up `trio.Event`). Activity and ``enable`` set
the event only when they make that earliest deadline *earlier* than the one slept until: a
postponement needs no wake-up, because the loop wakes at the old time, finds nothing due and
sleeps again — one wake-up per lull at most, instead of one per message in a busy channel.
Remarks run in the runner's own nursery, one at a time per channel and at most `MAX_SPEAKING`
at once; a failing ``speak`` is logged and does not stop the loop.

Opt-in persists in the ``meta`` table as ``channel:{id}:ambient`` = ``"on"`` (`AmbientChannels`)
and is loaded when the runner starts.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, final

import trio

if TYPE_CHECKING:
    from trio_companion.config import AmbientConfig
    from trio_companion.storage.meta import MetaRepository

__all__ = [
    "MAX_SPEAKING",
    "AmbientChannels",
    "AmbientPolicy",
    "AmbientRunner",
    "AmbientStatistics",
    "ChannelStore",
    "interest_pattern",
]

log = logging.getLogger(__name__)

# Policy: remarks being written at once across channels; each is one LLM request, and ambient
# talk should not crowd out answers to people.
MAX_SPEAKING: Final = 2
_KEY_PREFIX: Final = "channel:"
_KEY_SUFFIX: Final = ":ambient"
_ON: Final = "on"

Speak = Callable[[int], Awaitable[None]]


@functools.lru_cache(maxsize=64)
def interest_pattern(interests: tuple[str, ...]) -> re.Pattern[str] | None:
    """A pattern matching any of ``interests`` as whole words, case-insensitively (spaces inside
    an interest match any whitespace); None when there are none."""
    words = [r"\s+".join(map(re.escape, i.split())) for i in interests if i.strip()]
    if not words:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(words)})(?!\w)", re.IGNORECASE)


@dataclass(slots=True)
class _Channel:
    enabled: bool
    lull_start: float
    drawn: bool = False  # this lull had its draw
    last_remark: float | None = None
    last_jump_in: float | None = None


@final
class AmbientPolicy:
    """Pure ambient decisions for the channels enabled on it; see the module docstring."""

    def __init__(self, config: AmbientConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._channels: dict[int, _Channel] = {}

    def enable(self, channel_id: int, now: float) -> None:
        """Opt ``channel_id`` in; a new lull starts ``now`` unless it was enabled already."""
        state = self._channels.get(channel_id)
        if state is None:
            self._channels[channel_id] = _Channel(enabled=True, lull_start=now)
        elif not state.enabled:
            state.enabled, state.lull_start, state.drawn = True, now, False

    def disable(self, channel_id: int) -> None:
        """Opt out; the last remark and jump-in times are kept, so re-enabling does not reset
        ``min_interval`` or the cooldown."""
        if (state := self._channels.get(channel_id)) is not None:
            state.enabled = False

    def is_enabled(self, channel_id: int) -> bool:
        state = self._channels.get(channel_id)
        return state is not None and state.enabled

    def enabled_channels(self) -> list[int]:
        return sorted(c for c, s in self._channels.items() if s.enabled)

    def on_message(self, channel_id: int, author_is_bot: bool, now: float) -> None:
        """Record a message: a human's starts a new lull in an enabled channel; a bot's (the
        companion's own included) changes nothing."""
        state = self._channels.get(channel_id)
        if author_is_bot or state is None or not state.enabled:
            return
        state.lull_start, state.drawn = now, False

    def lull_deadline(self, channel_id: int) -> float | None:
        """When the next lull remark may be drawn for; None if disabled or this lull is used."""
        state = self._channels.get(channel_id)
        if state is None or not state.enabled or state.drawn:
            return None
        deadline = state.lull_start + self._config.lull_seconds
        if state.last_remark is not None:
            deadline = max(deadline, state.last_remark + self._config.min_interval)
        return deadline

    def next_deadline(self, exclude: Iterable[int] = ()) -> float | None:
        """The earliest `lull_deadline` over enabled channels not in ``exclude``."""
        skip = set(exclude)
        deadlines = [
            d for c in self._channels if c not in skip and (d := self.lull_deadline(c)) is not None
        ]
        return min(deadlines, default=None)

    def lull_due(self, channel_id: int, now: float) -> bool:
        """Whether to make a lull remark in ``channel_id`` now. Past the deadline this uses up
        the lull (one draw per lull) and, when it says yes, counts as the remark."""
        deadline = self.lull_deadline(channel_id)
        if deadline is None or now < deadline:
            return False
        state = self._channels[channel_id]
        state.drawn = True
        if self._rng.random() >= self._config.chance:
            return False
        state.last_remark = now
        return True

    def should_jump_in(
        self, channel_id: int, text: str, interests: tuple[str, ...], now: float
    ) -> bool:
        """Whether to answer a message that touches the persona's ``interests``; a yes starts
        the cooldown. Draws only when an interest matched and the cooldown is over."""
        state = self._channels.get(channel_id)
        if state is None or not state.enabled:
            return False
        pattern = interest_pattern(interests)
        if pattern is None or pattern.search(text) is None:
            return False
        last = state.last_jump_in
        if last is not None and now - last < self._config.proactive_cooldown:
            return False
        if self._rng.random() >= self._config.proactive_chance:
            return False
        state.last_jump_in = now
        return True


@final
class AmbientChannels:
    """The opt-in, persisted: ``channel:{id}:ambient`` = ``"on"`` in the ``meta`` table."""

    def __init__(self, meta: MetaRepository) -> None:
        self._meta = meta

    async def load(self) -> list[int]:
        """The enabled channels' ids, ascending."""
        ids = []
        for key in await self._meta.keys(_KEY_PREFIX):
            middle = key.removeprefix(_KEY_PREFIX).removesuffix(_KEY_SUFFIX)
            if key.endswith(_KEY_SUFFIX) and middle.isdigit():
                ids.append(int(middle))
        return sorted(ids)

    async def set(self, channel_id: int, enabled: bool) -> None:
        key = f"{_KEY_PREFIX}{channel_id}{_KEY_SUFFIX}"
        if enabled:
            await self._meta.set(key, _ON)
        else:
            await self._meta.delete(key)


class ChannelStore(Protocol):
    """What the runner needs to persist the opt-in (`AmbientChannels`, or a test's fake)."""

    async def load(self) -> list[int]: ...

    async def set(self, channel_id: int, enabled: bool) -> None: ...


@final
@dataclass(frozen=True, slots=True)
class AmbientStatistics:
    enabled_channels: int
    speaking: int
    wakeups: int
    """Times the loop woke up (deadline reached or woken by the event)."""
    remarks: int
    failures: int
    next_deadline: float | None
    """On trio's clock; None while idle."""


@final
class AmbientRunner:
    """Runs `AmbientPolicy` on trio's clock and calls ``speak(channel_id)`` for each remark."""

    def __init__(
        self,
        policy: AmbientPolicy,
        speak: Speak,
        channels: ChannelStore,
        *,
        max_speaking: int = MAX_SPEAKING,
    ) -> None:
        self._policy = policy
        self._speak = speak
        self._channels = channels
        self._limiter = trio.CapacityLimiter(max_speaking)
        self._wake = trio.Event()
        self._sleeping_until: float | None = None
        self._speaking: set[int] = set()
        self._wakeups = 0
        self._remarks = 0
        self._failures = 0

    @property
    def policy(self) -> AmbientPolicy:
        return self._policy

    def is_enabled(self, channel_id: int) -> bool:
        return self._policy.is_enabled(channel_id)

    async def enable(self, channel_id: int) -> None:
        """Opt in (persisted first); the lull clock starts now."""
        await self._channels.set(channel_id, True)
        self._policy.enable(channel_id, trio.current_time())
        self._deadlines_changed()

    async def disable(self, channel_id: int) -> None:
        """Opt out (persisted first); a remark already being written is not interrupted."""
        await self._channels.set(channel_id, False)
        self._policy.disable(channel_id)

    def on_message(self, channel_id: int, author_is_bot: bool) -> None:
        """Record a message seen in ``channel_id`` (see `AmbientPolicy.on_message`)."""
        self._policy.on_message(channel_id, author_is_bot, trio.current_time())
        self._deadlines_changed()

    def should_jump_in(self, channel_id: int, text: str, interests: tuple[str, ...]) -> bool:
        return self._policy.should_jump_in(channel_id, text, interests, trio.current_time())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Make lull remarks until cancelled; started once the opt-ins are loaded.

        Raises the store's errors from loading. Cancellation also cancels remarks in progress.
        """
        now = trio.current_time()
        for channel_id in await self._channels.load():
            self._policy.enable(channel_id, now)
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                # Armed before reading the deadlines; nothing below awaits until the sleep.
                self._wake = trio.Event()
                self._start_due(nursery)
                deadline = self._policy.next_deadline(exclude=self._speaking)
                self._sleeping_until = deadline
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await self._wake.wait()
                self._sleeping_until = None
                self._wakeups += 1

    def statistics(self) -> AmbientStatistics:
        return AmbientStatistics(
            enabled_channels=len(self._policy.enabled_channels()),
            speaking=len(self._speaking),
            wakeups=self._wakeups,
            remarks=self._remarks,
            failures=self._failures,
            next_deadline=self._sleeping_until,
        )

    def _deadlines_changed(self) -> None:
        earliest = self._policy.next_deadline(exclude=self._speaking)
        if earliest is None:
            return
        if self._sleeping_until is None or earliest < self._sleeping_until:
            self._wake.set()

    def _start_due(self, nursery: trio.Nursery) -> None:
        now = trio.current_time()
        for channel_id in self._policy.enabled_channels():
            if channel_id in self._speaking:
                continue  # its deadline waits until this remark is done
            if self._policy.lull_due(channel_id, now):
                self._speaking.add(channel_id)
                nursery.start_soon(self._remark, channel_id)

    async def _remark(self, channel_id: int) -> None:
        try:
            async with self._limiter:
                await self._speak(channel_id)
            self._remarks += 1
        except Exception:  # a boundary: one failed remark must not stop ambient mode
            self._failures += 1
            log.exception("ambient remark in channel %d failed", channel_id)
        finally:
            self._speaking.discard(channel_id)
            self._deadlines_changed()
