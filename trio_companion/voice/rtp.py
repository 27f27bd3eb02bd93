"""RTP headers for Discord voice (PROTOCOL.md 5.5), sans-IO.

Theory of operation
-------------------

Every voice UDP datagram (except RTCP and IP discovery) is an RTP packet::

    0x80|0x90  0x78  seq u16  timestamp u32  ssrc u32  [CSRCs]  [ext preamble]  | encrypted ...

Discord's "rtpsize" AEAD modes split it as SRTP does (RFC 3711): the *unencrypted header* is the
fixed 12 bytes, 4 bytes per CSRC, and, when X is set, the 4-byte extension preamble (profile u16,
length u16 in 32-bit words). That part travels in the clear and is the AEAD's associated data.
The extension **body** (``4 * length`` bytes) is the first part of the *plaintext*, so a receiver
drops it after decrypting (`strip_extension_body`).

We send without extensions or CSRCs (byte 0 ``0x80``); Discord sends with a one-byte-header
extension (byte 0 ``0x90``, profile ``0xBEDE``).

`RtpSender` is the per-SSRC counter: each `RtpSender.next_header` returns the header for one
20 ms Opus frame and advances sequence by 1 and timestamp by 960, both wrapping.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, final

from trio_companion.voice.errors import MalformedPacket

__all__ = [
    "FIXED_HEADER_SIZE",
    "OPUS_PAYLOAD_TYPE",
    "RTP_VERSION",
    "SAMPLES_PER_FRAME",
    "RtpExtension",
    "RtpHeader",
    "RtpSender",
    "header_length",
    "is_rtcp",
    "parse_header",
    "strip_extension_body",
]

RTP_VERSION: Final = 2  # RFC 3550 5.1; PROTOCOL.md 5.5 byte 0 0x80.
OPUS_PAYLOAD_TYPE: Final = 0x78  # PROTOCOL.md 5.5: PT=120, what Discord expects for Opus.
FIXED_HEADER_SIZE: Final = 12  # RFC 3550 5.1: V/P/X/CC, M/PT, seq, timestamp, ssrc.
EXTENSION_PREAMBLE_SIZE: Final = 4  # RFC 3550 5.3.1: profile u16 + length u16 (32-bit words).
SAMPLES_PER_FRAME: Final = 960  # PROTOCOL.md 5.6: 20 ms at 48 kHz; the timestamp step per frame.
RTCP_PACKET_TYPES: Final = range(200, 205)  # PROTOCOL.md 5.5 receiving step 1: byte 1 in 200-204.
ONE_BYTE_EXTENSION_PROFILE: Final = 0xBEDE  # RFC 8285 4.2; Discord's incoming packets use it.

_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32
_FIXED: Final = struct.Struct(">BBHII")
_PREAMBLE: Final = struct.Struct(">HH")


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The clear part of a header extension: ``profile`` and the body length in 32-bit words.

    The body itself is encrypted in the rtpsize modes, so it is not part of the header."""

    profile: int
    length_words: int

    @property
    def body_size(self) -> int:
        """Bytes of extension body at the start of the plaintext."""
        return 4 * self.length_words


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """An RTP header as the rtpsize modes see it (the unencrypted, authenticated part)."""

    sequence: int
    timestamp: int
    ssrc: int
    payload_type: int = OPUS_PAYLOAD_TYPE
    marker: bool = False
    padding: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.sequence < _SEQ_MOD:
            raise ValueError(f"RTP sequence {self.sequence} is not a u16")
        for name, value in (("timestamp", self.timestamp), ("ssrc", self.ssrc)):
            if not 0 <= value < _TS_MOD:
                raise ValueError(f"RTP {name} {value} is not a u32")
        if not 0 <= self.payload_type < 0x80:
            raise ValueError(f"RTP payload type {self.payload_type} is not 7 bits")
        if len(self.csrcs) > 15:
            raise ValueError("RTP allows at most 15 CSRCs")
        if any(not 0 <= c < _TS_MOD for c in self.csrcs):
            raise ValueError("RTP CSRCs must be u32")
        ext = self.extension
        if ext is not None and not (
            0 <= ext.profile < _SEQ_MOD and 0 <= ext.length_words < _SEQ_MOD
        ):
            raise ValueError("RTP extension profile and length must be u16")

    @property
    def size(self) -> int:
        """Length of `encode`'s output: 12 + 4 * CC (+ 4 with an extension)."""
        return (
            FIXED_HEADER_SIZE
            + 4 * len(self.csrcs)
            + (EXTENSION_PREAMBLE_SIZE if self.extension is not None else 0)
        )

    def encode(self) -> bytes:
        """The unencrypted header bytes: the AEAD's associated data."""
        byte0 = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrcs)
        )
        byte1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_FIXED.pack(byte0, byte1, self.sequence, self.timestamp, self.ssrc)]
        parts.extend(c.to_bytes(4, "big") for c in self.csrcs)
        if self.extension is not None:
            parts.append(_PREAMBLE.pack(self.extension.profile, self.extension.length_words))
        return b"".join(parts)


def is_rtcp(packet: bytes) -> bool:
    """Whether a datagram is RTCP (byte 1 in 200-204), which a receiver ignores."""
    return len(packet) >= 2 and packet[1] in RTCP_PACKET_TYPES


def header_length(packet: bytes) -> int:
    """Length of the unencrypted rtpsize header at the start of ``packet``.

    Raises `MalformedPacket` if the packet is not RTP version 2 or is shorter than its header."""
    if len(packet) < FIXED_HEADER_SIZE:
        raise MalformedPacket(f"{len(packet)} bytes is shorter than an RTP header")
    if packet[0] >> 6 != RTP_VERSION:
        raise MalformedPacket(f"RTP version {packet[0] >> 6}, expected 2")
    size = FIXED_HEADER_SIZE + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        size += EXTENSION_PREAMBLE_SIZE
    if len(packet) < size:
        raise MalformedPacket(f"{len(packet)} bytes is shorter than its {size}-byte RTP header")
    return size


def parse_header(packet: bytes) -> RtpHeader:
    """Parse the unencrypted header at the start of ``packet`` (trailing bytes are ignored).

    Raises `MalformedPacket` as `header_length` does."""
    size = header_length(packet)
    byte0, byte1, sequence, timestamp, ssrc = _FIXED.unpack_from(packet)
    cc = byte0 & 0x0F
    csrcs = tuple(
        int.from_bytes(packet[FIXED_HEADER_SIZE + 4 * i : FIXED_HEADER_SIZE + 4 * i + 4], "big")
        for i in range(cc)
    )
    extension = None
    if byte0 & 0x10:
        profile, words = _PREAMBLE.unpack_from(packet, size - EXTENSION_PREAMBLE_SIZE)
        extension = RtpExtension(profile, words)
    return RtpHeader(
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload_type=byte1 & 0x7F,
        marker=bool(byte1 & 0x80),
        padding=bool(byte0 & 0x20),
        csrcs=csrcs,
        extension=extension,
    )


def strip_extension_body(header: RtpHeader, plaintext: bytes) -> bytes:
    """The payload after the encrypted extension body (PROTOCOL.md 5.5 receiving step 5).

    Without an extension the plaintext is returned unchanged. Raises `MalformedPacket` when the
    plaintext is shorter than the body the header announces."""
    if header.extension is None:
        return plaintext
    body = header.extension.body_size
    if len(plaintext) < body:
        raise MalformedPacket(
            f"extension body of {body} bytes but only {len(plaintext)} bytes of plaintext"
        )
    return plaintext[body:]


@final
class RtpSender:
    """Sequence and timestamp counters of one outgoing SSRC.

    Not thread-safe; one sender task owns it. Starting values may be random (discord.js
    randomises them); the defaults of 0 keep tests readable."""

    def __init__(self, ssrc: int, *, sequence: int = 0, timestamp: int = 0) -> None:
        # Validate all three through the header's own checks.
        RtpHeader(sequence=sequence, timestamp=timestamp, ssrc=ssrc)
        self.ssrc: Final = ssrc
        self._sequence = sequence
        self._timestamp = timestamp

    @property
    def sequence(self) -> int:
        """The sequence number the next header will carry."""
        return self._sequence

    @property
    def timestamp(self) -> int:
        """The timestamp the next header will carry."""
        return self._timestamp

    def next_header(self, samples: int = SAMPLES_PER_FRAME) -> bytes:
        """Header for the next frame, then advance: sequence + 1, timestamp + ``samples``
        (960 for a 20 ms frame), each wrapping at its width."""
        header = RtpHeader(sequence=self._sequence, timestamp=self._timestamp, ssrc=self.ssrc)
        self._sequence = (self._sequence + 1) % _SEQ_MOD
        self._timestamp = (self._timestamp + samples) % _TS_MOD
        return header.encode()

    def next_packet(self, payload: bytes, samples: int = SAMPLES_PER_FRAME) -> bytes:
        """An unencrypted RTP packet: `next_header` followed by ``payload``."""
        return self.next_header(samples) + payload
