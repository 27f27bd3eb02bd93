"""Tests of the sans-IO voice gateway protocol: close codes, URL, payloads, IP discovery."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from trio_companion.errors import CompanionError
from trio_companion.voice.errors import MalformedPacket, VoiceError
from trio_companion.voice.protocol import (
    CLOSE_CODES,
    IP_DISCOVERY_PACKET_SIZE,
    DiscoveredAddress,
    SpeakingFlags,
    VoiceCloseAction,
    VoiceOpcode,
    close_info,
    decode_ip_discovery_response,
    encode_heartbeat,
    encode_identify,
    encode_ip_discovery_request,
    encode_resume,
    encode_select_protocol,
    encode_speaking,
    voice_gateway_url,
)

R, N, S = VoiceCloseAction.RESUME, VoiceCloseAction.NEW_SESSION, VoiceCloseAction.STOP


def test_error_root() -> None:
    assert issubclass(VoiceError, CompanionError)
    assert issubclass(MalformedPacket, VoiceError)


@pytest.mark.parametrize(
    ("op", "value"),
    [
        (VoiceOpcode.IDENTIFY, 0),
        (VoiceOpcode.SELECT_PROTOCOL, 1),
        (VoiceOpcode.READY, 2),
        (VoiceOpcode.HEARTBEAT, 3),
        (VoiceOpcode.SESSION_DESCRIPTION, 4),
        (VoiceOpcode.SPEAKING, 5),
        (VoiceOpcode.HEARTBEAT_ACK, 6),
        (VoiceOpcode.RESUME, 7),
        (VoiceOpcode.HELLO, 8),
        (VoiceOpcode.RESUMED, 9),
        (VoiceOpcode.CLIENTS_CONNECT, 11),
        (VoiceOpcode.CLIENT_DISCONNECT, 13),
        (VoiceOpcode.DAVE_PREPARE_TRANSITION, 21),
        (VoiceOpcode.DAVE_MLS_INVALID_COMMIT_WELCOME, 31),
    ],
)
def test_opcodes(op: VoiceOpcode, value: int) -> None:
    assert op == value


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (None, R),
        (1000, R),
        (1001, R),
        (1006, R),
        (3999, R),
        (4015, R),
        (4001, N),
        (4004, N),
        (4006, N),
        (4009, N),
        (4011, N),
        (4002, S),
        (4003, S),
        (4005, S),
        (4012, S),
        (4014, S),
        (4016, S),
        (4017, S),
        (4020, S),
        (4021, S),
        (4022, S),
        (4000, N),  # unknown 4xxx: start over rather than resume
        (4999, N),
    ],
)
def test_close_actions(code: int | None, action: VoiceCloseAction) -> None:
    info = close_info(code)
    assert info.action is action
    assert info.explanation
    assert "\n" not in info.explanation
    if code is not None:
        assert str(code) in info.explanation


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (4014, "disconnected"),
        (4017, "DAVE"),
        (4021, "rate-limited"),
        (4022, "channel was deleted"),
    ],
)
def test_no_retry_codes_explain_themselves(code: int, words: str) -> None:
    assert CLOSE_CODES[code].action is S
    assert words in CLOSE_CODES[code].explanation


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (
            "c-ams20-20d36bc4.discord.media:2087",
            "wss://c-ams20-20d36bc4.discord.media:2087/?v=8",
        ),
        ("us-east1234.discord.media:443", "wss://us-east1234.discord.media:443/?v=8"),
        ("us-east1234.discord.media", "wss://us-east1234.discord.media/?v=8"),
        ("wss://c-fra1.discord.media:2096/", "wss://c-fra1.discord.media:2096/?v=8"),
        ("127.0.0.1:50123", "wss://127.0.0.1:50123/?v=8"),
    ],
)
def test_voice_gateway_url_keeps_port(endpoint: str, url: str) -> None:
    assert voice_gateway_url(endpoint) == url


@pytest.mark.parametrize("endpoint", ["", "  ", "wss://"])
def test_voice_gateway_url_rejects_empty(endpoint: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        voice_gateway_url(endpoint)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        pytest.param(
            encode_identify(server_id=41771983423143936, user_id="104", session_id="s", token="t"),
            {
                "op": 0,
                "d": {
                    "server_id": "41771983423143936",
                    "user_id": "104",
                    "session_id": "s",
                    "token": "t",
                    "max_dave_protocol_version": 1,
                },
            },
            id="identify",
        ),
        pytest.param(
            encode_select_protocol("203.0.113.7", 50000, "aead_aes256_gcm_rtpsize"),
            {
                "op": 1,
                "d": {
                    "protocol": "udp",
                    "data": {
                        "address": "203.0.113.7",
                        "port": 50000,
                        "mode": "aead_aes256_gcm_rtpsize",
                    },
                },
            },
            id="select-protocol",
        ),
        pytest.param(
            encode_heartbeat(1501184119561, 10),
            {"op": 3, "d": {"t": 1501184119561, "seq_ack": 10}},
            id="heartbeat",
        ),
        pytest.param(
            encode_heartbeat(1, -1), {"op": 3, "d": {"t": 1, "seq_ack": -1}}, id="heartbeat-no-seq"
        ),
        pytest.param(
            encode_resume(server_id=1, session_id="s", token="t", seq_ack=5),
            {"op": 7, "d": {"server_id": "1", "session_id": "s", "token": "t", "seq_ack": 5}},
            id="resume",
        ),
        pytest.param(
            encode_speaking(1234),
            {"op": 5, "d": {"speaking": 1, "delay": 0, "ssrc": 1234}},
            id="speaking",
        ),
        pytest.param(
            encode_speaking(1234, SpeakingFlags.NONE),
            {"op": 5, "d": {"speaking": 0, "delay": 0, "ssrc": 1234}},
            id="speaking-off",
        ),
        pytest.param(
            encode_speaking(7, SpeakingFlags.MICROPHONE | SpeakingFlags.PRIORITY, delay=5),
            {"op": 5, "d": {"speaking": 5, "delay": 5, "ssrc": 7}},
            id="speaking-priority",
        ),
    ],
)
def test_payload_shapes(encoded: str, expected: dict[str, Any]) -> None:
    assert isinstance(encoded, str)  # JSON goes in text frames; binary frames are DAVE
    assert msgspec.json.decode(encoded) == expected


def test_identify_dave_version_is_passed_through() -> None:
    encoded = encode_identify(
        server_id="1", user_id=2, session_id="s", token="t", max_dave_protocol_version=0
    )
    assert msgspec.json.decode(encoded)["d"]["max_dave_protocol_version"] == 0


@pytest.mark.parametrize(
    ("ssrc", "expected"),
    [
        (1, bytes.fromhex("0001 0046 00000001") + bytes(64) + b"\0\0"),
        (0xDEADBEEF, bytes.fromhex("0001 0046 deadbeef") + bytes(66)),
    ],
)
def test_ip_discovery_request(ssrc: int, expected: bytes) -> None:
    packet = encode_ip_discovery_request(ssrc)
    assert len(packet) == IP_DISCOVERY_PACKET_SIZE == 74
    assert packet == expected


def _response(address: bytes, port: int, kind: int = 2) -> bytes:
    return (
        kind.to_bytes(2, "big")
        + (70).to_bytes(2, "big")
        + (1).to_bytes(4, "big")
        + address.ljust(64, b"\0")
        + port.to_bytes(2, "big")
    )


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (_response(b"203.0.113.7", 50000), DiscoveredAddress("203.0.113.7", 50000)),
        (_response(b"1.2.3.4", 1), DiscoveredAddress("1.2.3.4", 1)),
        (
            _response(b"2001:db8::1\0garbage after nul", 0xFFFF),
            DiscoveredAddress("2001:db8::1", 65535),
        ),
        (
            bytes.fromhex("0002 0046 00000001")
            + b"198.51.100.23".ljust(64, b"\0")
            + bytes.fromhex("c350"),
            DiscoveredAddress("198.51.100.23", 50000),
        ),
    ],
)
def test_ip_discovery_response(packet: bytes, expected: DiscoveredAddress) -> None:
    assert decode_ip_discovery_response(packet) == expected


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        pytest.param(_response(b"1.2.3.4", 1)[:73], "73 bytes", id="short"),
        pytest.param(_response(b"1.2.3.4", 1) + b"\0", "75 bytes", id="long"),
        pytest.param(_response(b"1.2.3.4", 1, kind=1), "type 0x0001", id="request-echoed"),
        pytest.param(_response(b"", 1), "NUL-terminated", id="empty-address"),
        pytest.param(_response(b"x" * 64, 1), "NUL-terminated", id="no-nul"),
        pytest.param(_response(b"\xff\xfe", 1), "not ASCII", id="not-ascii"),
    ],
)
def test_ip_discovery_response_malformed(packet: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        decode_ip_discovery_response(packet)
