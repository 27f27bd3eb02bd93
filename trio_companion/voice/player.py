"""The per-guild speech queue: utterances produced ahead in threads, played on the 20 ms grid.

Theory of operation
-------------------

`VoicePlayer.run` takes `Utterance`s from a bounded queue, one at a time. For each it opens a
nursery with two tasks joined by a small frame channel (`FRAME_BUFFER` frames, about a second):

- the utterance's ``produce(send)`` writes 20 ms Opus frames as they become ready (TTS sentence
  by sentence, RVC, resampling and Opus encoding all run in threads there, never in the pacing
  loop), then closes ``send``;
- the link's ``play`` sends them on the absolute 20 ms grid (`pacing.PacedSender`).

So playback starts as soon as the first sentence is encoded. `/speak` while speaking queues
(`enqueue_nowait`; `QueueFull` beyond ``queue_limit``). `stop` cancels the current utterance's
nursery (Speaking 0 still goes out, shielded) and empties the queue. A producer's own failure
(TTS down, say) goes to the utterance's ``on_error`` and the queue moves on; a lost link
(`VoiceLinkLost`: a move, a new voice server) cuts that utterance only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, final

import trio

from trio_companion.errors import CompanionError
from trio_companion.voice.errors import VoiceError, VoiceLinkLost
from trio_companion.voice.gateway import VoiceLink

__all__ = ["FRAME_BUFFER", "PlayerStatistics", "QueueFull", "Utterance", "VoicePlayer"]

log = logging.getLogger(__name__)

# Our choice: 50 frames = 1 s of audio encoded ahead of the grid, so a slow thread hop or a
# garbage-collection pause never makes a frame late, while /stop still cuts within a second.
FRAME_BUFFER: Final = 50

Produce = Callable[[trio.MemorySendChannel[bytes]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Utterance:
    """One thing to say. ``produce`` writes Opus frames and closes the channel; ``on_error``
    hears about a `CompanionError` it raised (for a user-visible answer)."""

    label: str
    produce: Produce
    on_error: Callable[[CompanionError], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class PlayerStatistics:
    queued: int
    queue_limit: int
    playing: str | None
    played: int
    interrupted: int
    failed: int


@final
class QueueFull(VoiceError):
    """`VoicePlayer.enqueue_nowait` with ``limit`` utterances already waiting."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the speech queue is full ({limit} waiting); try again shortly")
        self.limit = limit


@final
class VoicePlayer:
    """Plays queued utterances through whatever link ``wait_link`` returns."""

    def __init__(self, wait_link: Callable[[], Awaitable[VoiceLink]], *, queue_limit: int) -> None:
        self._wait_link = wait_link
        self._limit = queue_limit
        self._send, self._receive = trio.open_memory_channel[Utterance](queue_limit)
        self._current: trio.CancelScope | None = None
        self._playing: str | None = None
        self._played = self._interrupted = self._failed = 0
        self._idle = trio.Event()
        self._idle.set()

    def statistics(self) -> PlayerStatistics:
        return PlayerStatistics(
            queued=self._send.statistics().current_buffer_used,
            queue_limit=self._limit,
            playing=self._playing,
            played=self._played,
            interrupted=self._interrupted,
            failed=self._failed,
        )

    async def wait_idle(self) -> None:
        """Wait until nothing is playing or queued."""
        await self._idle.wait()

    def enqueue_nowait(self, utterance: Utterance) -> int:
        """Queue ``utterance``; returns how many are ahead of it (0: it plays next or now).
        Raises `QueueFull`."""
        ahead = self._send.statistics().current_buffer_used + (self._playing is not None)
        try:
            self._send.send_nowait(utterance)
        except trio.WouldBlock:
            raise QueueFull(self._limit) from None
        if self._idle.is_set():
            self._idle = trio.Event()
        return ahead

    def stop(self) -> int:
        """Cut the current utterance and drop the queued ones; returns how many were dropped
        or cut."""
        dropped = 0
        while True:
            try:
                self._receive.receive_nowait()
            except trio.WouldBlock:
                break
            dropped += 1
        if self._current is not None:
            self._current.cancel()  # its ending sets idle
            dropped += 1
        else:
            self._idle.set()
        return dropped

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Play utterances until cancelled."""
        task_status.started()
        async for utterance in self._receive:
            await self._play_one(utterance)

    async def _play_one(self, utterance: Utterance) -> None:
        self._playing = utterance.label
        try:
            with trio.CancelScope() as scope:
                self._current = scope
                link = await self._wait_link()
                send, receive = trio.open_memory_channel[bytes](FRAME_BUFFER)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._produce, utterance, send)
                    await link.play(receive)
                self._played += 1
            if scope.cancelled_caught:
                self._interrupted += 1
        except* VoiceLinkLost:
            self._interrupted += 1
            log.info("voice: %r cut by a voice reconnect", utterance.label)
        finally:
            self._current = None
            self._playing = None
            if not self._receive.statistics().current_buffer_used:
                self._idle.set()

    async def _produce(self, utterance: Utterance, send: trio.MemorySendChannel[bytes]) -> None:
        async with send:
            try:
                await utterance.produce(send)
            except trio.BrokenResourceError:
                pass  # the playback ended first (link lost); nothing more to say
            except CompanionError as exc:
                self._failed += 1
                log.info("voice: %r failed: %s", utterance.label, exc)
                if utterance.on_error is not None:
                    await utterance.on_error(exc)
