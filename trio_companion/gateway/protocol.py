"""Sans-IO core of the Discord gateway v10: opcodes, close codes, intents, payload codecs.

Theory of operation. Nothing here does I/O or knows about trio. The shell reads a websocket
message, inflates it (`compression`), and calls `decode_frame`, which parses only the envelope
``{op, d, s, t}`` and keeps ``d`` as undecoded JSON (`msgspec.Raw`). The shell then decodes ``d``
only for what it acts on: `decode_hello` for op 10, `decode_invalid_session` for op 9, and
`events.decode_event` for the dispatches (op 0) it cares about. Outgoing payloads are built by the
``encode_*`` functions, which return the UTF-8 JSON to send as a *text* frame and refuse, with
`PayloadTooLarge`, anything over Discord's 4096-byte limit. `close_info` turns a close code into a
`CloseAction` (resume, new session, or stop) and an explanation; `close_error` builds the matching
exception for the shell to raise.

Snowflakes are sent as JSON strings (Discord's canonical form) and decoded to `int`.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from trio_companion.gateway.errors import (
    FatalGatewayClose,
    GatewayClosed,
    MalformedFrame,
    PayloadTooLarge,
)
from trio_companion.gateway.events import Hello

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# --- Policy constants ---------------------------------------------------------------------------

API_VERSION: Final = 10  # PROTOCOL.md 1.1: the connect URL carries ?v=10.
ENCODING: Final = "json"  # PROTOCOL.md 1.1: json or etf; we speak JSON only.
MAX_PAYLOAD_BYTES: Final = 4096  # PROTOCOL.md 1.1: a larger send closes the connection with 4002.
SEND_LIMIT: Final = 120  # PROTOCOL.md 1.8: 120 sends per connection per 60 s, else disconnect.
SEND_WINDOW: Final = 60.0  # PROTOCOL.md 1.8: seconds over which SEND_LIMIT counts.
HEARTBEAT_RESERVE: Final = 3  # PROTOCOL.md 1.8: hikari keeps 3 slots for heartbeats (117 + 3).
NON_PRIORITY_SEND_LIMIT: Final = SEND_LIMIT - HEARTBEAT_RESERVE  # hikari 117; discord.py uses 110.
IDENTIFY_WINDOW: Final = 5.0  # PROTOCOL.md 1.9: max_concurrency identifies per 5 s.
IDENTIFIES_PER_DAY: Final = 1000  # PROTOCOL.md 1.5: over it, Discord resets the bot token.
RECONNECT_BACKOFF_BASE: Final = 1.0  # PROTOCOL.md P1: exponential backoff with jitter; 1 s first.
RECONNECT_BACKOFF_CAP: Final = 60.0  # Our choice: storms stay slow, recovery stays under a minute.
ZOMBIE_CLOSE_CODE: Final = 4000  # PROTOCOL.md 1.4/P4: any code but 1000/1001 keeps the session.
SHUTDOWN_CLOSE_CODE: Final = 1000  # PROTOCOL.md 1.6: 1000 ends the session; right when stopping.
DEFAULT_LARGE_THRESHOLD: Final = 50  # PROTOCOL.md 1.5: 50-250, Discord's default is 50.
LIBRARY_NAME: Final = "trio_companion"  # PROTOCOL.md 1.5: browser and device = library name.


class Opcode(enum.IntEnum):
    """Gateway opcodes (PROTOCOL.md 1.3). Decoded frames keep ``op`` as a plain int so that an
    opcode Discord adds later does not break parsing; compare it with these members."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11
    REQUEST_SOUNDBOARD_SOUNDS = 31
    REQUEST_CHANNEL_INFO = 43


class Intents(enum.IntFlag):
    """Gateway intent bits (PROTOCOL.md 2). GUILD_MEMBERS, GUILD_PRESENCES and MESSAGE_CONTENT
    are privileged: they must be enabled in the Developer Portal or Discord closes with 4014."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS: Final = (
    Intents.GUILD_MEMBERS | Intents.GUILD_PRESENCES | Intents.MESSAGE_CONTENT
)


def default_intents(members: bool) -> Intents:
    """The intents of a chat + voice companion: 37505, or 37507 with GUILD_MEMBERS."""
    intents = (
        Intents.GUILDS
        | Intents.GUILD_MESSAGES
        | Intents.DIRECT_MESSAGES
        | Intents.MESSAGE_CONTENT
        | Intents.GUILD_VOICE_STATES
    )
    return intents | Intents.GUILD_MEMBERS if members else intents


# --- Close codes --------------------------------------------------------------------------------


class CloseAction(enum.Enum):
    """What to do after the gateway closed."""

    RESUME = "resume"  # reconnect to resume_gateway_url and send op 6 Resume
    NEW_SESSION = "new_session"  # forget the session, reconnect to the cached URL and Identify
    FATAL = "fatal"  # stop the bot: reconnecting cannot fix it


class CloseCode(enum.IntEnum):
    """Gateway close codes (PROTOCOL.md 1.7), plus the two standard websocket ones."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How to react to one close code. ``explanation`` is one line; for FATAL codes it says what
    the user must fix."""

    action: CloseAction
    explanation: str


_R, _N, _F = CloseAction.RESUME, CloseAction.NEW_SESSION, CloseAction.FATAL

# PROTOCOL.md 1.7: docs' "reconnect: no" codes are FATAL (discord.py's fatal set), 4007 and 4009
# need a new session per the docs (hikari resumes them, and then gets op 9), the rest resume.
# A 1000/1001 *from the server* is reconnectable (PROTOCOL.md 1.7).
CLOSE_CODES: Final[Mapping[int, CloseInfo]] = MappingProxyType(
    {
        1000: CloseInfo(_R, "Discord closed the connection normally (1000)"),
        1001: CloseInfo(_R, "Discord is going away (1001)"),
        4000: CloseInfo(_R, "Discord reported an unknown error (4000)"),
        4001: CloseInfo(_R, "Discord did not understand an opcode or payload we sent (4001)"),
        4002: CloseInfo(_R, "Discord could not decode a payload we sent (4002)"),
        4003: CloseInfo(_R, "Discord got a payload before Identify (4003)"),
        4004: CloseInfo(_F, "Discord rejected the token (4004): check DISCORD_TOKEN"),
        4005: CloseInfo(_R, "Discord got a second Identify on one connection (4005)"),
        4007: CloseInfo(_N, "Discord rejected the sequence number on resume (4007)"),
        4008: CloseInfo(_R, "Discord rate-limited our gateway sends (4008)"),
        4009: CloseInfo(_N, "Discord timed out the session (4009)"),
        4010: CloseInfo(_F, "Discord rejected the shard settings (4010): check the shard id/count"),
        4011: CloseInfo(
            _F,
            "Discord requires sharding (4011): the bot is in over 2500 servers per shard; "
            'set discord.shard_count = "auto" or a larger number',
        ),
        4012: CloseInfo(
            _F, "Discord rejected gateway API version 10 (4012): update trio_companion"
        ),
        4013: CloseInfo(
            _F,
            "Discord rejected the intents value (4013): this is a trio_companion bug, "
            "please report it",
        ),
        4014: CloseInfo(
            _F,
            "Discord refused a privileged intent (4014): enable MESSAGE CONTENT (and SERVER "
            "MEMBERS if configured) in the Developer Portal",
        ),
    }
)
_NO_CODE: Final = CloseInfo(_R, "the gateway connection dropped without a close code")


def close_info(code: int | None) -> CloseInfo:
    """Action and explanation for a close code; ``None`` (no close frame) and codes missing
    from `CLOSE_CODES` resume."""
    if code is None:
        return _NO_CODE
    return CLOSE_CODES.get(code) or CloseInfo(_R, f"Discord closed with unknown code {code}")


def close_error(
    code: int | None, reason: str, *, by_peer: bool = True
) -> GatewayClosed | FatalGatewayClose:
    """The exception the shell raises when a connection ends with ``code``: `FatalGatewayClose`
    for a FATAL code, else `GatewayClosed` with the code's action. ``reason`` is the close
    frame's reason text, or a word on why we closed."""
    info = close_info(code)
    if info.action is CloseAction.FATAL and code is not None:
        return FatalGatewayClose(code, info.explanation)
    return GatewayClosed(code, reason, info.action, by_peer=by_peer)


def reconnect_delay(attempt: int, jitter: float) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): "full jitter", a uniform draw
    ``jitter`` in [0, 1) times ``min(cap, base * 2**attempt)``, as discord.py's backoff does."""
    return jitter * min(RECONNECT_BACKOFF_CAP, RECONNECT_BACKOFF_BASE * 2.0 ** min(attempt, 32))


# --- Outgoing payloads --------------------------------------------------------------------------

Status = Literal["online", "dnd", "idle", "invisible", "offline"]


class IdentifyProperties(msgspec.Struct, frozen=True, kw_only=True):
    """``properties`` of Identify: the OS, and the library name as browser and device."""

    os: str
    browser: str
    device: str


DEFAULT_PROPERTIES: Final = IdentifyProperties(
    os=sys.platform, browser=LIBRARY_NAME, device=LIBRARY_NAME
)


class Activity(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A bot activity. ``type``: 0 playing, 2 listening, 3 watching, 4 custom (text in
    ``state``), 5 competing. ``state`` and ``url`` are left out when None."""

    name: str
    type: int
    state: str | None = None
    url: str | None = None


class Presence(msgspec.Struct, frozen=True, kw_only=True):
    """The presence object of Identify and op 3. ``since`` is Unix ms when idle, else None."""

    status: Status = "online"
    activities: tuple[Activity, ...] = ()
    since: int | None = None
    afk: bool = False


class _Identify(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    token: str
    properties: IdentifyProperties
    intents: int
    large_threshold: int
    shard: tuple[int, int] | None = None
    presence: Presence | None = None


class _Resume(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    session_id: str
    seq: int


class _VoiceStateUpdate(msgspec.Struct, frozen=True, kw_only=True):
    guild_id: str
    channel_id: str | None
    self_mute: bool
    self_deaf: bool


class _RequestGuildMembers(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    guild_id: str
    limit: int
    query: str | None = None
    user_ids: tuple[str, ...] | None = None
    presences: bool = False
    nonce: str | None = None


class _Outgoing(msgspec.Struct, frozen=True):
    op: int
    d: object


_encoder: Final = msgspec.json.Encoder()


def _encode(op: Opcode, d: object) -> bytes:
    data = _encoder.encode(_Outgoing(int(op), d))
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(len(data), MAX_PAYLOAD_BYTES)
    return data


def encode_heartbeat(seq: int | None) -> bytes:
    """Op 1 with the last sequence number received, or null before the first dispatch."""
    return _encode(Opcode.HEARTBEAT, seq)


def encode_identify(
    token: str,
    intents: Intents,
    *,
    properties: IdentifyProperties = DEFAULT_PROPERTIES,
    shard: tuple[int, int] | None = None,
    presence: Presence | None = None,
    large_threshold: int = DEFAULT_LARGE_THRESHOLD,
) -> bytes:
    """Op 2. ``shard`` is ``(shard_id, num_shards)``; omitted when None, as is ``presence``.
    Raises `PayloadTooLarge` over 4096 bytes (a huge presence, say)."""
    identify = _Identify(
        token=token,
        properties=properties,
        intents=int(intents),
        large_threshold=large_threshold,
        shard=shard,
        presence=presence,
    )
    return _encode(Opcode.IDENTIFY, identify)


def encode_resume(token: str, session_id: str, seq: int) -> bytes:
    """Op 6, sent instead of Identify on a connection to ``resume_gateway_url``."""
    return _encode(Opcode.RESUME, _Resume(token=token, session_id=session_id, seq=seq))


def encode_presence_update(presence: Presence) -> bytes:
    """Op 3. Raises `PayloadTooLarge` over 4096 bytes."""
    return _encode(Opcode.PRESENCE_UPDATE, presence)


def encode_voice_state_update(
    guild_id: int, channel_id: int | None, *, self_mute: bool = False, self_deaf: bool = False
) -> bytes:
    """Op 4: join or move to ``channel_id``, or leave voice in the guild when it is None."""
    update = _VoiceStateUpdate(
        guild_id=str(guild_id),
        channel_id=None if channel_id is None else str(channel_id),
        self_mute=self_mute,
        self_deaf=self_deaf,
    )
    return _encode(Opcode.VOICE_STATE_UPDATE, update)


def encode_request_guild_members(
    guild_id: int,
    *,
    query: str | None = None,
    user_ids: Sequence[int] | None = None,
    limit: int = 0,
    presences: bool = False,
    nonce: str | None = None,
) -> bytes:
    """Op 8 with exactly one of ``query`` (name prefix; "" for everyone) and ``user_ids``.

    Asking for every member is limited to once per guild per 30 s (PROTOCOL.md P5).
    Raises ValueError unless exactly one of them is given, `PayloadTooLarge` over 4096 bytes.
    """
    if (query is None) == (user_ids is None):
        raise ValueError("give exactly one of query and user_ids")
    request = _RequestGuildMembers(
        guild_id=str(guild_id),
        limit=limit,
        query=query,
        user_ids=None if user_ids is None else tuple(str(u) for u in user_ids),
        presences=presences,
        nonce=nonce,
    )
    return _encode(Opcode.REQUEST_GUILD_MEMBERS, request)


# --- Incoming payloads --------------------------------------------------------------------------

_NULL: Final = msgspec.Raw(b"null")


class GatewayMessage(msgspec.Struct, frozen=True):
    """One received payload. ``d`` stays raw JSON until someone decodes it; ``s`` and ``t`` are
    set only for dispatches (op 0)."""

    op: int
    d: msgspec.Raw = _NULL
    s: int | None = None
    t: str | None = None


_frame_decoder: Final = msgspec.json.Decoder(GatewayMessage)
_hello_decoder: Final = msgspec.json.Decoder(Hello)
_bool_decoder: Final = msgspec.json.Decoder(bool)


def decode_frame(data: bytes | str) -> GatewayMessage:
    """Parse the envelope of one inflated gateway message; raises `MalformedFrame`."""
    try:
        return _frame_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(str(exc)) from exc


def decode_hello(message: GatewayMessage) -> Hello:
    """The body of op 10; raises `MalformedFrame` when it has no valid heartbeat_interval."""
    try:
        return _hello_decoder.decode(message.d)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"Hello: {exc}") from exc


def decode_invalid_session(message: GatewayMessage) -> bool:
    """Whether the session of an op 9 can be resumed; anything but ``true`` means no."""
    try:
        return _bool_decoder.decode(message.d)
    except msgspec.DecodeError:
        return False
