"""Voice gateway v8 (PROTOCOL.md 5.1-5.4), sans-IO: opcodes, close codes, payloads, IP discovery.

Theory of operation
-------------------

The voice shell opens `voice_gateway_url` (the endpoint **verbatim, port included**: P8), waits
for op 8 Hello, sends `encode_identify` (or `encode_resume` on a resume), gets op 2 Ready, runs
UDP IP discovery (`encode_ip_discovery_request` / `decode_ip_discovery_response`), sends
`encode_select_protocol` with `crypto.choose_mode`'s mode, gets op 4 Session Description, and
sends `encode_speaking` before any audio. `encode_heartbeat` carries the last server ``seq``
(``seq_ack``, v8) the whole time.

When the socket closes, `close_info` says what next:

- RESUME: new websocket to the same endpoint, op 7 Resume (4015 and every code below 4000).
- NEW_SESSION: forget the session and run the full flow from main-gateway op 4 (4006 and most
  other 4xxx codes). The shell must back off and cap attempts: a 4006 loop is P8/P9.
- STOP: do not reconnect (4014, 4017, 4021, 4022 and the "we have a bug" codes); tell the user
  ``explanation``. For 4014 the shell may rejoin if a VOICE_STATE/SERVER_UPDATE shows a move.

All JSON payloads are returned as ``str``: voice v8 uses binary frames only for DAVE ops.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple

import msgspec

from trio_companion.voice.errors import MalformedPacket

__all__ = [
    "CLOSE_CODES",
    "DEFAULT_MAX_DAVE_PROTOCOL_VERSION",
    "IP_DISCOVERY_PACKET_SIZE",
    "VOICE_GATEWAY_VERSION",
    "CloseInfo",
    "DiscoveredAddress",
    "SpeakingFlags",
    "VoiceCloseAction",
    "VoiceOpcode",
    "close_info",
    "decode_ip_discovery_response",
    "encode_heartbeat",
    "encode_identify",
    "encode_ip_discovery_request",
    "encode_resume",
    "encode_select_protocol",
    "encode_speaking",
    "voice_gateway_url",
]

VOICE_GATEWAY_VERSION: Final = 8  # PROTOCOL.md 5.1 step 3: v8 brings seq_ack; < 4 is rejected.
# PROTOCOL.md 5.1 step 5 / 6: 0 or a missing field gets close 4017 since 2026-03-02.
DEFAULT_MAX_DAVE_PROTOCOL_VERSION: Final = 1
IP_DISCOVERY_PACKET_SIZE: Final = 74  # PROTOCOL.md 5.1 step 7: request and response are 74 bytes.
_IP_DISCOVERY_REQUEST: Final = 0x0001  # PROTOCOL.md 5.1 step 7: type of the request.
_IP_DISCOVERY_RESPONSE: Final = 0x0002  # PROTOCOL.md 5.1 step 7: type of the response.
_IP_DISCOVERY_LENGTH: Final = 70  # PROTOCOL.md 5.1 step 7: bytes after type and length.
_IP_DISCOVERY: Final = struct.Struct(">HHI64sH")  # type, length, ssrc, address, port


class VoiceOpcode(enum.IntEnum):
    """Voice gateway opcodes (PROTOCOL.md 5.3 and 6.2). Unknown ops must be ignored."""

    IDENTIFY = 0
    SELECT_PROTOCOL = 1
    READY = 2
    HEARTBEAT = 3
    SESSION_DESCRIPTION = 4
    SPEAKING = 5
    HEARTBEAT_ACK = 6
    RESUME = 7
    HELLO = 8
    RESUMED = 9
    CLIENTS_CONNECT = 11
    CLIENT_DISCONNECT = 13
    DAVE_PREPARE_TRANSITION = 21
    DAVE_EXECUTE_TRANSITION = 22
    DAVE_TRANSITION_READY = 23
    DAVE_PREPARE_EPOCH = 24
    DAVE_MLS_EXTERNAL_SENDER = 25
    DAVE_MLS_KEY_PACKAGE = 26
    DAVE_MLS_PROPOSALS = 27
    DAVE_MLS_COMMIT_WELCOME = 28
    DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION = 29
    DAVE_MLS_WELCOME = 30
    DAVE_MLS_INVALID_COMMIT_WELCOME = 31


class SpeakingFlags(enum.IntFlag):
    """Op 5 ``speaking`` bits (PROTOCOL.md 5.1 step 10)."""

    NONE = 0
    MICROPHONE = 1
    SOUNDSHARE = 2
    PRIORITY = 4


# --- Close codes --------------------------------------------------------------------------------


class VoiceCloseAction(enum.Enum):
    """What to do after the voice websocket closed."""

    RESUME = "resume"  # same endpoint, op 7 Resume with seq_ack
    NEW_SESSION = "new_session"  # full flow from main-gateway op 4, with backoff and a cap
    STOP = "stop"  # leave voice and tell the user; reconnecting cannot help


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How to react to one voice close code; ``explanation`` is one line for the user."""

    action: VoiceCloseAction
    explanation: str


_R, _N, _S = VoiceCloseAction.RESUME, VoiceCloseAction.NEW_SESSION, VoiceCloseAction.STOP
_BUG: Final = "this is a trio_companion bug, please report it"

# PROTOCOL.md 5.4 (and 5.2: resume after 4015 or any code < 4000, as discord.js does). Codes the
# table calls "bug" with no retry advice stop rather than loop: a retry would send the same thing.
CLOSE_CODES: Final[Mapping[int, CloseInfo]] = MappingProxyType(
    {
        4001: CloseInfo(_N, "Discord did not understand a voice opcode we sent (4001)"),
        4002: CloseInfo(_S, f"Discord could not decode a voice payload (4002): {_BUG}"),
        4003: CloseInfo(_S, f"Discord got a voice payload before Identify (4003): {_BUG}"),
        4004: CloseInfo(_N, "Discord rejected the voice token (4004); rejoining"),
        4005: CloseInfo(_S, f"Discord got a second voice Identify (4005): {_BUG}"),
        4006: CloseInfo(_N, "Discord says the voice session is no longer valid (4006); rejoining"),
        4009: CloseInfo(_N, "Discord timed out the voice session (4009); rejoining"),
        4011: CloseInfo(_N, "Discord could not find the voice server (4011); rejoining"),
        4012: CloseInfo(_S, f"Discord rejected our voice protocol selection (4012): {_BUG}"),
        4014: CloseInfo(
            _S, "The bot was disconnected from voice (4014): kicked, moved, or the channel closed"
        ),
        4015: CloseInfo(_R, "Discord's voice server crashed (4015); resuming"),
        4016: CloseInfo(
            _S, "Discord rejected our voice encryption mode (4016): update trio_companion"
        ),
        4017: CloseInfo(
            _S,
            "Discord requires end-to-end encrypted voice (DAVE, 4017): update trio_companion",
        ),
        4020: CloseInfo(_S, f"Discord rejected a voice request as malformed (4020): {_BUG}"),
        4021: CloseInfo(
            _S, "Discord rate-limited the bot's voice connection (4021): try again later"
        ),
        4022: CloseInfo(
            _S, "The voice call ended (4022): the channel was deleted or the server changed"
        ),
    }
)
_NO_CODE: Final = CloseInfo(_R, "the voice connection dropped without a close code; resuming")


def close_info(code: int | None) -> CloseInfo:
    """Action and explanation for a voice close code.

    ``None`` (no close frame, as in 1006) and every code below 4000 resume; a 4xxx code missing
    from `CLOSE_CODES` starts a new session."""
    if code is None:
        return _NO_CODE
    if code < 4000:
        return CloseInfo(_R, f"the voice connection closed with code {code}; resuming")
    return CLOSE_CODES.get(code) or CloseInfo(
        _N, f"Discord closed voice with unknown code {code}; rejoining"
    )


# --- URL ----------------------------------------------------------------------------------------


def voice_gateway_url(endpoint: str) -> str:
    """``wss://{endpoint}/?v=8`` with the endpoint verbatim, **port included** (P8).

    A leading ``wss://`` and trailing ``/`` are tolerated (discord.py strips the scheme too).
    Raises `ValueError` for an empty endpoint: a null endpoint means "wait for the next
    VOICE_SERVER_UPDATE", which the caller handles before getting here."""
    host = endpoint.strip().removeprefix("wss://").rstrip("/")
    if not host:
        raise ValueError("the voice endpoint is empty")
    return f"wss://{host}/?v={VOICE_GATEWAY_VERSION}"


# --- JSON payloads ------------------------------------------------------------------------------

_encoder: Final = msgspec.json.Encoder()


def _encode(op: VoiceOpcode, d: object) -> str:
    return _encoder.encode({"op": int(op), "d": d}).decode()


def encode_identify(
    *,
    server_id: int | str,
    user_id: int | str,
    session_id: str,
    token: str,
    max_dave_protocol_version: int = DEFAULT_MAX_DAVE_PROTOCOL_VERSION,
) -> str:
    """Op 0 Identify (PROTOCOL.md 5.1 step 5). Snowflakes are sent as strings."""
    return _encode(
        VoiceOpcode.IDENTIFY,
        {
            "server_id": str(server_id),
            "user_id": str(user_id),
            "session_id": session_id,
            "token": token,
            "max_dave_protocol_version": max_dave_protocol_version,
        },
    )


def encode_select_protocol(address: str, port: int, mode: str) -> str:
    """Op 1 Select Protocol with our discovered external address (PROTOCOL.md 5.1 step 8)."""
    return _encode(
        VoiceOpcode.SELECT_PROTOCOL,
        {"protocol": "udp", "data": {"address": address, "port": port, "mode": mode}},
    )


def encode_heartbeat(nonce: int, seq_ack: int) -> str:
    """Op 3 Heartbeat (v8): ``t`` is a ms timestamp nonce echoed by op 6; ``seq_ack`` is the
    last server ``seq`` seen, or -1 before any (PROTOCOL.md 5.2)."""
    return _encode(VoiceOpcode.HEARTBEAT, {"t": nonce, "seq_ack": seq_ack})


def encode_resume(*, server_id: int | str, session_id: str, token: str, seq_ack: int) -> str:
    """Op 7 Resume on a new websocket to the same endpoint (PROTOCOL.md 5.2)."""
    return _encode(
        VoiceOpcode.RESUME,
        {"server_id": str(server_id), "session_id": session_id, "token": token, "seq_ack": seq_ack},
    )


def encode_speaking(
    ssrc: int, speaking: SpeakingFlags = SpeakingFlags.MICROPHONE, *, delay: int = 0
) -> str:
    """Op 5 Speaking; send it before any audio (PROTOCOL.md 5.1 step 10). Bots use delay 0."""
    return _encode(VoiceOpcode.SPEAKING, {"speaking": int(speaking), "delay": delay, "ssrc": ssrc})


# --- UDP IP discovery ---------------------------------------------------------------------------


class DiscoveredAddress(NamedTuple):
    """Our external address as the voice server sees it."""

    address: str
    port: int


def encode_ip_discovery_request(ssrc: int) -> bytes:
    """The 74-byte request: type 1, length 70, ssrc, 64 zero address bytes, port 0."""
    return _IP_DISCOVERY.pack(_IP_DISCOVERY_REQUEST, _IP_DISCOVERY_LENGTH, ssrc, b"", 0)


def decode_ip_discovery_response(packet: bytes) -> DiscoveredAddress:
    """Parse the 74-byte response: type 2, NUL-terminated ASCII address at offset 8, port u16 BE
    in the last 2 bytes. Raises `MalformedPacket` for any other shape."""
    if len(packet) != IP_DISCOVERY_PACKET_SIZE:
        raise MalformedPacket(f"IP discovery response of {len(packet)} bytes, expected 74")
    kind, _length, _ssrc, raw_address, port = _IP_DISCOVERY.unpack(packet)
    if kind != _IP_DISCOVERY_RESPONSE:
        raise MalformedPacket(f"IP discovery response has type {kind:#06x}, expected 0x0002")
    end = raw_address.find(b"\0")
    if end <= 0:
        raise MalformedPacket("IP discovery response has no NUL-terminated address")
    try:
        address = raw_address[:end].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedPacket("IP discovery address is not ASCII") from None
    return DiscoveredAddress(address, port)
