"""Audio in memory: decode, resample, mix down, cut and splice, encode — for TTS and voice.

Theory of operation
-------------------
Every sound the bot handles passes through one value type, `Audio`: float32 samples shaped
``(frames, channels)`` in [-1, 1] plus a sample rate. Engines produce it (`decode` of the WAV a
TTS server or ``espeak-ng`` returns, `from_pcm16` of raw model output), converters transform it,
and `to_discord_pcm` turns it into what the voice sender's ``OpusEncoder.encode`` takes: 48 kHz,
stereo, signed 16-bit little-endian, interleaved.

The functions here are plain, synchronous and pure (no shared state): decoding and resampling a
few seconds of audio costs milliseconds to tens of milliseconds, too long for the trio thread
(STYLE 12). Callers in trio use the ``*_in_thread`` wrappers, which run the same function in a
worker thread under a `trio.CapacityLimiter` — `AUDIO_LIMITER` (2 threads) unless they pass
their own — so a burst of requests queues instead of starving the CPU.

Long audio can be processed piecewise (a voice converter with a bounded input length):
`split_chunks` cuts it into pieces that overlap by ``overlap_seconds``, and `crossfade_concat`
splices the processed pieces back by fading across each overlap. With the default linear fade
the two gains sum to 1 at every sample, so splitting and splicing unprocessed audio gives it
back exactly, and processed pieces that still resemble each other join without a click. The
equal-power fade (gains whose *squares* sum to 1) suits unrelated sounds joined end to end.

Errors::

    CompanionError                 (trio_companion.errors)
    └── AudioError                 (this module: bytes that are not audio we can read)

`AudioError` is for bad *data* (an unknown container, truncated PCM). Bad *arguments* — a
negative rate, parts with different rates — are caller bugs and raise `ValueError`.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar, TypeVarTuple, final

import numpy as np
import numpy.typing as npt

# Neither ships type hints; the few calls below pin their results to typed arrays.
import soundfile  # type: ignore[import-untyped]
import soxr  # type: ignore[import-untyped]
import trio

from trio_companion.errors import CompanionError

__all__ = [
    "AUDIO_LIMITER",
    "CHANNELS",
    "SAMPLE_RATE",
    "Audio",
    "AudioError",
    "Curve",
    "crossfade_concat",
    "decode",
    "decode_in_thread",
    "encode_wav",
    "encode_wav_in_thread",
    "from_pcm16",
    "in_audio_thread",
    "resample",
    "resample_in_thread",
    "rms",
    "silence",
    "split_chunks",
    "to_channels",
    "to_discord_pcm",
    "to_discord_pcm_in_thread",
]

SAMPLE_RATE: Final = 48_000  # Discord voice: Opus at 48 kHz (Discord developer docs, Voice)
CHANNELS: Final = 2  # Discord voice sends stereo Opus frames (Discord developer docs, Voice)
_PCM16_SCALE: Final = 32_768.0  # 2**15: full scale of signed 16-bit PCM
_RESAMPLE_QUALITY: Final = "HQ"  # soxr's "high quality" preset: transparent, fast enough for TTS

# Two threads: enough to decode one reply while the next sentence is resampled, few enough to
# leave cores for the models. trio >= 0.23 lets a limiter be created outside `trio.run`, and it
# holds no per-run state, so one module-level limiter serves every run (and every test).
AUDIO_LIMITER: Final = trio.CapacityLimiter(2)

Samples = npt.NDArray[np.float32]
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
Curve = Literal["linear", "equal_power"]


@final
class AudioError(CompanionError):
    """Bytes that could not be read as audio; `reason` says why (a phrase, no final stop).

    Raised by `decode` (unknown or corrupt container, empty input) and `from_pcm16` (a length
    that is not a whole number of frames).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Couldn't read the audio: {reason}.")


@dataclass(frozen=True, slots=True)
class Audio:
    """Float32 ``samples`` shaped ``(frames, channels)``, nominally in [-1, 1], at ``rate`` Hz.

    Treat ``samples`` as read-only: functions here never modify their input and return new
    arrays. Construction checks the shape, dtype and rate (`ValueError` on a mismatch).
    """

    samples: Samples
    rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[1] < 1:
            raise ValueError(f"samples must be (frames, channels), got {self.samples.shape}")
        if self.samples.dtype != np.float32:
            raise ValueError(f"samples must be float32, got {self.samples.dtype}")
        if self.rate <= 0:
            raise ValueError(f"rate must be positive, got {self.rate}")

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.rate


def silence(seconds: float, *, rate: int = SAMPLE_RATE, channels: int = CHANNELS) -> Audio:
    """``seconds`` of digital silence."""
    frames = max(0, round(seconds * rate))
    return Audio(np.zeros((frames, channels), dtype=np.float32), rate)


def decode(data: bytes) -> Audio:
    """Decode a whole file held in memory: WAV, FLAC, OGG/Vorbis/Opus, MP3 and the rest libsndfile
    reads (MP3 needs libsndfile >= 1.1, which the ``soundfile`` wheels bundle).

    Raises `AudioError` for empty input or bytes libsndfile cannot read.
    """
    if not data:
        raise AudioError("the data is empty")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as error:
        # error_string is libsndfile's own words ("Format not recognised."), without the
        # BytesIO repr that str(error) carries.
        detail = str(error.error_string).rstrip(".")
        raise AudioError(f"not a supported audio format ({detail})") from error
    except (RuntimeError, TypeError, ValueError) as error:
        # soundfile's own checks of headers it half-recognises.
        raise AudioError(f"not a supported audio format ({error})") from error
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), int(rate))


def from_pcm16(data: bytes, rate: int, channels: int) -> Audio:
    """Audio from signed 16-bit little-endian interleaved PCM.

    Raises `AudioError` when ``data`` is not a whole number of frames, `ValueError` for a
    non-positive ``rate`` or ``channels``.
    """
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    frame_bytes = 2 * channels
    if len(data) % frame_bytes:
        raise AudioError(
            f"{len(data)} bytes is not a whole number of {channels}-channel 16-bit frames"
        )
    ints = np.frombuffer(data, dtype="<i2").reshape(-1, channels)
    return Audio((ints.astype(np.float32) / _PCM16_SCALE), rate)


def resample(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` Hz (soxr, "HQ"); the same object when the rate already matches."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if rate == audio.rate:
        return audio
    if audio.frames == 0:
        return Audio(np.zeros((0, audio.channels), dtype=np.float32), rate)
    out = soxr.resample(audio.samples, audio.rate, rate, quality=_RESAMPLE_QUALITY)
    return Audio(np.ascontiguousarray(out, dtype=np.float32).reshape(-1, audio.channels), rate)


def to_channels(audio: Audio, channels: int) -> Audio:
    """``audio`` with ``channels`` channels: mono is copied to each; more are averaged down.

    To mono: the mean of all channels. To stereo from more: left is the mean of the even
    channels, right of the odd ones (WAV order puts left-side speakers first in each pair).
    """
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    have = audio.channels
    if have == channels:
        return audio
    samples = audio.samples
    if have == 1:
        out = np.repeat(samples, channels, axis=1)
    elif channels == 1:
        out = samples.mean(axis=1, keepdims=True, dtype=np.float32)
    elif channels == 2:
        out = np.stack(
            [samples[:, 0::2].mean(axis=1), samples[:, 1::2].mean(axis=1)], axis=1
        ).astype(np.float32)
    else:
        raise ValueError(f"can't convert {have} channels to {channels}")
    return Audio(np.ascontiguousarray(out, dtype=np.float32), audio.rate)


def _to_int16(samples: Samples) -> npt.NDArray[np.int16]:
    # Scale by 32767, not 32768, so +1.0 maps to the largest positive value without wrapping.
    clipped = np.clip(samples, -1.0, 1.0)
    return np.round(clipped * (_PCM16_SCALE - 1)).astype("<i2")


def to_discord_pcm(audio: Audio) -> bytes:
    """48 kHz stereo s16le interleaved bytes, ready for ``OpusEncoder.encode``; clips to [-1, 1]."""
    ready = resample(to_channels(audio, CHANNELS), SAMPLE_RATE)
    return _to_int16(ready.samples).tobytes()


def encode_wav(audio: Audio) -> bytes:
    """A 16-bit PCM WAV file of ``audio`` (clipped to [-1, 1]) at its own rate and channels."""
    buffer = io.BytesIO()
    soundfile.write(buffer, _to_int16(audio.samples), audio.rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def rms(audio: Audio) -> float:
    """Root-mean-square level over all samples of all channels; 0.0 for empty audio."""
    if audio.samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))


def _fades(frames: int, curve: Curve) -> tuple[Samples, Samples]:
    """(fade-out, fade-in) gains over ``frames``, shaped ``(frames, 1)`` to broadcast."""
    # Sample centres, so neither gain is exactly 0 or 1 inside the overlap and the two halves
    # are mirror images of each other.
    t = (np.arange(frames, dtype=np.float64) + 0.5) / frames
    if curve == "linear":
        fade_in = t
        fade_out = 1.0 - t
    else:
        fade_in = np.sin(t * (math.pi / 2))
        fade_out = np.cos(t * (math.pi / 2))
    return (
        fade_out.astype(np.float32).reshape(-1, 1),
        fade_in.astype(np.float32).reshape(-1, 1),
    )


def crossfade_concat(
    parts: Sequence[Audio], overlap_seconds: float, *, curve: Curve = "linear"
) -> Audio:
    """Join ``parts`` end to end, fading each into the next over ``overlap_seconds``.

    The overlap is shortened where a part is shorter than it. ``"linear"`` (the default) keeps
    the level of material that is the same on both sides of a seam (the pieces of
    `split_chunks`); ``"equal_power"`` keeps the loudness of unrelated material. All parts must
    share rate and channel count (`ValueError` otherwise, or if ``parts`` is empty).
    """
    if not parts:
        raise ValueError("crossfade_concat needs at least one part")
    if overlap_seconds < 0:
        raise ValueError(f"overlap_seconds must not be negative, got {overlap_seconds}")
    rate, channels = parts[0].rate, parts[0].channels
    for part in parts[1:]:
        if part.rate != rate or part.channels != channels:
            raise ValueError(
                f"parts differ: {part.rate} Hz x{part.channels} vs {rate} Hz x{channels}"
            )
    wanted = round(overlap_seconds * rate)
    overlaps = [
        min(wanted, previous.frames, current.frames)
        for previous, current in itertools.pairwise(parts)
    ]
    out = np.empty((sum(p.frames for p in parts) - sum(overlaps), channels), dtype=np.float32)
    out[: parts[0].frames] = parts[0].samples
    end = parts[0].frames
    for part, overlap in zip(parts[1:], overlaps, strict=True):
        if overlap:
            fade_out, fade_in = _fades(overlap, curve)
            seam = slice(end - overlap, end)
            out[seam] = out[seam] * fade_out + part.samples[:overlap] * fade_in
        rest = part.frames - overlap
        out[end : end + rest] = part.samples[overlap:]
        end += rest
    return Audio(out, rate)


def split_chunks(audio: Audio, chunk_seconds: float, overlap_seconds: float) -> list[Audio]:
    """Cut ``audio`` into chunks of ``chunk_seconds`` that overlap by ``overlap_seconds``.

    Every chunk but the last is exactly ``chunk_seconds`` long; the last holds the rest and is
    longer than the overlap. ``crossfade_concat(chunks, overlap_seconds)`` (linear) gives
    ``audio`` back. Audio no longer than one chunk is one chunk. Raises `ValueError` unless
    ``0 <= overlap_seconds < chunk_seconds`` (in whole frames).
    """
    size = round(chunk_seconds * audio.rate)
    overlap = round(overlap_seconds * audio.rate)
    if overlap < 0 or size <= overlap:
        raise ValueError(
            f"need 0 <= overlap < chunk, got chunk {chunk_seconds}s, overlap {overlap_seconds}s"
        )
    step = size - overlap
    chunks: list[Audio] = []
    start = 0
    while start + size < audio.frames:
        chunks.append(Audio(audio.samples[start : start + size], audio.rate))
        start += step
    chunks.append(Audio(audio.samples[start:], audio.rate))
    return chunks


async def in_audio_thread(
    fn: Callable[[*Ts], T],
    *args: *Ts,
    limiter: trio.CapacityLimiter | None = None,
) -> T:
    """``fn(*args)`` in a worker thread under ``limiter`` (default `AUDIO_LIMITER`).

    For any of this module's functions, or a caller's own audio work. Cancellation is honoured
    while waiting for the limiter; once the thread runs, trio waits for it to finish and then
    raises ``Cancelled``, dropping the result.
    """
    return await trio.to_thread.run_sync(fn, *args, limiter=limiter or AUDIO_LIMITER)


async def decode_in_thread(data: bytes, *, limiter: trio.CapacityLimiter | None = None) -> Audio:
    """`decode` in a worker thread; see `in_audio_thread`."""
    return await in_audio_thread(decode, data, limiter=limiter)


async def resample_in_thread(
    audio: Audio, rate: int, *, limiter: trio.CapacityLimiter | None = None
) -> Audio:
    """`resample` in a worker thread; see `in_audio_thread`."""
    return await in_audio_thread(resample, audio, rate, limiter=limiter)


async def to_discord_pcm_in_thread(
    audio: Audio, *, limiter: trio.CapacityLimiter | None = None
) -> bytes:
    """`to_discord_pcm` in a worker thread; see `in_audio_thread`."""
    return await in_audio_thread(to_discord_pcm, audio, limiter=limiter)


async def encode_wav_in_thread(
    audio: Audio, *, limiter: trio.CapacityLimiter | None = None
) -> bytes:
    """`encode_wav` in a worker thread; see `in_audio_thread`."""
    return await in_audio_thread(encode_wav, audio, limiter=limiter)
