"""The UDP half of the fake voice server (`tests.fakes.voice_server`): IP discovery and a strict
RTP receiver that checks, decrypts and decodes what the bot sends.

Theory of operation
-------------------

Every datagram that is not IP discovery, RTCP or an 8-byte keepalive is an RTP packet of one
`Stream` (one per SSRC). `Stream.receive` checks it as Discord would (PROTOCOL.md 5.5, 5.6)
and never raises; each violation is appended to ``Stream.errors`` and reported to the server:

1. header: byte 0 ``0x80`` (V=2, no padding/extension/CSRC), payload type 120;
2. transport decryption with the session's mode and key (`crypto.TransportCipher.decrypt_audio`);
   a packet that fails it is dropped without touching the counters below;
3. sequence ``+1`` and timestamp ``+960``, both wrapping; the nonce counter strictly increasing
   (it may wrap only from ``2**32 - 1`` to 0); the sender address the one Select Protocol named;
   op 5 Speaking seen before the first packet (give or take `SPEAKING_GRACE_PACKETS`);
4. the frame: ``F8 FF FE`` is silence (counted, not decoded); a frame ending in the DAVE magic
   ``FA FA`` is DAVE-decrypted by the fake's listener; anything else must be plain Opus, which is
   refused once the stream has sent DAVE frames or too long after the DAVE transition executed;
5. Opus is decoded to 48 kHz stereo s16le and appended to ``Stream.pcm``.

Decoding runs on the trio thread (about a millisecond per frame): this is a test fake and the
order of packets matters more than latency here.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol, final

import av.error
import trio

from trio_companion.voice.crypto import NONCE_WIRE_SIZE, TransportCipher
from trio_companion.voice.errors import DecryptionFailed, MalformedPacket
from trio_companion.voice.opus import OpusDecoder
from trio_companion.voice.protocol import IP_DISCOVERY_PACKET_SIZE
from trio_companion.voice.rtp import OPUS_PAYLOAD_TYPE, SAMPLES_PER_FRAME

__all__ = [
    "DAVE_MAGIC",
    "KEEPALIVE_SIZE",
    "OPUS_SILENCE",
    "PLAIN_FRAMES_AFTER_TRANSITION",
    "SPEAKING_GRACE_PACKETS",
    "AudioSession",
    "Packet",
    "Stream",
    "encode_ip_discovery_response",
    "is_ip_discovery_request",
    "parse_ip_discovery_request",
]

OPUS_SILENCE: Final = b"\xf8\xff\xfe"  # PROTOCOL.md 5.6: the silence frame, never DAVE-encrypted
DAVE_MAGIC: Final = b"\xfa\xfa"  # PROTOCOL.md 6.3 step 9: every DAVE frame ends with it
KEEPALIVE_SIZE: Final = 8  # PROTOCOL.md 5.6 (impl): discord.js's u32 LE keepalive, 8 bytes
# Our choice: plain Opus frames still accepted after op 22 execute_transition, for packets that
# were in flight while the bot switched (discord.js/discord.py set a passthrough window instead).
PLAIN_FRAMES_AFTER_TRANSITION: Final = 10
# Our choice: op 5 (websocket) and the first packets (UDP) race inside the fake even when the
# client sent them in order, so Speaking may arrive until this many packets were received.
SPEAKING_GRACE_PACKETS: Final = 3
_FIXED_BYTE0: Final = 0x80  # PROTOCOL.md 5.5: V=2, no padding, no extension, CC=0
_SEQ_MOD: Final = 1 << 16
_TS_MOD: Final = 1 << 32
_NONCE_MAX: Final = (1 << 32) - 1
_DISCOVERY: Final = struct.Struct(">HHI64sH")  # type, length, ssrc, address, port
_DISCOVERY_REQUEST: Final = 1  # PROTOCOL.md 5.1 step 7
_DISCOVERY_RESPONSE: Final = 2
_DISCOVERY_LENGTH: Final = 70


def is_ip_discovery_request(datagram: bytes) -> bool:
    """74 bytes starting with type 1 (the length and ssrc are checked by the caller)."""
    return len(datagram) == IP_DISCOVERY_PACKET_SIZE and datagram[:2] == b"\x00\x01"


def encode_ip_discovery_response(ssrc: int, address: str, port: int) -> bytes:
    """Type 2, length 70, ``ssrc``, the address NUL-terminated at offset 8, port in the last 2."""
    return _DISCOVERY.pack(
        _DISCOVERY_RESPONSE, _DISCOVERY_LENGTH, ssrc, address.encode("ascii"), port
    )


def parse_ip_discovery_request(datagram: bytes) -> tuple[int, int]:
    """``(length field, ssrc)`` of a request accepted by `is_ip_discovery_request`."""
    _kind, length, ssrc, _address, _port = _DISCOVERY.unpack(datagram)
    return length, ssrc


class AudioSession(Protocol):
    """What a `Stream` needs from its voice session (`voice_server.VoiceSession`)."""

    @property
    def cipher(self) -> TransportCipher | None: ...  # None before Select Protocol

    @property
    def selected_peer(self) -> tuple[str, int] | None: ...  # Select Protocol's address/port

    @property
    def speaking_seen(self) -> bool: ...  # an op 5 with this session's ssrc arrived

    @property
    def dave_executed(self) -> bool: ...  # op 22 execute_transition was sent

    def dave_decrypt(self, frame: bytes) -> bytes:
        """Decrypt a DAVE frame with the listener; raise any exception if it cannot."""
        ...


@dataclass(frozen=True, slots=True)
class Packet:
    """One accepted (decrypted) RTP packet. ``kind``: ``opus`` (plain), ``dave`` (E2EE, then
    decrypted by the listener) or ``silence``. ``pcm_bytes``: PCM it decoded to (0 for silence
    or a frame that failed)."""

    trio_time: float
    perf_time: float
    sequence: int
    timestamp: int
    nonce: int
    size: int
    kind: Literal["opus", "dave", "silence"]
    pcm_bytes: int


@final
class Stream:
    """Everything received on one SSRC. ``packets`` in arrival order; ``pcm`` the decoded audio
    (48 kHz stereo s16le, silence frames not included); ``silence_frames``, ``dave_frames`` and
    ``plain_frames`` count frame kinds; ``errors`` every violation (also reported to the server).
    """

    def __init__(self, ssrc: int, session: AudioSession, report: Callable[[str], None]) -> None:
        self.ssrc: Final = ssrc
        self.packets: list[Packet] = []
        self.silence_frames = 0
        self.dave_frames = 0
        self.plain_frames = 0
        self.plain_frames_after_transition = 0
        self.errors: list[str] = []
        self._pcm = bytearray()
        self._session = session
        self._report = report
        self._decoder = OpusDecoder()
        self._last_sequence: int | None = None
        self._last_timestamp: int | None = None
        self._last_nonce: int | None = None
        self._speaking_checked = False

    @property
    def pcm(self) -> bytes:
        """Decoded audio so far, 48 kHz stereo s16le."""
        return bytes(self._pcm)

    @property
    def dave_active(self) -> bool:
        """The DAVE transition was executed for this stream's session (op 22 sent): from then
        on its frames must be end-to-end encrypted."""
        return self._session.dave_executed

    @property
    def sequences(self) -> list[int]:
        return [p.sequence for p in self.packets]

    @property
    def timestamps(self) -> list[int]:
        return [p.timestamp for p in self.packets]

    def _error(self, message: str) -> None:
        message = f"ssrc {self.ssrc}: {message}"
        self.errors.append(message)
        self._report(message)

    def receive(self, datagram: bytes, sender: tuple[str, int]) -> None:
        """Check, decrypt and decode one RTP datagram of this SSRC. Never raises."""
        arrived, perf = trio.current_time(), time.perf_counter()
        if datagram[0] != _FIXED_BYTE0:
            self._error(f"RTP byte 0 is {datagram[0]:#04x}, expected 0x80")
        if datagram[1] & 0x7F != OPUS_PAYLOAD_TYPE:
            self._error(f"RTP payload type {datagram[1] & 0x7F}, expected 120")
        cipher = self._session.cipher
        if cipher is None:
            self._error("RTP packet before Select Protocol")
            return
        try:
            header, frame = cipher.decrypt_audio(datagram)
        except (MalformedPacket, DecryptionFailed) as error:
            self._error(f"packet dropped: {error}")
            return
        nonce = int.from_bytes(datagram[-NONCE_WIRE_SIZE:], "big")
        self._check_counters(header.sequence, header.timestamp, nonce, sender)
        kind, pcm = self._frame(frame)
        self._pcm += pcm
        self.packets.append(
            Packet(
                arrived,
                perf,
                header.sequence,
                header.timestamp,
                nonce,
                len(datagram),
                kind,
                len(pcm),
            )
        )
        if not self._speaking_checked:
            if self._session.speaking_seen:
                self._speaking_checked = True
            elif len(self.packets) >= SPEAKING_GRACE_PACKETS:
                self._speaking_checked = True
                self._error("audio before op 5 Speaking")

    def _check_counters(
        self, sequence: int, timestamp: int, nonce: int, sender: tuple[str, int]
    ) -> None:
        if self._last_sequence is not None and sequence != (self._last_sequence + 1) % _SEQ_MOD:
            self._error(f"RTP sequence {sequence} after {self._last_sequence}")
        if self._last_timestamp is not None and timestamp != (
            (self._last_timestamp + SAMPLES_PER_FRAME) % _TS_MOD
        ):
            self._error(f"RTP timestamp {timestamp} after {self._last_timestamp} (step 960)")
        last = self._last_nonce
        if last is not None and not (nonce > last or (last == _NONCE_MAX and nonce == 0)):
            self._error(f"nonce {nonce} after {last} (must increase)")
        peer = self._session.selected_peer
        if peer is not None and sender != peer:
            self._error(f"packet from {sender}, but Select Protocol named {peer}")
        self._last_sequence, self._last_timestamp, self._last_nonce = sequence, timestamp, nonce

    def _frame(self, frame: bytes) -> tuple[Literal["opus", "dave", "silence"], bytes]:
        if frame == OPUS_SILENCE:
            self.silence_frames += 1
            return "silence", b""
        if frame.endswith(DAVE_MAGIC):
            self.dave_frames += 1
            try:
                opus = self._session.dave_decrypt(frame)
            except Exception as error:  # the listener's failure, whatever its type
                self._error(f"DAVE frame the listener cannot decrypt: {error!r}")
                return "dave", b""
            return "dave", self._decode(opus)
        self.plain_frames += 1
        if self.dave_frames:
            self._error("plain Opus frame after DAVE frames (E2EE downgrade)")
        elif self._session.dave_executed:
            self.plain_frames_after_transition += 1
            if self.plain_frames_after_transition > PLAIN_FRAMES_AFTER_TRANSITION:
                self._error("plain Opus frame after the DAVE transition executed")
        return "opus", self._decode(frame)

    def _decode(self, opus: bytes) -> bytes:
        try:
            return self._decoder.decode(opus)
        except av.error.FFmpegError as error:
            self._error(f"Opus frame does not decode: {error}")
            return b""
