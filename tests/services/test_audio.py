"""`trio_companion.services.audio`: decoding, resampling, Discord PCM, splicing, levels.

Signals are synthetic sines whose level and frequency are known, so each property (duration,
channel count, RMS, pitch, seam continuity) is checked against a number, not a golden file.
"""

from __future__ import annotations

import io
import math

import numpy as np
import numpy.typing as npt
import pytest
import soundfile  # type: ignore[import-untyped]  # no stubs; only used to write test files
import trio

from trio_companion.services import audio
from trio_companion.services.audio import Audio, AudioError


def sine(
    seconds: float, *, rate: int = 24_000, hz: float = 440.0, amp: float = 0.5, phase: float = 0.0
) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    samples = (amp * np.sin(2 * math.pi * hz * t + phase)).astype(np.float32)
    return Audio(samples.reshape(-1, 1), rate)


def peak_hz(a: Audio) -> float:
    spectrum = np.abs(np.fft.rfft(a.samples[:, 0]))
    return float(np.argmax(spectrum) * a.rate / a.frames)


def file_bytes(a: Audio, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, a.samples, a.rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def max_step(samples: npt.NDArray[np.float32]) -> float:
    return float(np.max(np.abs(np.diff(samples, axis=0))))


# --- the value type ----------------------------------------------------------------------------


def test_audio_properties() -> None:
    a = Audio(np.zeros((48_000, 2), dtype=np.float32), 48_000)
    assert (a.frames, a.channels, a.duration) == (48_000, 2, 1.0)
    assert audio.silence(0.5, rate=16_000, channels=1).samples.shape == (8_000, 1)


@pytest.mark.parametrize(
    ("samples", "rate"),
    [
        (np.zeros(10, dtype=np.float32), 8_000),  # 1-D
        (np.zeros((10, 1), dtype=np.float64), 8_000),  # wrong dtype
        (np.zeros((10, 1), dtype=np.float32), 0),  # no rate
    ],
    ids=["1d", "float64", "rate0"],
)
def test_audio_rejects_bad_values(samples: npt.NDArray[np.generic], rate: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Audio(samples, rate)  # type: ignore[arg-type]  # deliberately wrong types


# --- decode / encode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [
        ("WAV", "PCM_16", 1e-3),
        ("WAV", "FLOAT", 1e-6),
        ("FLAC", None, 1e-3),
        ("OGG", "VORBIS", 0.1),
        ("OGG", "OPUS", 0.1),
        ("MP3", None, 0.1),
    ],
)
def test_decode_formats(fmt: str, subtype: str | None, tolerance: float) -> None:
    original = sine(1.0, rate=48_000 if subtype == "OPUS" else 24_000)
    decoded = audio.decode(file_bytes(original, fmt, subtype))
    assert decoded.rate == original.rate
    assert decoded.channels == 1
    # Lossy codecs pad or trim a few milliseconds at the edges.
    assert decoded.duration == pytest.approx(1.0, abs=0.1)
    assert audio.rms(decoded) == pytest.approx(audio.rms(original), abs=tolerance + 0.01)
    assert peak_hz(decoded) == pytest.approx(440.0, abs=2.0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "the data is empty"), (b"this is not audio" * 20, "Format not recognised")],
    ids=["empty", "garbage"],
)
def test_decode_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(AudioError) as caught:
        audio.decode(data)
    assert reason in caught.value.reason
    assert str(caught.value).startswith("Couldn't read the audio: ")


def test_encode_wav_round_trip_and_clipping() -> None:
    a = sine(0.25, rate=22_050, amp=1.5)  # over full scale: must clip, not wrap
    wav = audio.encode_wav(a)
    assert wav[:4] == b"RIFF"
    assert soundfile.info(io.BytesIO(wav)).subtype == "PCM_16"
    back = audio.decode(wav)
    assert (back.rate, back.frames) == (22_050, a.frames)
    assert back.samples.max() == pytest.approx(1.0, abs=1e-4)
    assert back.samples.min() == pytest.approx(-1.0, abs=1e-4)
    quiet = sine(0.25)
    assert np.allclose(audio.decode(audio.encode_wav(quiet)).samples, quiet.samples, atol=1e-4)


def test_from_pcm16() -> None:
    pcm = np.array([0, 16384, -32768, 32767, 1, -1], dtype="<i2").tobytes()
    a = audio.from_pcm16(pcm, 16_000, 2)
    assert (a.frames, a.channels, a.rate) == (3, 2, 16_000)
    expected = [[0.0, 0.5], [-1.0, 32767 / 32768], [1 / 32768, -1 / 32768]]
    assert np.allclose(a.samples, expected)
    with pytest.raises(AudioError, match="not a whole number of 2-channel"):
        audio.from_pcm16(pcm[:-2], 16_000, 2)


# --- resampling and channels -------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(24_000, 48_000), (22_050, 48_000), (48_000, 16_000)])
def test_resample_keeps_duration_pitch_level(src: int, dst: int) -> None:
    a = sine(1.0, rate=src)
    b = audio.resample(a, dst)
    assert b.rate == dst
    assert b.frames == pytest.approx(dst, abs=1)
    assert peak_hz(b) == pytest.approx(440.0, abs=1.5)
    assert audio.rms(b) == pytest.approx(audio.rms(a), rel=0.01)


def test_resample_same_rate_and_empty() -> None:
    a = sine(0.1)
    assert audio.resample(a, a.rate) is a
    empty = audio.resample(Audio(np.zeros((0, 2), dtype=np.float32), 24_000), 48_000)
    assert (empty.frames, empty.channels, empty.rate) == (0, 2, 48_000)


def test_to_channels() -> None:
    mono = sine(0.1)
    stereo = audio.to_channels(mono, 2)
    assert np.array_equal(stereo.samples[:, 0], stereo.samples[:, 1])
    five_one = Audio(np.tile(np.arange(6, dtype=np.float32) / 10, (4, 1)), 48_000)
    down = audio.to_channels(five_one, 2)
    # Left: mean of channels 0, 2, 4; right: mean of 1, 3, 5.
    assert down.samples[0].tolist() == pytest.approx([0.2, 0.3])
    assert audio.to_channels(five_one, 1).samples[0, 0] == pytest.approx(0.25)


def test_to_discord_pcm() -> None:
    pcm = audio.to_discord_pcm(sine(1.0, rate=24_000, amp=2.0))
    assert len(pcm) == 48_000 * 2 * 2  # 1 s at 48 kHz, stereo, 16-bit
    ints = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    assert np.array_equal(ints[:, 0], ints[:, 1])
    assert ints.max() == 32767  # clipped, never wrapped to negative
    assert ints.min() == -32767


# --- splitting and crossfading -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "chunk", "overlap", "sizes"),
    [
        (1.0, 0.3, 0.05, [7200, 7200, 7200, 6000]),
        (0.2, 0.3, 0.05, [4800]),  # shorter than a chunk: one chunk
        (1.0, 0.5, 0.0, [12000, 12000]),
    ],
)
def test_split_then_crossfade_is_identity(
    seconds: float, chunk: float, overlap: float, sizes: list[int]
) -> None:
    a = sine(seconds)
    chunks = audio.split_chunks(a, chunk, overlap)
    assert [c.frames for c in chunks] == sizes
    joined = audio.crossfade_concat(chunks, overlap)
    assert joined.frames == a.frames
    assert np.allclose(joined.samples, a.samples, atol=1e-6)


def test_split_rejects_overlap_not_below_chunk() -> None:
    with pytest.raises(ValueError, match="overlap < chunk"):
        audio.split_chunks(sine(1.0), 0.1, 0.1)


def test_crossfade_lengths_and_mismatch() -> None:
    parts = [sine(0.5), sine(0.3), sine(0.02)]
    # The last overlap is shortened to the 0.02 s part.
    joined = audio.crossfade_concat(parts, 0.05, curve="equal_power")
    assert joined.duration == pytest.approx(0.5 + 0.3 + 0.02 - 0.05 - 0.02)
    with pytest.raises(ValueError, match="parts differ"):
        audio.crossfade_concat([sine(0.1), sine(0.1, rate=48_000)], 0.01)
    with pytest.raises(ValueError, match="at least one"):
        audio.crossfade_concat([], 0.01)


@pytest.mark.parametrize("curve", ["linear", "equal_power"])
def test_crossfade_seam_has_no_click(curve: audio.Curve) -> None:
    """Splicing a tone ending at 0 to one starting at its peak jumps by half of full scale;
    with a fade the seam is as smooth as the tones themselves."""
    a, b = sine(0.3, hz=220.0), sine(0.3, hz=330.0, phase=math.pi / 2)
    # A sine's largest sample-to-sample step is about 2*pi*f*amp/rate.
    smooth = 2 * math.pi * 330.0 * 0.5 / 24_000
    butt_joined = audio.crossfade_concat([a, b], 0.0)
    assert max_step(butt_joined.samples) > 5 * smooth
    faded = audio.crossfade_concat([a, b], 0.02, curve=curve)
    assert max_step(faded.samples) < 1.5 * smooth


def test_equal_power_keeps_loudness_of_unrelated_noise() -> None:
    rng = np.random.default_rng(1)
    noise = [Audio(rng.normal(0, 0.1, (4_800, 1)).astype(np.float32), 24_000) for _ in range(2)]
    joined = audio.crossfade_concat(noise, 0.2, curve="equal_power")
    seam = Audio(joined.samples[0:4_800], 24_000)  # the whole overlap
    assert audio.rms(seam) == pytest.approx(0.1, rel=0.1)
    linear = audio.crossfade_concat(noise, 0.2, curve="linear")
    assert audio.rms(Audio(linear.samples[0:4_800], 24_000)) < 0.085  # the linear dip


def test_rms() -> None:
    assert audio.rms(sine(1.0, amp=0.5)) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert audio.rms(audio.silence(0.0)) == 0.0


# --- threads -----------------------------------------------------------------------------------


async def test_in_thread_wrappers() -> None:
    limiter = trio.CapacityLimiter(1)
    a = sine(0.5)
    with trio.fail_after(10):
        wav = await audio.encode_wav_in_thread(a, limiter=limiter)
        decoded = await audio.decode_in_thread(wav)
        resampled = await audio.resample_in_thread(decoded, 48_000)
        pcm = await audio.to_discord_pcm_in_thread(decoded, limiter=limiter)
        total = await audio.in_audio_thread(lambda x, y: x + y, 2, 3)
    assert decoded.frames == a.frames
    assert resampled.frames == 24_000
    assert len(pcm) == 24_000 * 4
    assert total == 5
    assert audio.AUDIO_LIMITER.borrowed_tokens == 0
    assert limiter.borrowed_tokens == 0
