"""Paced sending of Opus frames over voice UDP (PROTOCOL.md 5.6).

Theory of operation
-------------------

`PacedSender.play` drains a bounded channel of 20 ms Opus frames and sends each as one encrypted
RTP packet (`rtp.RtpSender` for sequence/timestamp, `crypto.TransportCipher` to seal it).

- **Grid.** Packet ``n`` of a playback is due at ``start + n * FRAME_SECONDS`` on trio's clock and
  is sent with `trio.sleep_until`. Deadlines are computed from ``start``, never from the previous
  send, so lateness does not accumulate (discord.py ``player.py`` does the same).
- **Start.** ``start`` is the moment the first frame is in hand, after ``on_speaking(True)``; a
  producer that needs time for its first frame (TTS warming up) is not "late". A channel that
  closes without any frame plays nothing: no speaking, no silence.
- **Late frames.** A frame received after its deadline is sent at once and counted in
  ``late_frames``; the next deadline stays where the grid puts it, so the sender catches up.
- **Skip ahead.** If a frame is more than `MAX_CATCH_UP_FRAMES` behind, catching up would be an
  audible burst; instead the sender skips the missed slots (counted in ``skipped_slots``) and
  sends on the next grid point. The RTP timestamp still advances by 960 per *sent* packet.
- **Pauses.** If no frame has come `UNDERRUN_GRACE` after it was due (a streamed reply whose
  next sentence is not synthesised yet), five silence frames go out at once (counted in
  ``underruns``) and the next frame starts a new grid, as a new talk spurt.
- **End.** When the channel closes, five Opus silence frames go out on the following grid slots
  so the receiver's decoder does not interpolate into the next transmission, then
  ``on_speaking(False)``.
- **Cancellation.** If ``play`` is cancelled after it announced speaking (/stop, a lost link,
  shutdown), it sends the five silence frames at once and calls ``on_speaking(False)`` in a
  shielded scope bounded by `SPEAKING_OFF_TIMEOUT`, then lets the cancellation propagate. A
  closed socket (the link is gone) just skips the silence.

Nothing CPU-heavy runs in the loop: sealing a 20 ms frame takes microseconds.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, final

import trio

from trio_companion.voice.crypto import TransportCipher
from trio_companion.voice.rtp import RtpSender

__all__ = [
    "FRAME_SECONDS",
    "LATE_TOLERANCE",
    "MAX_CATCH_UP_FRAMES",
    "OPUS_SILENCE",
    "SILENCE_FRAME_COUNT",
    "SPEAKING_OFF_TIMEOUT",
    "UNDERRUN_GRACE",
    "PacedSender",
    "PacedSenderStatistics",
    "PlaybackReport",
]

FRAME_SECONDS: Final = 0.020  # PROTOCOL.md 5.6: one 20 ms Opus frame per packet.
OPUS_SILENCE: Final = b"\xf8\xff\xfe"  # PROTOCOL.md 5.6: the Opus silence frame.
SILENCE_FRAME_COUNT: Final = 5  # PROTOCOL.md 5.6: five silence frames when audio stops.
# Our choice: beyond 3 frames (60 ms) behind, a catch-up burst would be audible; skip instead.
MAX_CATCH_UP_FRAMES: Final = 3
# Our choice: a Speaking op is one websocket send; 2 s bounds it during cancellation/shutdown.
SPEAKING_OFF_TIMEOUT: Final = 2.0
# Float slack when turning a time into a grid slot, far below any clock's resolution.
_EPSILON: Final = 1e-9
# Our choice: a frame sent within 1 ms of its slot is on time (reading the clock twice in a row
# already takes about a microsecond; a 20 ms grid does not care about less than 1 ms).
LATE_TOLERANCE: Final = 0.001
# Our choice: no frame 200 ms (10 frames) after it was due is a pause, not jitter: close the
# talk spurt with silence (PROTOCOL.md 5.6, "when audio stops or pauses") and start a new grid.
UNDERRUN_GRACE: Final = 0.200


@dataclass(frozen=True, slots=True)
class PlaybackReport:
    """The outcome of one `PacedSender.play`.

    ``frames_sent`` counts the Opus frames from the channel (not the trailing silence);
    ``late_frames`` those received after their deadline; ``skipped_slots`` the grid slots given
    up by skipping ahead. ``started_at``/``ended_at`` are trio times of the first and the last
    packet (the last silence frame); both are 0.0 when nothing was played."""

    frames_sent: int
    late_frames: int
    started_at: float
    ended_at: float
    skipped_slots: int = 0
    underruns: int = 0


@dataclass(frozen=True, slots=True)
class PacedSenderStatistics:
    """Totals over the sender's lifetime, for ``/status`` and benchmarks.

    ``dropped_packets`` counts sends refused by the kernel (an ICMP "port unreachable" from an
    earlier datagram surfaces as ``ConnectionRefusedError`` on a connected UDP socket)."""

    playing: bool
    frames_sent: int
    silence_frames_sent: int
    late_frames: int
    skipped_slots: int
    dropped_packets: int
    underruns: int = 0


@final
class PacedSender:
    """Sends Opus frames as encrypted RTP on a connected UDP ``socket`` at 20 ms intervals.

    ``rtp`` and ``cipher`` belong to this sender while it plays (neither is thread- or
    task-safe). ``on_speaking(flag)`` sends the Speaking op (PROTOCOL.md 5.3 op 5).
    ``transform`` (DAVE end-to-end encryption, `dave.DaveState.encrypt`) is applied to every Opus
    frame before transport encryption, never to the silence frames (PROTOCOL.md 5.6: silence is a
    DAVE passthrough exception); it must take microseconds, as it runs on the grid."""

    def __init__(
        self,
        socket: trio.socket.SocketType,
        rtp: RtpSender,
        cipher: TransportCipher,
        *,
        on_speaking: Callable[[bool], Awaitable[None]],
        transform: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._socket = socket
        self._transform = transform
        self._rtp = rtp
        self._cipher = cipher
        self._on_speaking = on_speaking
        self._playing = False
        self._frames_sent = 0
        self._silence_sent = 0
        self._late = 0
        self._skipped = 0
        self._dropped = 0
        self._underruns = 0

    def statistics(self) -> PacedSenderStatistics:
        """Lifetime totals and whether a playback is running."""
        return PacedSenderStatistics(
            playing=self._playing,
            frames_sent=self._frames_sent,
            silence_frames_sent=self._silence_sent,
            late_frames=self._late,
            skipped_slots=self._skipped,
            dropped_packets=self._dropped,
            underruns=self._underruns,
        )

    async def play(self, frames: trio.MemoryReceiveChannel[bytes]) -> PlaybackReport:
        """Send every frame from ``frames`` on the 20 ms grid until the channel closes.

        Closes ``frames`` when it returns or raises, so a producer still sending sees
        `trio.BrokenResourceError`. Raises `RuntimeError` if this sender is already playing.
        On cancellation, calls ``on_speaking(False)`` (shielded, at most `SPEAKING_OFF_TIMEOUT`
        seconds) if ``on_speaking(True)`` was called, then re-raises."""
        if self._playing:
            raise RuntimeError("PacedSender is already playing")
        self._playing = True
        speaking = finished = False
        try:
            with frames:
                try:
                    first = await frames.receive()
                except trio.EndOfChannel:
                    return PlaybackReport(0, 0, 0.0, 0.0)
                # Set before the await: a cancel inside on_speaking(True) may have sent it.
                speaking = True
                await self._on_speaking(True)
                report = await self._play(first, frames)
                finished = True
                return report
        finally:
            self._playing = False
            if speaking:
                # Shielded so an interrupted reply still clears the speaking indicator; bounded
                # so a stuck websocket cannot hold up cancellation for long.
                with trio.move_on_after(SPEAKING_OFF_TIMEOUT, shield=True):
                    if not finished:
                        await self._silence_burst()
                    await self._on_speaking(False)

    async def _play(self, first: bytes, frames: trio.MemoryReceiveChannel[bytes]) -> PlaybackReport:
        started_at = start = trio.current_time()
        slot = 0
        sent = late = skipped = underruns = 0
        frame = first
        while True:
            deadline = start + slot * FRAME_SECONDS
            now = trio.current_time()
            if now > deadline + LATE_TOLERANCE:
                late += 1
                self._late += 1
                if now - deadline > MAX_CATCH_UP_FRAMES * FRAME_SECONDS:
                    # Realign on the next grid point instead of bursting to catch up.
                    new_slot = math.ceil((now - start) / FRAME_SECONDS - _EPSILON)
                    skipped += new_slot - slot
                    self._skipped += new_slot - slot
                    slot = new_slot
                    await trio.sleep_until(start + slot * FRAME_SECONDS)
            else:
                await trio.sleep_until(deadline)
            await self._send(self._transform(frame) if self._transform else frame)
            sent += 1
            self._frames_sent += 1
            slot += 1
            ended = False
            with trio.move_on_at(start + slot * FRAME_SECONDS + UNDERRUN_GRACE) as waiting:
                try:
                    frame = await frames.receive()
                except trio.EndOfChannel:
                    ended = True
            if ended:
                # Right after the last frame these slots are never far behind; sleep_until
                # returns at once for a passed deadline, so an overdue slot is sent now.
                await self._send_silence(start + slot * FRAME_SECONDS)
                break
            if waiting.cancelled_caught:
                # A pause (the next sentence is not ready yet): end this talk spurt as if the
                # audio stopped, then start a new grid when audio comes back.
                underruns += 1
                self._underruns += 1
                await self._send_silence(trio.current_time())
                try:
                    frame = await frames.receive()
                except trio.EndOfChannel:
                    break
                start, slot = trio.current_time(), 0
        return PlaybackReport(
            frames_sent=sent,
            late_frames=late,
            started_at=started_at,
            ended_at=trio.current_time(),
            skipped_slots=skipped,
            underruns=underruns,
        )

    async def _send_silence(self, first_at: float) -> None:
        """`SILENCE_FRAME_COUNT` Opus silence frames on the 20 ms grid from ``first_at``."""
        for n in range(SILENCE_FRAME_COUNT):
            await trio.sleep_until(first_at + n * FRAME_SECONDS)
            await self._send(OPUS_SILENCE)
            self._silence_sent += 1

    async def _silence_burst(self) -> None:
        """The five silence frames at once, for a cut playback (no time to pace them). The
        socket may be closed already (the link went away): then there is nobody to tell."""
        with contextlib.suppress(OSError, trio.ClosedResourceError):
            for _ in range(SILENCE_FRAME_COUNT):
                await self._send(OPUS_SILENCE)
                self._silence_sent += 1

    async def _send(self, payload: bytes) -> None:
        packet = self._cipher.encrypt(self._rtp.next_header(), payload)
        try:
            await self._socket.send(packet)
        except ConnectionRefusedError:
            # UDP is lossy anyway; one refused datagram must not end a playback.
            self._dropped += 1
