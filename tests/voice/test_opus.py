"""`voice.opus`: PyAV ``libopus`` encoding into 20 ms packets and decoding back (PROTOCOL.md 5.6).

Opus is lossy, so round trips compare RMS levels, never samples."""

from __future__ import annotations

import math
from array import array

import trio

from trio_companion.voice.opus import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    OpusDecoder,
    OpusEncoder,
    encode_frames,
)

DEADLINE = 10.0  # seconds; encoding one second of audio takes milliseconds
AMPLITUDE = 8000  # about -12 dBFS: loud, far from clipping
MAX_PACKET = 1500  # must fit in one UDP datagram on a normal MTU


def sine_pcm(seconds: float, freq: float = 440.0) -> bytes:
    """Interleaved s16 stereo PCM of a sine, the same signal on both channels."""
    samples = array("h")
    for n in range(round(seconds * SAMPLE_RATE)):
        value = round(AMPLITUDE * math.sin(2 * math.pi * freq * n / SAMPLE_RATE))
        samples.extend((value, value))
    return samples.tobytes()


def rms(pcm: bytes) -> float:
    samples = array("h", pcm)
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def test_one_second_of_sine_is_50_small_packets_and_decodes_back() -> None:
    pcm = sine_pcm(1.0)
    assert len(pcm) == 50 * FRAME_BYTES

    encoder = OpusEncoder()
    packets = encoder.encode(pcm)
    assert len(packets) == 50
    assert encoder.buffered_bytes == 0
    assert encoder.flush() == []
    assert all(0 < len(p) < MAX_PACKET for p in packets)

    decoder = OpusDecoder()
    decoded = [decoder.decode(p) for p in packets]
    assert all(len(chunk) == FRAME_BYTES for chunk in decoded)
    out = b"".join(decoded)
    assert len(out) == len(pcm)

    expected = rms(pcm)
    assert expected > 5000
    # The decoder's first ~6.5 ms are the encoder's lookahead, so compare the whole second
    # loosely rather than sample by sample.
    assert abs(rms(out) - expected) < 0.2 * expected


def test_partial_frames_are_buffered_across_calls() -> None:
    pcm = sine_pcm(0.1)  # 5 frames
    encoder = OpusEncoder()

    assert encoder.encode(pcm[:1000]) == []
    assert encoder.buffered_bytes == 1000
    # Odd cut points, including the middle of a sample, must not matter.
    first = encoder.encode(pcm[1000:8001])
    assert len(first) == 2
    assert encoder.buffered_bytes == 8001 - 2 * FRAME_BYTES
    rest = encoder.encode(pcm[8001:])
    assert len(first) + len(rest) == 5
    assert encoder.buffered_bytes == 0

    # The same PCM in one call gives the same number of packets.
    assert len(OpusEncoder().encode(pcm)) == 5


def test_flush_pads_the_last_partial_frame_with_silence() -> None:
    pcm = sine_pcm(0.05)  # 2.5 frames
    encoder = OpusEncoder()
    packets = encoder.encode(pcm)
    assert len(packets) == 2
    assert encoder.buffered_bytes == FRAME_BYTES // 2

    tail = encoder.flush()
    assert len(tail) == 1
    assert encoder.buffered_bytes == 0
    assert encoder.flush() == []

    decoder = OpusDecoder()
    for packet in packets:
        decoder.decode(packet)
    last = decoder.decode(tail[0])
    assert len(last) == FRAME_BYTES
    # The decoded audio lags by the encoder's lookahead (312 samples), so the signal half of
    # this frame ends at sample 792 of 960; the last 120 samples come from the padding.
    assert rms(last[-FRAME_BYTES // 8 :]) < 0.1 * rms(last[: FRAME_BYTES // 2])

    # The encoder keeps working after a flush.
    assert len(encoder.encode(sine_pcm(0.02))) == 1


def test_silence_encodes_to_short_packets() -> None:
    silence = bytes(25 * FRAME_BYTES)
    tone_packets = OpusEncoder().encode(sine_pcm(0.5))
    silent_packets = OpusEncoder().encode(silence)
    assert len(silent_packets) == 25
    # Skip the first packets of each, where the encoder is still settling.
    assert max(len(p) for p in silent_packets[5:]) < 20
    assert max(len(p) for p in silent_packets[5:]) < min(len(p) for p in tone_packets[5:])

    decoder = OpusDecoder()
    out = b"".join(decoder.decode(p) for p in silent_packets)
    assert len(out) == len(silence)
    assert rms(out) < 50


async def test_encode_frames_runs_in_a_thread_from_trio() -> None:
    limiter = trio.CapacityLimiter(1)
    pcm = sine_pcm(0.21)  # 10.5 frames: the last one is padded
    with trio.fail_after(DEADLINE):
        packets = await encode_frames(pcm, limiter=limiter)
    assert len(packets) == 11
    assert limiter.borrowed_tokens == 0

    decoder = OpusDecoder()
    out = b"".join(decoder.decode(p) for p in packets)
    assert len(out) == 11 * FRAME_SAMPLES * 4


async def test_encode_frames_calls_share_one_limiter() -> None:
    limiter = trio.CapacityLimiter(1)
    pcm = sine_pcm(0.1)
    results: list[int] = []

    async def one() -> None:
        results.append(len(await encode_frames(pcm, limiter=limiter, bitrate=32_000)))

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
    assert results == [5, 5, 5]
