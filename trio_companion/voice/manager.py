"""All voice sessions of the bot: one per guild, started in the manager's nursery.

Theory of operation
-------------------

`VoiceManager.run` opens the nursery every `session.VoiceSession` lives in; the app starts it
in the root nursery, so shutdown cancels the sessions (each sends op 4 "leave" on its way out).
The dispatcher calls `on_voice_state` / `on_voice_server` for every VOICE_STATE_UPDATE of the
bot's own user and every VOICE_SERVER_UPDATE; they are routed to the guild's session.

`join`, `leave` and `move` for one guild run under that guild's `trio.Lock`, in arrival order,
so any mix of concurrent commands leaves one consistent state: at most one session per guild,
and the session present exactly when the bot is (or is becoming) connected. `speak` and `stop`
need no lock: they act on whatever session is current at that instant.

When a session ends on its own (a kick, a fatal close code, a 4006 loop cut short), its
``on_ended`` callback from `join` gets the one-line reason, so the user who asked hears it.
"""

from __future__ import annotations

import enum
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, final

import davey
import trio

from trio_companion.voice.errors import VoiceError, VoiceJoinFailed
from trio_companion.voice.gateway import VoiceLinkStatistics
from trio_companion.voice.player import PlayerStatistics, Utterance
from trio_companion.voice.session import VoiceSession, VoiceStateSender

__all__ = ["JoinResult", "NotInVoice", "VoiceManager", "VoiceManagerStatistics"]

log = logging.getLogger(__name__)

# Our choice: a join is op 4 + two dispatches + a handshake; past this the user gets an answer.
JOIN_TIMEOUT: Final = 20.0
# Our choice: Discord answers op 4 within a second or two; /leave waits this long for it.
LEAVE_ECHO_TIMEOUT: Final = 3.0

OnEnded = Callable[[str], Awaitable[None]]


class JoinResult(enum.Enum):
    JOINED = "joined"
    MOVED = "moved"
    ALREADY_THERE = "already there"


@final
class NotInVoice(VoiceError):
    """`VoiceManager.speak` / `stop` / `leave` for a guild without a voice session."""

    def __init__(self, guild_id: int) -> None:
        super().__init__("I'm not in a voice channel here; use /join first")
        self.guild_id = guild_id


@dataclass(frozen=True, slots=True)
class VoiceManagerStatistics:
    sessions: int
    links: tuple[VoiceLinkStatistics, ...]
    players: tuple[PlayerStatistics, ...]


@final
class VoiceManager:
    """See the module docstring."""

    def __init__(
        self,
        *,
        gateway: VoiceStateSender,
        user_id: Callable[[], int],
        ssl_context: ssl.SSLContext | None,
        queue_limit: int,
        others_in: Callable[[int, int], int] | None = None,
        leave_when_alone: float = 0.0,
        max_dave_protocol_version: int = davey.DAVE_PROTOCOL_VERSION,
    ) -> None:
        self._gateway = gateway
        self._others_in = others_in
        self._leave_when_alone = leave_when_alone
        self._user_id = user_id
        self._ssl = ssl_context
        self._queue_limit = queue_limit
        self._max_dave = max_dave_protocol_version
        self._sessions: dict[int, VoiceSession] = {}
        self._locks: dict[int, trio.Lock] = {}
        self._left: dict[int, trio.Event] = {}  # guild -> set by the "no channel" update
        self._nursery: trio.Nursery | None = None

    def statistics(self) -> VoiceManagerStatistics:
        sessions = tuple(self._sessions.values())
        return VoiceManagerStatistics(
            sessions=len(sessions),
            links=tuple(s.link.statistics() for s in sessions if s.link is not None),
            players=tuple(s.player.statistics() for s in sessions),
        )

    def session(self, guild_id: int) -> VoiceSession | None:
        return self._sessions.get(guild_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the sessions until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    # --- events -------------------------------------------------------------------------------

    def on_voice_state(
        self, guild_id: int, user_id: int, channel_id: int | None, session_id: str
    ) -> None:
        session = self._sessions.get(guild_id)
        if user_id == self._user_id():
            if channel_id is None and (left := self._left.get(guild_id)) is not None:
                left.set()
            if session is not None:
                session.on_voice_state(channel_id, session_id)
        if session is not None and self._others_in is not None:
            # Anyone's move can leave the bot alone (or end that).
            session.set_alone(self._others_in(guild_id, session.channel_id) == 0)

    def on_voice_server(self, guild_id: int, token: str, endpoint: str | None) -> None:
        session = self._sessions.get(guild_id)
        if session is not None:
            session.on_voice_server(token, endpoint)

    # --- commands -----------------------------------------------------------------------------

    async def join(self, guild_id: int, channel_id: int, *, on_ended: OnEnded) -> JoinResult:
        """Connect to (or move to) ``channel_id``. Raises `VoiceJoinFailed` with a reason."""
        async with self._lock(guild_id):
            session = self._sessions.get(guild_id)
            if session is not None:
                if session.channel_id == channel_id:
                    return JoinResult.ALREADY_THERE
                await session.move(channel_id)
                return JoinResult.MOVED
            nursery = self._nursery
            if nursery is None:
                raise VoiceJoinFailed("the bot is shutting down")
            session = VoiceSession(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=self._user_id(),
                gateway=self._gateway,
                ssl_context=self._ssl,
                queue_limit=self._queue_limit,
                leave_when_alone=self._leave_when_alone,
                max_dave_protocol_version=self._max_dave,
            )
            self._sessions[guild_id] = session
            try:
                with trio.fail_after(JOIN_TIMEOUT):
                    await nursery.start(self._host, session, on_ended)
            except trio.TooSlowError:
                raise VoiceJoinFailed("joining voice took too long; try again") from None
            return JoinResult.JOINED

    async def leave(self, guild_id: int) -> None:
        """Disconnect from voice in ``guild_id``. Raises `NotInVoice`."""
        async with self._lock(guild_id):
            session = self._sessions.get(guild_id)
            if session is None:
                raise NotInVoice(guild_id)
            # Discord answers the leave (op 4 with no channel) with a VOICE_STATE_UPDATE without
            # a channel. Hold the guild's lock until it came, so that it cannot reach the
            # session of a /join queued behind this /leave and end it at once.
            left = self._left[guild_id] = trio.Event()
            try:
                session.leave()
                await session.wait_closed()
                with trio.move_on_after(LEAVE_ECHO_TIMEOUT):
                    await left.wait()
            finally:
                del self._left[guild_id]

    def speak(self, guild_id: int, utterance: Utterance) -> int:
        """Queue ``utterance``; returns how many are ahead. Raises `NotInVoice`, `QueueFull`."""
        session = self._sessions.get(guild_id)
        if session is None:
            raise NotInVoice(guild_id)
        return session.player.enqueue_nowait(utterance)

    def stop(self, guild_id: int) -> int:
        """Cut what is being said and drop the queue; returns how many were dropped."""
        session = self._sessions.get(guild_id)
        if session is None:
            raise NotInVoice(guild_id)
        return session.player.stop()

    # --- internals ----------------------------------------------------------------------------

    def _lock(self, guild_id: int) -> trio.Lock:
        return self._locks.setdefault(guild_id, trio.Lock())

    async def _host(
        self,
        session: VoiceSession,
        on_ended: OnEnded,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run ``session`` in the manager's nursery; forget it and report when it ends."""
        try:
            await session.run(task_status=task_status)
        except Exception:
            if not session.up:
                raise  # to `join`, through nursery.start
            # A boundary: one guild's voice failing must not take the bot down.
            log.exception("voice %s: the session failed", session.guild_id)
            session.ended = "The voice connection failed unexpectedly; use /join to reconnect."
        finally:
            if self._sessions.get(session.guild_id) is session:
                del self._sessions[session.guild_id]
        if session.ended is not None:
            log.info("voice %s: session ended: %s", session.guild_id, session.ended)
            try:
                await on_ended(session.ended)
            except Exception:
                # A boundary: failing to tell the user must not take the manager down.
                log.exception("voice %s: could not report the end of a session", session.guild_id)
