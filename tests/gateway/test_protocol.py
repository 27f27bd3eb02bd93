"""Tests of the sans-IO gateway protocol: close codes, intents, payload encoders, envelope."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from trio_companion.errors import CompanionError
from trio_companion.gateway.errors import (
    FatalGatewayClose,
    GatewayClosed,
    GatewayError,
    MalformedFrame,
    PayloadTooLarge,
)
from trio_companion.gateway.protocol import (
    CLOSE_CODES,
    DEFAULT_PROPERTIES,
    MAX_PAYLOAD_BYTES,
    NON_PRIORITY_SEND_LIMIT,
    PRIVILEGED_INTENTS,
    RECONNECT_BACKOFF_CAP,
    SEND_LIMIT,
    ZOMBIE_CLOSE_CODE,
    Activity,
    CloseAction,
    CloseCode,
    IdentifyProperties,
    Intents,
    Opcode,
    Presence,
    close_error,
    close_info,
    decode_frame,
    decode_hello,
    decode_invalid_session,
    default_intents,
    encode_heartbeat,
    encode_identify,
    encode_presence_update,
    encode_request_guild_members,
    encode_resume,
    encode_voice_state_update,
    reconnect_delay,
)

RESUME, NEW_SESSION, FATAL = CloseAction.RESUME, CloseAction.NEW_SESSION, CloseAction.FATAL


def as_dict(data: bytes) -> dict[str, Any]:
    decoded = msgspec.json.decode(data)
    assert isinstance(decoded, dict)
    return decoded


# --- Close codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (None, RESUME),
        (1000, RESUME),  # sent by the server: reconnectable (PROTOCOL.md 1.7)
        (1001, RESUME),
        (1005, RESUME),  # "no status": unknown, resume
        (1006, RESUME),  # abnormal closure: unknown, resume
        (4000, RESUME),
        (4001, RESUME),
        (4002, RESUME),
        (4003, RESUME),
        (4004, FATAL),
        (4005, RESUME),
        (4006, RESUME),  # not a gateway code (any more): unknown, resume
        (4007, NEW_SESSION),
        (4008, RESUME),
        (4009, NEW_SESSION),
        (4010, FATAL),
        (4011, FATAL),
        (4012, FATAL),
        (4013, FATAL),
        (4014, FATAL),
        (4015, RESUME),
        (4999, RESUME),
        (3000, RESUME),
    ],
)
def test_close_action(code: int | None, action: CloseAction) -> None:
    assert close_info(code).action is action


def test_close_table_covers_every_named_code() -> None:
    assert set(CLOSE_CODES) == {int(code) for code in CloseCode}


@pytest.mark.parametrize("code", [code for code, info in CLOSE_CODES.items()])
def test_close_explanation_is_one_line_naming_the_code(code: int) -> None:
    explanation = close_info(code).explanation
    assert "\n" not in explanation
    assert f"({code})" in explanation


@pytest.mark.parametrize(
    ("code", "must_mention"),
    [
        (4004, "DISCORD_TOKEN"),
        (4010, "shard"),
        (4011, "sharding"),
        (4012, "update"),
        (4013, "report"),
        (4014, "MESSAGE CONTENT"),
        (4014, "Developer Portal"),
    ],
)
def test_fatal_explanations_say_what_to_do(code: int, must_mention: str) -> None:
    info = close_info(code)
    assert info.action is FATAL
    assert ": " in info.explanation  # "<what happened> (<code>): <what to do>"
    assert must_mention in info.explanation


@pytest.mark.parametrize("code", [None, 1000, 4000, 4007, 4009, 4321])
def test_close_error_for_reconnectable_codes(code: int | None) -> None:
    error = close_error(code, "some reason")
    assert isinstance(error, GatewayClosed)
    assert error.code == code
    assert error.reason == "some reason"
    assert error.action is close_info(code).action
    assert error.by_peer
    assert "Discord closed" in str(error)


@pytest.mark.parametrize("code", [4004, 4010, 4011, 4012, 4013, 4014])
def test_close_error_for_fatal_codes(code: int) -> None:
    error = close_error(code, "whatever the server said")
    assert isinstance(error, FatalGatewayClose)
    assert error.code == code
    assert str(error) == close_info(code).explanation
    assert isinstance(error, GatewayError)
    assert isinstance(error, CompanionError)
    assert GatewayClosed not in type(error).__mro__  # a reconnect loop must not swallow it


def test_close_error_by_us() -> None:
    error = close_error(ZOMBIE_CLOSE_CODE, "no heartbeat ACK", by_peer=False)
    assert isinstance(error, GatewayClosed)
    assert not error.by_peer
    assert error.action is RESUME
    assert str(error) == "we closed the gateway connection (code 4000): no heartbeat ACK"


def test_zombie_close_code_keeps_the_session() -> None:
    assert ZOMBIE_CLOSE_CODE not in (1000, 1001)
    assert close_info(ZOMBIE_CLOSE_CODE).action is RESUME


def test_send_budget_reserves_room_for_heartbeats() -> None:
    assert SEND_LIMIT == 120
    assert 0 < NON_PRIORITY_SEND_LIMIT < SEND_LIMIT


@pytest.mark.parametrize(
    ("attempt", "jitter", "delay"),
    [
        (0, 0.0, 0.0),
        (0, 0.5, 0.5),
        (1, 0.5, 1.0),
        (3, 1.0, 8.0),
        (10, 1.0, RECONNECT_BACKOFF_CAP),
        (10_000, 0.5, RECONNECT_BACKOFF_CAP / 2),
    ],
)
def test_reconnect_delay(attempt: int, jitter: float, delay: float) -> None:
    assert reconnect_delay(attempt, jitter) == pytest.approx(delay)


# --- Intents and opcodes ------------------------------------------------------------------------


@pytest.mark.parametrize(("members", "value"), [(False, 37505), (True, 37507)])
def test_default_intents(members: bool, value: int) -> None:
    intents = default_intents(members)
    assert intents == value
    assert (Intents.GUILD_MEMBERS in intents) is members
    assert Intents.GUILD_PRESENCES not in intents


@pytest.mark.parametrize(
    ("intent", "value"),
    [
        (Intents.GUILDS, 1),
        (Intents.GUILD_MEMBERS, 2),
        (Intents.GUILD_VOICE_STATES, 128),
        (Intents.GUILD_PRESENCES, 256),
        (Intents.GUILD_MESSAGES, 512),
        (Intents.GUILD_MESSAGE_REACTIONS, 1024),
        (Intents.GUILD_MESSAGE_TYPING, 2048),
        (Intents.DIRECT_MESSAGES, 4096),
        (Intents.DIRECT_MESSAGE_REACTIONS, 8192),
        (Intents.DIRECT_MESSAGE_TYPING, 16384),
        (Intents.MESSAGE_CONTENT, 32768),
    ],
)
def test_intent_bits(intent: Intents, value: int) -> None:
    assert intent == value


def test_privileged_intents() -> None:
    assert PRIVILEGED_INTENTS == 2 | 256 | 32768


@pytest.mark.parametrize(
    ("opcode", "value"),
    [
        (Opcode.DISPATCH, 0),
        (Opcode.HEARTBEAT, 1),
        (Opcode.IDENTIFY, 2),
        (Opcode.PRESENCE_UPDATE, 3),
        (Opcode.VOICE_STATE_UPDATE, 4),
        (Opcode.RESUME, 6),
        (Opcode.RECONNECT, 7),
        (Opcode.REQUEST_GUILD_MEMBERS, 8),
        (Opcode.INVALID_SESSION, 9),
        (Opcode.HELLO, 10),
        (Opcode.HEARTBEAT_ACK, 11),
        (Opcode.REQUEST_SOUNDBOARD_SOUNDS, 31),
        (Opcode.REQUEST_CHANNEL_INFO, 43),
    ],
)
def test_opcodes(opcode: Opcode, value: int) -> None:
    assert opcode == value


# --- Encoders -----------------------------------------------------------------------------------

PROPS = IdentifyProperties(os="linux", browser="trio_companion", device="trio_companion")
PROPS_DICT = {"os": "linux", "browser": "trio_companion", "device": "trio_companion"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (encode_heartbeat(None), {"op": 1, "d": None}),
        (encode_heartbeat(0), {"op": 1, "d": 0}),
        (encode_heartbeat(1234567), {"op": 1, "d": 1234567}),
        (
            encode_resume("tok.en", "9f1c2ab3", 42),
            {"op": 6, "d": {"token": "tok.en", "session_id": "9f1c2ab3", "seq": 42}},
        ),
        (
            encode_identify("tok.en", default_intents(False), properties=PROPS),
            {
                "op": 2,
                "d": {
                    "token": "tok.en",
                    "properties": PROPS_DICT,
                    "intents": 37505,
                    "large_threshold": 50,
                },
            },
        ),
        (
            encode_identify(
                "tok.en",
                default_intents(True),
                properties=PROPS,
                shard=(0, 1),
                large_threshold=250,
                presence=Presence(
                    status="idle",
                    since=1_700_000_000_000,
                    afk=True,
                    activities=(Activity(name="Custom Status", type=4, state="listening"),),
                ),
            ),
            {
                "op": 2,
                "d": {
                    "token": "tok.en",
                    "properties": PROPS_DICT,
                    "intents": 37507,
                    "large_threshold": 250,
                    "shard": [0, 1],
                    "presence": {
                        "status": "idle",
                        "since": 1_700_000_000_000,
                        "afk": True,
                        "activities": [{"name": "Custom Status", "type": 4, "state": "listening"}],
                    },
                },
            },
        ),
        (
            encode_presence_update(Presence()),
            {"op": 3, "d": {"status": "online", "activities": [], "since": None, "afk": False}},
        ),
        (
            encode_presence_update(
                Presence(activities=(Activity(name="chess", type=0, url="https://x.test"),))
            ),
            {
                "op": 3,
                "d": {
                    "status": "online",
                    "activities": [{"name": "chess", "type": 0, "url": "https://x.test"}],
                    "since": None,
                    "afk": False,
                },
            },
        ),
        (
            encode_voice_state_update(2**63 + 5, 1234, self_deaf=True),
            {
                "op": 4,
                "d": {
                    "guild_id": str(2**63 + 5),
                    "channel_id": "1234",
                    "self_mute": False,
                    "self_deaf": True,
                },
            },
        ),
        (
            encode_voice_state_update(99, None),
            {
                "op": 4,
                "d": {"guild_id": "99", "channel_id": None, "self_mute": False, "self_deaf": False},
            },
        ),
        (
            encode_request_guild_members(7, query=""),
            {"op": 8, "d": {"guild_id": "7", "query": "", "limit": 0}},
        ),
        (
            encode_request_guild_members(7, user_ids=[1, 2**64 - 1], presences=True, nonce="n1"),
            {
                "op": 8,
                "d": {
                    "guild_id": "7",
                    "user_ids": ["1", str(2**64 - 1)],
                    "limit": 0,
                    "presences": True,
                    "nonce": "n1",
                },
            },
        ),
    ],
)
def test_encoded_payloads(payload: bytes, expected: dict[str, Any]) -> None:
    assert isinstance(payload, bytes)
    assert as_dict(payload) == expected


def test_default_identify_properties_name_the_library() -> None:
    d = as_dict(encode_identify("t", Intents.GUILDS))["d"]
    assert d["properties"] == {
        "os": DEFAULT_PROPERTIES.os,
        "browser": "trio_companion",
        "device": "trio_companion",
    }
    assert not any(key.startswith("$") for key in d["properties"])  # deprecated keys


@pytest.mark.parametrize("kwargs", [{}, {"query": "a", "user_ids": [1]}], ids=["neither", "both"])
def test_request_guild_members_needs_exactly_one_selector(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        encode_request_guild_members(1, **kwargs)


def _presence_of_size(size: int) -> Presence:
    """A presence whose op 3 payload is exactly ``size`` bytes."""
    base = len(encode_presence_update(Presence(activities=(Activity(name="", type=0),))))
    return Presence(activities=(Activity(name="x" * (size - base), type=0),))


@pytest.mark.parametrize(("size", "accepted"), [(4095, True), (4096, True), (4097, False)])
def test_payload_size_limit(size: int, accepted: bool) -> None:
    presence = _presence_of_size(size)
    if accepted:
        assert len(encode_presence_update(presence)) == size
    else:
        with pytest.raises(PayloadTooLarge) as info:
            encode_presence_update(presence)
        assert info.value.size == size
        assert info.value.limit == MAX_PAYLOAD_BYTES == 4096


def test_size_limit_counts_encoded_bytes_not_characters() -> None:
    # 1400 three-byte characters: 1400 characters but over 4200 bytes.
    presence = Presence(activities=(Activity(name="€" * 1400, type=0),))
    with pytest.raises(PayloadTooLarge) as info:
        encode_presence_update(presence)
    assert info.value.size > 4200


def test_identify_with_huge_presence_is_refused() -> None:
    presence = Presence(activities=(Activity(name="y" * 5000, type=0),))
    with pytest.raises(PayloadTooLarge):
        encode_identify("t", Intents.GUILDS, presence=presence)


# --- Envelope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "op", "s", "t", "d"),
    [
        (b'{"op":10,"d":{"heartbeat_interval":41250,"_trace":["gw"]},"s":null,"t":null}',
         10, None, None, b'{"heartbeat_interval":41250,"_trace":["gw"]}'),
        (b'{"op":11}', 11, None, None, b"null"),
        ('{"t":"RESUMED","s":8,"op":0,"d":{"_trace":[]}}', 0, 8, "RESUMED", b'{"_trace":[]}'),
        (b'{"op":7,"d":null}', 7, None, None, b"null"),
        (b'{"op":9,"d":false,"s":null,"t":null}', 9, None, None, b"false"),
        (b'{"op":99,"d":[1,2],"x":"extra field"}', 99, None, None, b"[1,2]"),
    ],
)  # fmt: skip
def test_decode_frame(frame: bytes | str, op: int, s: int | None, t: str | None, d: bytes) -> None:
    message = decode_frame(frame)
    assert (message.op, message.s, message.t) == (op, s, t)
    assert bytes(message.d) == d


@pytest.mark.parametrize(
    "frame",
    [b"", b"not json", b"[1,2]", b'{"d":null}', b'{"op":"0"}', b'{"op":0,"s":"1"}', b'{"op":1'],
)
def test_decode_frame_refuses_malformed(frame: bytes) -> None:
    with pytest.raises(MalformedFrame):
        decode_frame(frame)


def test_decode_hello() -> None:
    message = decode_frame(b'{"op":10,"d":{"heartbeat_interval":41250,"_trace":["gw-1"]}}')
    assert message.op == Opcode.HELLO
    assert decode_hello(message).heartbeat_interval == 41250


@pytest.mark.parametrize(
    "frame", [b'{"op":10,"d":null}', b'{"op":10,"d":{}}', b'{"op":10,"d":{"heartbeat_interval":0}}']
)
def test_decode_hello_refuses_malformed(frame: bytes) -> None:
    with pytest.raises(MalformedFrame):
        decode_hello(decode_frame(frame))


@pytest.mark.parametrize(
    ("frame", "resumable"),
    [
        (b'{"op":9,"d":true}', True),
        (b'{"op":9,"d":false}', False),
        (b'{"op":9,"d":null}', False),
        (b'{"op":9}', False),
        (b'{"op":9,"d":"true"}', False),
    ],
)
def test_decode_invalid_session(frame: bytes, resumable: bool) -> None:
    assert decode_invalid_session(decode_frame(frame)) is resumable
