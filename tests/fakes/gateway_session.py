"""Sans-IO helpers of the fake gateway (`tests.fakes.discord_gateway`): sessions, payload checks,
transport compression. Nothing here does I/O; everything is checked the way Discord checks it
(PROTOCOL.md 1.x), and where Discord's behaviour is unknown the choice is named in a comment.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard, final

from trio_companion.gateway.compression import ZLIB_STREAM, ZSTD_STREAM
from trio_companion.gateway.protocol import PRIVILEGED_INTENTS, CloseCode, Opcode

try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a dev dependency
    _HAVE_ZSTD = False
else:
    _HAVE_ZSTD = True

__all__ = [
    "CLIENT_OPS",
    "CLOSE_REASONS",
    "KNOWN_INTENTS",
    "SESSION_ENDING_CLOSES",
    "Deflate",
    "FakeSession",
    "HeartbeatSeqCheck",
    "check_identify",
    "check_resume_seq",
    "make_deflate",
    "ready_payload",
    "supported_compressions",
]

# Discord's close reasons (discord-api-docs "Gateway Close Event Codes"), sent as reason text.
CLOSE_REASONS: Final[dict[int, str]] = {
    CloseCode.UNKNOWN_ERROR: "Unknown error.",
    CloseCode.UNKNOWN_OPCODE: "Unknown opcode.",
    CloseCode.DECODE_ERROR: "Error while decoding payload.",
    CloseCode.NOT_AUTHENTICATED: "Not authenticated.",
    CloseCode.AUTHENTICATION_FAILED: "Authentication failed.",
    CloseCode.ALREADY_AUTHENTICATED: "Already authenticated.",
    CloseCode.INVALID_SEQ: "Invalid seq.",
    CloseCode.RATE_LIMITED: "Rate limited.",
    CloseCode.SESSION_TIMED_OUT: "Session timed out.",
    CloseCode.INVALID_SHARD: "Invalid shard.",
    CloseCode.SHARDING_REQUIRED: "Sharding required.",
    CloseCode.INVALID_API_VERSION: "Invalid API version.",
    CloseCode.INVALID_INTENTS: "Invalid intent(s).",
    CloseCode.DISALLOWED_INTENTS: "Disallowed intent(s).",
}

# Opcodes a client may send (PROTOCOL.md 1.3); anything else closes with 4001.
CLIENT_OPS: Final = frozenset(
    {
        Opcode.HEARTBEAT,
        Opcode.IDENTIFY,
        Opcode.PRESENCE_UPDATE,
        Opcode.VOICE_STATE_UPDATE,
        Opcode.RESUME,
        Opcode.REQUEST_GUILD_MEMBERS,
        Opcode.REQUEST_SOUNDBOARD_SOUNDS,
        Opcode.REQUEST_CHANNEL_INFO,
    }
)

# Every intent bit Discord defines (discord-api-docs "Gateway Intents"): 0-16, 20, 21, 24, 25.
# Wider than `protocol.Intents`, which lists only what the bot uses; other bits close with 4013.
KNOWN_INTENTS: Final = (1 << 17) - 1 | 1 << 20 | 1 << 21 | 1 << 24 | 1 << 25

# Server close codes after which the session cannot be resumed (PROTOCOL.md 1.7: "new session"
# or "no reconnect"), so the fake invalidates the session when it sends one of them.
SESSION_ENDING_CLOSES: Final = frozenset({4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014})

# Event names a resume does not replay: they describe the connection, not the session.
_NOT_REPLAYED: Final = frozenset({"READY", "RESUMED"})


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_identify(
    d: Any, *, token: str, known_intents: int, allowed_privileged: int
) -> tuple[int, str] | None:
    """The close ``(code, reason)`` an Identify body earns, or None when Discord would accept it.

    Order follows what a server must know first: the token (4004), the shape (4002, our choice:
    Discord's docs do not say which code a missing field gets), intents (4013, then 4014 for a
    privileged bit not in ``allowed_privileged``), shard (4010).
    """
    if not isinstance(d, dict) or d.get("token") != token:
        return CloseCode.AUTHENTICATION_FAILED, CLOSE_REASONS[4004]
    properties = d.get("properties")
    if not isinstance(properties, dict) or not all(
        isinstance(properties.get(key), str) for key in ("os", "browser", "device")
    ):
        return CloseCode.DECODE_ERROR, "Identify needs properties {os, browser, device}."
    threshold = d.get("large_threshold", 50)
    if not _is_int(threshold) or not 50 <= threshold <= 250:  # PROTOCOL.md 1.5: 50-250
        return CloseCode.DECODE_ERROR, "large_threshold must be 50-250."
    intents = d.get("intents")
    if not _is_int(intents) or intents < 0 or intents & ~known_intents:
        return CloseCode.INVALID_INTENTS, CLOSE_REASONS[4013]
    if intents & int(PRIVILEGED_INTENTS) & ~allowed_privileged:
        return CloseCode.DISALLOWED_INTENTS, CLOSE_REASONS[4014]
    shard = d.get("shard")
    if shard is not None and not (
        isinstance(shard, list)
        and len(shard) == 2
        and all(_is_int(x) for x in shard)
        and 0 <= shard[0] < shard[1]
    ):
        return CloseCode.INVALID_SHARD, CLOSE_REASONS[4010]
    return None


def check_resume_seq(seq: object, last_seq: int) -> bool:
    """Whether a Resume's ``seq`` is one the session has reached (0 before any dispatch)."""
    return _is_int(seq) and 0 <= seq <= last_seq


@final
@dataclass(eq=False)
class FakeSession:
    """One gateway session, shared by every connection that identified or resumed into it.

    ``events`` holds ``(seq, name, data)`` of every dispatch, sent or only queued, so a resume
    can replay what the client missed. ``invalidated`` is set when Discord would forget the
    session: the client closed with 1000/1001, the fake sent op 9 false or a session-ending
    close, or a test called `FakeGateway.invalidate_session`.
    """

    session_id: str
    created_at: float
    intents: int
    shard: tuple[int, int] | None
    seq: int = 0
    invalidated: bool = False
    events: list[tuple[int, str, Any]] = field(default_factory=list)

    def add_event(self, name: str, data: Any) -> int:
        """Give the next seq to event ``name`` and keep it for replay; returns the seq."""
        self.seq += 1
        self.events.append((self.seq, name, data))
        return self.seq

    def replay_after(self, seq: int) -> list[tuple[int, str, Any]]:
        """The events a client that last saw ``seq`` missed, oldest first."""
        return [e for e in self.events if e[0] > seq and e[1] not in _NOT_REPLAYED]


def ready_payload(
    session: FakeSession,
    *,
    user: dict[str, Any],
    application: dict[str, Any],
    guild_ids: list[str],
    resume_url: str,
) -> dict[str, Any]:
    """READY's body (PROTOCOL.md 1.6): guilds as unavailable stubs, filled by GUILD_CREATE."""
    ready: dict[str, Any] = {
        "v": 10,
        "user": {"discriminator": "0", "global_name": None, "avatar": None, **user},
        "guilds": [{"id": guild_id, "unavailable": True} for guild_id in guild_ids],
        "session_id": session.session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_url,
        "application": application,
        "private_channels": [],
        "relationships": [],
    }
    if session.shard is not None:
        ready["shard"] = list(session.shard)
    return ready


@final
class HeartbeatSeqCheck:
    """Whether each heartbeat's ``d`` is a seq the client can hold (PROTOCOL.md 1.2, 1.4).

    At most the newest seq sent on the connection, and at least the newest one sent before the
    client's previous heartbeat: it had a whole interval to read that. Before Identify/Resume
    the fake cannot know what the client holds, so only the type is checked.
    """

    def __init__(self) -> None:
        self._last: int | None = None  # newest seq sent on this connection (or resumed from)
        self._floor: int | None = None  # _last when the previous heartbeat arrived

    def reset(self, seq: int | None) -> None:
        """A session began here: READY pending (None) or resumed from ``seq``."""
        self._last = self._floor = seq

    def sent(self, seq: int) -> None:
        self._last = seq

    def check(self, d: object, *, established: bool) -> str | None:
        """One heartbeat arrived; returns what is wrong with its ``d``, or None."""
        if d is not None and (not _is_int(d) or d < 0):
            return f"heartbeat d={d!r} is not a seq"
        if not established:
            return None
        last, floor = self._last, self._floor
        self._floor = last
        too_new = d is not None and (last is None or d > last)
        too_old = floor is not None and (d is None or d < floor)
        if too_new or too_old:
            return f"heartbeat d={d!r}, expected {floor}..{last}"
        return None


Deflate = Callable[[bytes], bytes]
"""Compresses one whole gateway message as the next piece of the connection's stream."""


def supported_compressions() -> frozenset[str]:
    """The ``compress`` query values the fake can serve here."""
    return frozenset({ZLIB_STREAM, ZSTD_STREAM} if _HAVE_ZSTD else {ZLIB_STREAM})


def make_deflate(compress: str) -> Deflate:
    """A fresh compressor for one connection (PROTOCOL.md 1.1); raises ValueError if unknown.

    zlib-stream: one compressobj, each message ends with a Z_SYNC_FLUSH (``00 00 ff ff``).
    zstd-stream: one compressobj, each message flushed as a block without ending the frame.
    """
    if compress == ZLIB_STREAM:
        zcomp = zlib.compressobj()
        return lambda data: zcomp.compress(data) + zcomp.flush(zlib.Z_SYNC_FLUSH)
    if compress == ZSTD_STREAM and _HAVE_ZSTD:
        zstd = zstandard.ZstdCompressor().compressobj()
        flush_block = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        return lambda data: zstd.compress(data) + zstd.flush(flush_block)
    raise ValueError(f"unsupported compress={compress!r}")
