"""Opus encoding and decoding through PyAV's ``libopus`` (PROTOCOL.md 5.6).

Theory of operation
-------------------

Discord voice carries Opus at 48 kHz, 2 channels, in 20 ms frames: 960 samples per channel, which
is `FRAME_BYTES` = 3840 bytes of interleaved signed 16-bit PCM.

- `OpusEncoder` accepts PCM in chunks of any length. Whole 20 ms frames are encoded at once, one
  Opus packet each; the remainder (even a half sample) waits in a buffer for the next `encode`.
  `flush` pads the last partial frame with silence and encodes it. The encoder stays usable
  after `flush`: it is not drained, because draining ends the codec stream and would add a
  packet that is not a 20 ms frame of ours.
- `OpusDecoder` turns one packet back into interleaved s16 stereo PCM (tests; later the
  receiver).
- Both are synchronous and CPU-bound (roughly a millisecond per frame) and not thread-safe. From
  trio, use `encode_frames`, which runs a fresh encoder in a worker thread under the caller's
  audio `trio.CapacityLimiter` (STYLE.md 12).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final, final

import trio
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.codec.context import CodecContext
from av.packet import Packet

__all__ = [
    "CHANNELS",
    "DEFAULT_BITRATE",
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "OpusDecoder",
    "OpusEncoder",
    "encode_frames",
]

SAMPLE_RATE: Final = 48_000  # Discord voice: 48 kHz (PROTOCOL.md 5.6)
CHANNELS: Final = 2  # Discord voice: stereo (PROTOCOL.md 5.6)
FRAME_SAMPLES: Final = 960  # 20 ms per channel at 48 kHz (PROTOCOL.md 5.6)
SAMPLE_BYTES: Final = 2  # signed 16-bit
FRAME_BYTES: Final = FRAME_SAMPLES * CHANNELS * SAMPLE_BYTES  # 3840 (PROTOCOL.md 5.6)
DEFAULT_BITRATE: Final = 64_000  # plenty for speech; discord.py defaults to 128 kbps for music

_TIME_BASE: Final = Fraction(1, SAMPLE_RATE)
_LAYOUT: Final = "stereo"
_FORMAT: Final = "s16"


@final
class OpusEncoder:
    """Encode interleaved s16 stereo 48 kHz PCM into 20 ms Opus packets.

    Not thread-safe: one encoder belongs to one thread at a time.
    """

    def __init__(self, bitrate: int = DEFAULT_BITRATE) -> None:
        if bitrate <= 0:
            raise ValueError(f"bitrate must be positive, got {bitrate}")
        ctx = CodecContext.create("libopus", "w")
        if not isinstance(ctx, AudioCodecContext):  # narrows the codec-generic return type
            raise TypeError(f"libopus gave a {type(ctx).__name__}, expected an audio codec")
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = _LAYOUT
        ctx.format = _FORMAT
        ctx.bit_rate = bitrate
        ctx.time_base = _TIME_BASE
        ctx.open()
        self._ctx = ctx
        self._pending = bytearray()
        self._pts = 0
        self.bitrate: Final = bitrate

    @property
    def buffered_bytes(self) -> int:
        """PCM bytes waiting for a whole frame (always < `FRAME_BYTES`)."""
        return len(self._pending)

    def encode(self, pcm: bytes) -> list[bytes]:
        """Buffer ``pcm`` and return one Opus packet per whole 20 ms frame now available."""
        self._pending += pcm
        whole = len(self._pending) - len(self._pending) % FRAME_BYTES
        packets: list[bytes] = []
        for start in range(0, whole, FRAME_BYTES):
            packets += self._encode_frame(bytes(self._pending[start : start + FRAME_BYTES]))
        del self._pending[:whole]
        return packets

    def flush(self) -> list[bytes]:
        """Pad the buffered partial frame with silence and encode it; ``[]`` if none is buffered."""
        if not self._pending:
            return []
        frame = bytes(self._pending) + bytes(FRAME_BYTES - len(self._pending))
        self._pending.clear()
        return self._encode_frame(frame)

    def _encode_frame(self, pcm: bytes) -> list[bytes]:
        frame = AudioFrame(format=_FORMAT, layout=_LAYOUT, samples=FRAME_SAMPLES)
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = _TIME_BASE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        frame.planes[0].update(pcm)
        # libopus returns the packet for a frame right away (its lookahead is reported as
        # initial padding instead of being held back), so this is one packet per frame.
        return [bytes(packet) for packet in self._ctx.encode(frame)]


@final
class OpusDecoder:
    """Decode Opus packets into interleaved s16 stereo 48 kHz PCM. Not thread-safe."""

    def __init__(self) -> None:
        ctx = CodecContext.create("libopus", "r")
        if not isinstance(ctx, AudioCodecContext):
            raise TypeError(f"libopus gave a {type(ctx).__name__}, expected an audio codec")
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = _LAYOUT
        self._ctx = ctx
        # The decoder may hand back another sample format (e.g. planar float, depending on the
        # FFmpeg build); the resampler converts, and passes frames through when they already fit.
        self._resampler = AudioResampler(format=_FORMAT, layout=_LAYOUT, rate=SAMPLE_RATE)

    def decode(self, packet: bytes) -> bytes:
        """Return the PCM for one Opus packet (3840 bytes for a 20 ms packet).

        Raises an `av.error.FFmpegError` subclass if FFmpeg rejects the packet as corrupt.
        """
        out = bytearray()
        for frame in self._ctx.decode(Packet(packet)):
            for converted in self._resampler.resample(frame):
                size = converted.samples * CHANNELS * SAMPLE_BYTES
                # The plane's buffer can carry alignment padding past the samples.
                out += bytes(converted.planes[0])[:size]
        return bytes(out)


def _encode_all(pcm: bytes, bitrate: int) -> list[bytes]:
    encoder = OpusEncoder(bitrate)
    return encoder.encode(pcm) + encoder.flush()


async def encode_frames(
    pcm: bytes, *, limiter: trio.CapacityLimiter, bitrate: int = DEFAULT_BITRATE
) -> list[bytes]:
    """Encode a whole PCM buffer (last frame padded with silence) in a worker thread.

    Each call uses its own encoder, so calls never share codec state. Cancellation is honoured
    while waiting for the limiter; once the thread runs, trio waits for it to finish (a few ms
    per second of audio) and then raises `trio.Cancelled`, discarding the packets.
    """
    return await trio.to_thread.run_sync(_encode_all, pcm, bitrate, limiter=limiter)
