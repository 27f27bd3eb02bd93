"""One guild's voice session: main-gateway op 4, voice links across reconnects, the player.

Theory of operation
-------------------

`VoiceSession.run` owns a nursery holding the `player.VoicePlayer` and, one at a time, the
current `gateway.VoiceLink`. The voice manager feeds it the bot's own VOICE_STATE_UPDATE
(`on_voice_state`: session id, channel, or ``None`` when removed) and VOICE_SERVER_UPDATE
(`on_voice_server`: token and endpoint; a null endpoint means "wait for the next one").

States, in order::

    JOINING   op 4 sent; wait (VOICE_SERVER_TIMEOUT) for both updates; none → VoiceJoinFailed
    LINKING   VoiceLink.run handshakes; its failure before Ready is handled like a close below
    UP        task_status.started() the first time; the player can play
    CLOSED    the link raised VoiceDisconnected, or a new VOICE_SERVER_UPDATE replaced it

After a close:

- a **new VOICE_SERVER_UPDATE** (a move, a server change): link again with the new token and
  endpoint, no op 4 (PROTOCOL.md 5.1 step 2: never reuse the old token);
- **NEW_SESSION** (4006 and friends): op 4 "leave" then op 4 "join" again after a jittered
  backoff, at most `MAX_NEW_SESSIONS` times in a row: the 4006 loop of P8/P9 cannot happen;
- **STOP** (4017, 4021, 4022, ...): leave and tell the user the close code's explanation; for
  4014 first wait `MOVE_GRACE` for an update showing that we were moved;
- **removed** (our VOICE_STATE_UPDATE with no channel: kicked, channel deleted): end.

Whatever ends it (the above, `leave`, cancellation at shutdown), `run` sends op 4 with no channel
in a shielded, bounded scope, so Discord never shows the bot sitting in a channel it left.
``ended`` holds the one-line reason for the user (None after a requested leave).
"""

from __future__ import annotations

import logging
import random
import ssl
from typing import Final, Protocol, final

import davey
import trio

from trio_companion.errors import CompanionError, first_exception
from trio_companion.voice.errors import VoiceDisconnected, VoiceJoinFailed
from trio_companion.voice.gateway import VoiceLink, VoiceServer
from trio_companion.voice.player import VoicePlayer
from trio_companion.voice.protocol import VoiceCloseAction

__all__ = [
    "LEAVE_TIMEOUT",
    "MAX_NEW_SESSIONS",
    "MOVE_GRACE",
    "VOICE_SERVER_TIMEOUT",
    "VoiceSession",
    "VoiceStateSender",
]

log = logging.getLogger(__name__)

# Our choice: Discord answers op 4 within a second or two; a full channel or a missing Connect
# permission gives no answer at all (PROTOCOL.md 5.1 step 1), so this is how long /join waits.
VOICE_SERVER_TIMEOUT: Final = 10.0
MAX_NEW_SESSIONS: Final = 3  # P8/P9: cap fresh-session attempts; a 4006 loop must end.
NEW_SESSION_BACKOFF_BASE: Final = 1.0  # Our choice: full jitter, doubling per attempt ...
NEW_SESSION_BACKOFF_CAP: Final = 10.0  # ... up to 10 s.
MOVE_GRACE: Final = 2.0  # Our choice: after 4014, how long a VOICE_SERVER_UPDATE may take.
LEAVE_TIMEOUT: Final = 2.0  # Our choice: bound on the op 4 "leave" send when shutting down.


class VoiceStateSender(Protocol):
    """What a session needs from the main gateway (`gateway.client.GatewayClient`)."""

    async def update_voice_state(self, guild_id: int, channel_id: int | None) -> None: ...


@final
class VoiceSession:
    """See the module docstring."""

    def __init__(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        gateway: VoiceStateSender,
        ssl_context: ssl.SSLContext | None,
        queue_limit: int,
        leave_when_alone: float = 0.0,
        max_dave_protocol_version: int = davey.DAVE_PROTOCOL_VERSION,
    ) -> None:
        self.guild_id = guild_id
        self._leave_when_alone = leave_when_alone
        self.alone_since: float | None = None
        self.channel_id = channel_id
        self._user_id = user_id
        self._gateway = gateway
        self._ssl = ssl_context
        self._max_dave = max_dave_protocol_version
        self.player = VoicePlayer(self.wait_link, queue_limit=queue_limit)
        self._session_id: str | None = None
        self._token: str | None = None
        self._endpoint: str | None = None
        self._server_generation = 0
        self._removed = False
        self._changed = trio.Event()
        self._link: VoiceLink | None = None
        self._link_up = trio.Event()
        self._scope = trio.CancelScope()
        self._closed = trio.Event()
        self.ended: str | None = None
        self._started = [False]
        self._ended_by_us: str | None = None

    # --- fed by the voice manager from gateway events ----------------------------------------

    def on_voice_state(self, channel_id: int | None, session_id: str) -> None:
        if channel_id is None:
            # Only once Discord has put us in a channel for this session: an earlier "no
            # channel" is the answer to a previous session's leave, arriving late.
            if self._session_id is not None:
                self._removed = True
        else:
            self.channel_id = channel_id
            self._session_id = session_id
        self._poke()

    def on_voice_server(self, token: str, endpoint: str | None) -> None:
        self._token = token
        self._endpoint = endpoint
        self._server_generation += 1
        self._poke()

    def set_alone(self, alone: bool) -> None:
        """Whether nobody else is in our channel now (the manager tracks voice states)."""
        if alone and self.alone_since is None:
            self.alone_since = trio.current_time()
        elif not alone:
            self.alone_since = None
        self._poke()

    # --- for the player and the manager -------------------------------------------------------

    @property
    def link(self) -> VoiceLink | None:
        return self._link

    async def wait_link(self) -> VoiceLink:
        """The current link, waiting while the session reconnects."""
        while self._link is None:
            await self._link_up.wait()
        return self._link

    async def move(self, channel_id: int) -> None:
        """Op 4 to another channel of this guild; the updates that follow relink."""
        self.channel_id = channel_id
        await self._gateway.update_voice_state(self.guild_id, channel_id)

    @property
    def up(self) -> bool:
        """Whether `run` has started (connected at least once)."""
        return self._started[0]

    def leave(self) -> None:
        """End the session (op 4 with no channel goes out as `run` exits)."""
        self._scope.cancel()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- lifetime -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join, then keep the session up until it ends; see the module docstring.

        Raises `VoiceJoinFailed` (before ``started``) when the first connection fails."""
        started = self._started
        reason: str | None = None
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.player.run)
                    if self._leave_when_alone > 0:
                        nursery.start_soon(self._watch_alone)
                    reason = await self._connect_loop(task_status, started)
                    nursery.cancel_scope.cancel()
        finally:
            self._link = None
            if not self._removed:
                with trio.move_on_after(LEAVE_TIMEOUT, shield=True):
                    try:
                        await self._gateway.update_voice_state(self.guild_id, None)
                    except CompanionError as exc:  # the main gateway is down or going down
                        log.info("voice %s: could not send op 4 leave: %s", self.guild_id, exc)
            self.ended = reason or self._ended_by_us
            self._closed.set()
        if not started[0] and self.ended is not None:
            raise VoiceJoinFailed(self.ended)

    async def _connect_loop(self, task_status: trio.TaskStatus[None], started: list[bool]) -> str:
        """Link, relink and rejoin until the session ends; returns the reason."""
        new_sessions = 0
        send_op4 = True
        while True:
            if send_op4:
                self._token = self._endpoint = None  # wait for fresh ones (never reuse a token)
                # A fresh session after a 4006 and the like: leave, then join again, as
                # discord.py does; Discord may not answer an op 4 that changes nothing. The
                # "no channel" answer to that leave is not a kick: forget our channel first.
                rejoin = self._session_id is not None
                self._session_id = None
                try:
                    with trio.fail_after(VOICE_SERVER_TIMEOUT):
                        if rejoin:
                            await self._gateway.update_voice_state(self.guild_id, None)
                        await self._gateway.update_voice_state(self.guild_id, self.channel_id)
                except (CompanionError, trio.TooSlowError):
                    return "The bot lost its connection to Discord while joining voice; try again."
            server = await self._wait_server()
            if server is None:
                if self._removed:
                    return "The bot was removed from the voice channel."
                return (
                    f"Discord did not connect the bot to voice within {VOICE_SERVER_TIMEOUT:g} s: "
                    "check that it may Connect and Speak there and that the channel is not full."
                )
            generation = self._server_generation
            failure = await self._run_link(server, task_status, started)
            if failure is None:
                if self._removed:
                    return "The bot was removed from the voice channel."
                send_op4 = False  # replaced by a new VOICE_SERVER_UPDATE: relink at once
                new_sessions = 0
                continue
            if failure.action is VoiceCloseAction.STOP:
                if failure.code == 4014 and await self._wait_moved(generation):
                    send_op4 = False
                    continue
                return failure.explanation
            new_sessions += 1
            if new_sessions > MAX_NEW_SESSIONS:
                return (
                    f"{failure.explanation}. Gave up after {MAX_NEW_SESSIONS} new sessions; "
                    "try /join again later."
                )
            cap = min(NEW_SESSION_BACKOFF_CAP, NEW_SESSION_BACKOFF_BASE * 2 ** (new_sessions - 1))
            await trio.sleep(random.uniform(0, cap))
            send_op4 = True

    async def _run_link(
        self, server: VoiceServer, task_status: trio.TaskStatus[None], started: list[bool]
    ) -> VoiceDisconnected | None:
        """Run one link until it fails (returned) or a new server update replaces it (None)."""
        link = VoiceLink(server, ssl_context=self._ssl, max_dave_protocol_version=self._max_dave)
        generation = self._server_generation
        failure: VoiceDisconnected | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(link.run)
                except VoiceDisconnected as exc:
                    return exc
                self._link = link
                self._link_up.set()
                if not started[0]:
                    started[0] = True
                    task_status.started()
                while self._server_generation == generation and not self._removed:
                    await self._wait_change()
                nursery.cancel_scope.cancel()
        except* VoiceDisconnected as group:
            failure = first_exception(group, VoiceDisconnected)
        finally:
            self._link = None
            self._link_up = trio.Event()
        return failure

    async def _watch_alone(self) -> None:
        """Leave once nobody else has been in the channel for ``leave_when_alone`` seconds."""
        while True:
            since = await self._wait_alone(True)
            with trio.move_on_at(since + self._leave_when_alone) as timer:
                await self._wait_alone(False)
            if timer.cancelled_caught:
                self._ended_by_us = "Everyone else left the voice channel, so I left too."
                self._scope.cancel()
                return

    async def _wait_alone(self, alone: bool) -> float:
        """Wait until the bot is (``alone``) or is not alone; returns since when it is alone."""
        while (self.alone_since is not None) != alone:
            await self._wait_change()
        return self.alone_since or 0.0

    async def _wait_server(self) -> VoiceServer | None:
        with trio.move_on_after(VOICE_SERVER_TIMEOUT):
            while not self._removed:
                if self._session_id and self._token and self._endpoint:
                    return VoiceServer(
                        guild_id=self.guild_id,
                        channel_id=self.channel_id,
                        user_id=self._user_id,
                        session_id=self._session_id,
                        token=self._token,
                        endpoint=self._endpoint,
                    )
                await self._wait_change()
        return None

    async def _wait_moved(self, generation: int) -> bool:
        with trio.move_on_after(MOVE_GRACE):
            while not self._removed:
                if self._server_generation != generation and self._endpoint:
                    return True
                await self._wait_change()
        return False

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()
