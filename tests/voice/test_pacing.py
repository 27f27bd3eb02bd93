"""`voice.pacing.PacedSender` over a real loopback UDP pair, under the autojump `MockClock`.

The receiving side decrypts with its own `TransportCipher` of the same key and records
`trio.current_time()` on receipt; loopback delivery is immediate, so a packet's receipt time is
its send time on the virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from trio_companion.voice.crypto import AES256_GCM, XCHACHA20_POLY1305, TransportCipher
from trio_companion.voice.pacing import (
    FRAME_SECONDS,
    OPUS_SILENCE,
    SILENCE_FRAME_COUNT,
    SPEAKING_OFF_TIMEOUT,
    UNDERRUN_GRACE,
    PacedSender,
    PlaybackReport,
)
from trio_companion.voice.rtp import RtpHeader, RtpSender

DEADLINE = 60.0  # virtual seconds; every test finishes in well under one
KEY = bytes(range(32))
SSRC = 0x1234
GRID_TOLERANCE = 1e-9  # MockClock jumps by differences of floats; allow an ulp or so


@dataclass(frozen=True)
class Received:
    at: float
    header: RtpHeader
    payload: bytes


@pytest.fixture
async def udp_pair() -> AsyncIterator[tuple[trio.socket.SocketType, trio.socket.SocketType]]:
    sender = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    receiver = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    with sender, receiver:
        await sender.bind(("127.0.0.1", 0))
        await receiver.bind(("127.0.0.1", 0))
        await sender.connect(receiver.getsockname())
        await receiver.connect(sender.getsockname())
        yield sender, receiver


async def _receive_all(
    sock: trio.socket.SocketType, cipher: TransportCipher, out: list[Received]
) -> None:
    while True:
        packet = await sock.recv(2048)
        header, payload = cipher.decrypt_audio(packet)
        out.append(Received(trio.current_time(), header, payload))


async def _produce(
    send: trio.MemorySendChannel[bytes], schedule: list[tuple[float, bytes]]
) -> None:
    """Send each frame no earlier than its absolute trio time, then close."""
    async with send:
        for at, frame in schedule:
            await trio.sleep_until(at)
            await send.send(frame)


def _frame(n: int) -> bytes:
    return b"opus" + n.to_bytes(2, "big")


def _on_grid(at: float, start: float, slot: int) -> bool:
    return at == pytest.approx(start + slot * FRAME_SECONDS, abs=GRID_TOLERANCE)


class _Speaking:
    """Records each Speaking call with how many packets had arrived by then."""

    def __init__(self, received: list[Received], *, off_delay: float = 0.0) -> None:
        self.calls: list[tuple[bool, int]] = []
        self._received = received
        self._off_delay = off_delay

    async def __call__(self, speaking: bool) -> None:
        # Let the receiver drain whatever is already on the wire first.
        await trio.testing.wait_all_tasks_blocked()
        if not speaking and self._off_delay:
            await trio.sleep(self._off_delay)
        self.calls.append((speaking, len(self._received)))


@pytest.mark.parametrize("mode", [AES256_GCM, XCHACHA20_POLY1305])
async def test_frames_on_grid_then_silence(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
    mode: str,
) -> None:
    sock, peer = udp_pair
    received: list[Received] = []
    speaking = _Speaking(received)
    # Start near the wrap points: sequence wraps at 2**16, timestamp at 2**32.
    rtp = RtpSender(SSRC, sequence=65533, timestamp=2**32 - 1920)
    pacer = PacedSender(sock, rtp, TransportCipher(mode, KEY), on_speaking=speaking)
    send, recv = trio.open_memory_channel[bytes](0)
    frames = [_frame(n) for n in range(10)]
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive_all, peer, TransportCipher(mode, KEY), received)
            t0 = trio.current_time()
            nursery.start_soon(_produce, send, [(t0, f) for f in frames])
            report = await pacer.play(recv)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    total = len(frames) + SILENCE_FRAME_COUNT
    assert report.frames_sent == len(frames)
    assert report.late_frames == 0
    assert report.skipped_slots == 0
    assert report.started_at == pytest.approx(t0, abs=GRID_TOLERANCE)
    assert _on_grid(report.ended_at, t0, total - 1)
    assert len(received) == total
    for n, packet in enumerate(received):
        assert _on_grid(packet.at, report.started_at, n), (n, packet.at)
        assert packet.header.sequence == (65533 + n) % 2**16
        assert packet.header.timestamp == (2**32 - 1920 + 960 * n) % 2**32
        assert packet.header.ssrc == SSRC
    assert [p.payload for p in received] == frames + [OPUS_SILENCE] * SILENCE_FRAME_COUNT
    assert speaking.calls == [(True, 0), (False, total)]
    stats = pacer.statistics()
    assert not stats.playing
    assert (stats.frames_sent, stats.silence_frames_sent) == (len(frames), SILENCE_FRAME_COUNT)
    assert stats.dropped_packets == 0


async def test_slow_producer_counts_late_frames_without_shifting_the_grid(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
) -> None:
    sock, peer = udp_pair
    received: list[Received] = []
    pacer = PacedSender(
        sock,
        RtpSender(SSRC),
        TransportCipher(XCHACHA20_POLY1305, KEY),
        on_speaking=_Speaking(received),
    )
    send, recv = trio.open_memory_channel[bytes](0)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _receive_all, peer, TransportCipher(XCHACHA20_POLY1305, KEY), received
            )
            t0 = trio.current_time()
            schedule = [
                (t0, _frame(0)),
                (t0, _frame(1)),
                (t0, _frame(2)),
                (t0 + 0.070, _frame(3)),  # due at 0.060: 10 ms late, sent on arrival
                (t0, _frame(4)),  # due at 0.080: the grid did not move
                (t0, _frame(5)),  # 0.100
                (t0 + 0.305, _frame(6)),  # due at 0.120: 9 frames behind, skip to slot 16
                (t0, _frame(7)),  # slot 17
            ]
            nursery.start_soon(_produce, send, schedule)
            report = await pacer.play(recv)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    assert (report.frames_sent, report.late_frames, report.skipped_slots) == (8, 2, 10)
    assert report.started_at == pytest.approx(t0, abs=GRID_TOLERANCE)
    assert report.ended_at == pytest.approx(t0 + 22 * FRAME_SECONDS, abs=GRID_TOLERANCE)
    times = [p.at - t0 for p in received]
    expected = [0.0, 0.020, 0.040, 0.070, 0.080, 0.100, 0.320, 0.340]
    expected += [0.360, 0.380, 0.400, 0.420, 0.440]  # silence continues the grid
    assert times == pytest.approx(expected, abs=GRID_TOLERANCE)
    # Sequence and timestamp count sent packets, skipped slots or not.
    assert [p.header.sequence for p in received] == list(range(13))
    assert [p.header.timestamp for p in received] == [960 * n for n in range(13)]
    stats = pacer.statistics()
    assert (stats.late_frames, stats.skipped_slots) == (2, 10)


async def test_a_pause_closes_the_talk_spurt_and_audio_resumes_on_a_new_grid(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
) -> None:
    sock, peer = udp_pair
    received: list[Received] = []
    speaking = _Speaking(received)
    pacer = PacedSender(
        sock, RtpSender(SSRC), TransportCipher(AES256_GCM, KEY), on_speaking=speaking
    )
    send, recv = trio.open_memory_channel[bytes](0)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive_all, peer, TransportCipher(AES256_GCM, KEY), received)
            t0 = trio.current_time()
            schedule = [(t0, _frame(n)) for n in range(3)]
            schedule += [(t0 + 1.0, _frame(3)), (t0, _frame(4))]  # the next sentence, 1 s on
            nursery.start_soon(_produce, send, schedule)
            report = await pacer.play(recv)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    assert (report.frames_sent, report.underruns, report.late_frames) == (5, 1, 0)
    pause = 3 * FRAME_SECONDS + UNDERRUN_GRACE  # frame 3 was due at 60 ms
    silence = [pause + n * FRAME_SECONDS for n in range(SILENCE_FRAME_COUNT)]
    resumed = [1.0 + n * FRAME_SECONDS for n in range(2 + SILENCE_FRAME_COUNT)]
    expected = [0.0, 0.020, 0.040, *silence, *resumed]
    assert [p.at - t0 for p in received] == pytest.approx(expected, abs=GRID_TOLERANCE)
    payloads = [p.payload for p in received]
    assert payloads == [
        *[_frame(n) for n in range(3)],
        *[OPUS_SILENCE] * SILENCE_FRAME_COUNT,
        _frame(3),
        _frame(4),
        *[OPUS_SILENCE] * SILENCE_FRAME_COUNT,
    ]
    # One RTP stream throughout: +1 sequence and +960 timestamp per packet, pause or not.
    assert [p.header.sequence for p in received] == list(range(len(received)))
    assert [p.header.timestamp for p in received] == [960 * n for n in range(len(received))]
    assert speaking.calls == [(True, 0), (False, len(received))]
    assert pacer.statistics().underruns == 1


async def test_cancellation_still_sends_speaking_false(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
) -> None:
    sock, peer = udp_pair
    received: list[Received] = []
    # Speaking False takes virtual time: it only completes because its scope is shielded.
    speaking = _Speaking(received, off_delay=0.5)
    pacer = PacedSender(
        sock, RtpSender(SSRC), TransportCipher(XCHACHA20_POLY1305, KEY), on_speaking=speaking
    )
    send, recv = trio.open_memory_channel[bytes](0)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _receive_all, peer, TransportCipher(XCHACHA20_POLY1305, KEY), received
            )
            t0 = trio.current_time()

            async def endless() -> None:
                n = 0
                with send:
                    try:
                        while True:
                            await send.send(_frame(n))
                            n += 1
                    except trio.BrokenResourceError:
                        pass  # play closed its end when it was cancelled

            nursery.start_soon(endless)
            with trio.move_on_at(t0 + 0.050) as scope:  # between packets 2 (0.040) and 3
                await pacer.play(recv)
            assert scope.cancelled_caught
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    # Cut: the silence frames go out at once (not on the grid), then Speaking off.
    assert speaking.calls == [(True, 0), (False, 3 + SILENCE_FRAME_COUNT)]
    payloads = [p.payload for p in received]
    assert payloads == [_frame(0), _frame(1), _frame(2), *[OPUS_SILENCE] * SILENCE_FRAME_COUNT]
    assert [p.at - t0 for p in received[3:]] == pytest.approx([0.050] * SILENCE_FRAME_COUNT)
    assert not pacer.statistics().playing


async def test_cancellation_bounds_a_stuck_speaking_false(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
) -> None:
    sock, _ = udp_pair
    calls: list[bool] = []

    async def stuck(speaking: bool) -> None:
        calls.append(speaking)
        if not speaking:
            await trio.sleep_forever()

    pacer = PacedSender(
        sock, RtpSender(SSRC), TransportCipher(XCHACHA20_POLY1305, KEY), on_speaking=stuck
    )
    send, recv = trio.open_memory_channel[bytes](1)
    send.send_nowait(_frame(0))  # then the channel stays open and empty
    with trio.fail_after(DEADLINE):
        t0 = trio.current_time()
        with trio.move_on_at(t0 + 1.0):
            await pacer.play(recv)
        assert trio.current_time() == pytest.approx(t0 + 1.0 + SPEAKING_OFF_TIMEOUT)
    assert calls == [True, False]
    # play closed its end of the channel.
    with pytest.raises(trio.BrokenResourceError):
        send.send_nowait(_frame(1))


async def test_empty_channel_plays_nothing(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
) -> None:
    sock, _ = udp_pair
    calls: list[bool] = []

    async def on_speaking(speaking: bool) -> None:
        calls.append(speaking)

    pacer = PacedSender(
        sock, RtpSender(SSRC), TransportCipher(XCHACHA20_POLY1305, KEY), on_speaking=on_speaking
    )
    send, recv = trio.open_memory_channel[bytes](0)
    send.close()
    with trio.fail_after(DEADLINE):
        report = await pacer.play(recv)
    assert report == PlaybackReport(0, 0, 0.0, 0.0)
    assert calls == []
    assert pacer.statistics().frames_sent == 0


async def test_play_is_not_reentrant(
    autojump_clock: trio.testing.MockClock,
    udp_pair: tuple[trio.socket.SocketType, trio.socket.SocketType],
) -> None:
    sock, _ = udp_pair

    async def on_speaking(speaking: bool) -> None:
        pass

    pacer = PacedSender(
        sock, RtpSender(SSRC), TransportCipher(XCHACHA20_POLY1305, KEY), on_speaking=on_speaking
    )
    _, first = trio.open_memory_channel[bytes](0)
    _, second = trio.open_memory_channel[bytes](0)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.play, first)
            await trio.testing.wait_all_tasks_blocked()
            assert pacer.statistics().playing
            with pytest.raises(RuntimeError, match="already playing"):
                await pacer.play(second)
            nursery.cancel_scope.cancel()
