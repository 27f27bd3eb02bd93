"""Tests of the sans-IO RTP header codec and sender counters."""

from __future__ import annotations

import pytest

from trio_companion.voice.errors import MalformedPacket, VoiceError
from trio_companion.voice.rtp import (
    OPUS_PAYLOAD_TYPE,
    RtpExtension,
    RtpHeader,
    RtpSender,
    header_length,
    is_rtcp,
    parse_header,
    strip_extension_body,
)

HEADER_CASES = [
    pytest.param(
        RtpHeader(sequence=1, timestamp=960, ssrc=0x12345678),
        bytes.fromhex("80 78 0001 000003c0 12345678"),
        id="plain",
    ),
    pytest.param(
        RtpHeader(sequence=0xFFFF, timestamp=0xFFFFFFFF, ssrc=0xFFFFFFFF, marker=True),
        bytes.fromhex("80 f8 ffff ffffffff ffffffff"),
        id="max-values-marker",
    ),
    pytest.param(
        RtpHeader(
            sequence=7, timestamp=8, ssrc=9, extension=RtpExtension(profile=0xBEDE, length_words=2)
        ),
        bytes.fromhex("90 78 0007 00000008 00000009 bede 0002"),
        id="one-byte-extension",
    ),
    pytest.param(
        RtpHeader(sequence=7, timestamp=8, ssrc=9, csrcs=(1, 2)),
        bytes.fromhex("82 78 0007 00000008 00000009 00000001 00000002"),
        id="csrcs",
    ),
    pytest.param(
        RtpHeader(
            sequence=7,
            timestamp=8,
            ssrc=9,
            payload_type=0x60,
            padding=True,
            csrcs=(5,),
            extension=RtpExtension(profile=0x1000, length_words=0),
        ),
        bytes.fromhex("b1 60 0007 00000008 00000009 00000005 1000 0000"),
        id="everything",
    ),
]


@pytest.mark.parametrize(("header", "wire"), HEADER_CASES)
def test_header_encode_and_parse(header: RtpHeader, wire: bytes) -> None:
    assert header.encode() == wire
    assert header.size == len(wire)
    assert header_length(wire + b"payload") == len(wire)
    assert parse_header(wire + b"trailing bytes") == header


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        pytest.param(b"\x80\x78\x00", "shorter than an RTP header", id="short"),
        pytest.param(bytes.fromhex("40 78 0001 00000000 00000000"), "version 1", id="version-1"),
        pytest.param(
            bytes.fromhex("90 78 0001 00000000 00000000 be"), "shorter than its 16", id="cut-ext"
        ),
        pytest.param(
            bytes.fromhex("81 78 0001 00000000 00000000"), "shorter than its 16", id="cut-csrc"
        ),
    ],
)
def test_parse_rejects_malformed(packet: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason) as info:
        parse_header(packet)
    assert isinstance(info.value, VoiceError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sequence": 1 << 16, "timestamp": 0, "ssrc": 0},
        {"sequence": -1, "timestamp": 0, "ssrc": 0},
        {"sequence": 0, "timestamp": 1 << 32, "ssrc": 0},
        {"sequence": 0, "timestamp": 0, "ssrc": 1 << 32},
        {"sequence": 0, "timestamp": 0, "ssrc": 0, "payload_type": 0x80},
        {"sequence": 0, "timestamp": 0, "ssrc": 0, "csrcs": tuple(range(16))},
        {"sequence": 0, "timestamp": 0, "ssrc": 0, "extension": RtpExtension(1 << 16, 0)},
    ],
)
def test_header_rejects_out_of_range_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        RtpHeader(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extension", "plaintext", "expected"),
    [
        pytest.param(None, b"opus", b"opus", id="no-extension"),
        pytest.param(RtpExtension(0xBEDE, 1), b"\x10\xff\x00\x00opus", b"opus", id="one-word"),
        pytest.param(RtpExtension(0xBEDE, 0), b"opus", b"opus", id="zero-words"),
        pytest.param(RtpExtension(0xBEDE, 2), b"12345678", b"", id="body-only"),
    ],
)
def test_strip_extension_body(
    extension: RtpExtension | None, plaintext: bytes, expected: bytes
) -> None:
    header = RtpHeader(sequence=0, timestamp=0, ssrc=1, extension=extension)
    assert strip_extension_body(header, plaintext) == expected


def test_strip_extension_body_rejects_short_plaintext() -> None:
    header = RtpHeader(sequence=0, timestamp=0, ssrc=1, extension=RtpExtension(0xBEDE, 3))
    with pytest.raises(MalformedPacket, match="extension body of 12 bytes"):
        strip_extension_body(header, b"short")


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (bytes([0x81, 200]), True),
        (bytes([0x81, 204]), True),
        (bytes([0x80, 205]), False),
        (bytes([0x80, OPUS_PAYLOAD_TYPE]), False),
        (bytes([0x80, 0xF8]), False),  # marker + PT 120 is 248: not RTCP
        (b"\x80", False),
    ],
)
def test_is_rtcp(packet: bytes, expected: bool) -> None:
    assert is_rtcp(packet) is expected


@pytest.mark.parametrize(
    ("start_seq", "start_ts", "expected"),
    [
        pytest.param(0, 0, [(0, 0), (1, 960), (2, 1920)], id="from-zero"),
        pytest.param(0xFFFE, 100, [(0xFFFE, 100), (0xFFFF, 1060), (0, 2020)], id="sequence-wraps"),
        pytest.param(
            5,
            0xFFFFFFFF - 959,
            [(5, 0xFFFFFFFF - 959), (6, 0), (7, 960)],
            id="timestamp-wraps-exactly",
        ),
        pytest.param(
            0xFFFF,
            0xFFFFFFFF,
            [(0xFFFF, 0xFFFFFFFF), (0, 959), (1, 1919)],
            id="both-wrap",
        ),
    ],
)
def test_sender_counters_wrap(
    start_seq: int, start_ts: int, expected: list[tuple[int, int]]
) -> None:
    sender = RtpSender(0xCAFEBABE, sequence=start_seq, timestamp=start_ts)
    for seq, ts in expected:
        assert (sender.sequence, sender.timestamp) == (seq, ts)
        header = parse_header(sender.next_header())
        assert header == RtpHeader(sequence=seq, timestamp=ts, ssrc=0xCAFEBABE)


def test_sender_next_packet_appends_payload_and_custom_samples() -> None:
    sender = RtpSender(1)
    first = sender.next_packet(b"\xf8\xff\xfe")
    assert first == bytes.fromhex("80 78 0000 00000000 00000001 f8fffe")
    sender.next_header(samples=480)
    assert (sender.sequence, sender.timestamp) == (2, 960 + 480)


def test_sender_validates_start_values() -> None:
    with pytest.raises(ValueError, match="sequence"):
        RtpSender(1, sequence=1 << 16)
