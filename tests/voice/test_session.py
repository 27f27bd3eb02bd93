"""`VoiceSession` and `VoiceLink` timing against the fake voice server.

The main gateway is played by `FakeMainGateway`: it answers op 4 the way Discord does, by
dispatching the bot's VOICE_STATE_UPDATE and a VOICE_SERVER_UPDATE (or not at all, as for a full
channel), straight into the session. Everything below that is real: TLS websocket, UDP, AEAD,
DAVE. The join deadline runs on MockClock (no voice server is reached); the others talk to the
fake over loopback sockets, which MockClock's autojump would take for idleness, so they run on
the real clock with a short heartbeat interval.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
import trio
import trio.testing

from tests.fakes.voice_server import FakeVoiceServer
from trio_companion.gateway.tls import make_ssl_context
from trio_companion.voice.errors import VoiceJoinFailed
from trio_companion.voice.gateway import MISSED_ACKS
from trio_companion.voice.session import VOICE_SERVER_TIMEOUT, VoiceSession

GUILD: Final = 1_500_000_000_000_000_001
CHANNEL: Final = 1_500_000_000_000_000_002
BOT: Final = 1_500_000_000_000_000_003


class FakeMainGateway:
    """Discord's side of op 4 for one guild; ``respond`` False plays a full channel."""

    def __init__(self, voice: FakeVoiceServer, *, respond: bool = True) -> None:
        self.voice = voice
        self.respond = respond
        self.null_endpoint_first = False
        self.requests: list[int | None] = []
        self.session: VoiceSession | None = None
        self._ids = itertools.count(1)

    async def update_voice_state(self, guild_id: int, channel_id: int | None) -> None:
        self.requests.append(channel_id)
        session = self.session
        if not self.respond or session is None:
            return
        number = next(self._ids)
        session_id, token = f"session-{number}", f"token-{number}"
        session.on_voice_state(channel_id, session_id)
        if channel_id is None:
            return
        self.voice.allow(
            server_id=guild_id,
            user_id=BOT,
            session_id=session_id,
            token=token,
            channel_id=channel_id,
        )
        if self.null_endpoint_first:
            # The voice server is being reallocated: wait for the next update.
            session.on_voice_server(token, None)
            await trio.sleep(0.05)
        session.on_voice_server(token, self.voice.endpoint)

    async def move(self, channel_id: int) -> None:
        """A moderator drags the bot: its state names the new channel, then a new server update
        with a new token (PROTOCOL.md 5.1 step 2)."""
        session = self.session
        assert session is not None
        number = next(self._ids)
        session_id, token = f"session-{number}", f"token-{number}"
        session.on_voice_state(channel_id, session_id)
        self.voice.allow(
            server_id=GUILD, user_id=BOT, session_id=session_id, token=token, channel_id=channel_id
        )
        session.on_voice_server(token, self.voice.endpoint)


@pytest.fixture
async def voice(
    server_ssl_context: ssl.SSLContext, trust_fake_ca: Path
) -> AsyncIterator[FakeVoiceServer]:
    async with trio.open_nursery() as nursery:
        server = FakeVoiceServer(ssl_context=server_ssl_context)
        await nursery.start(server.run)
        yield server
        nursery.cancel_scope.cancel()


def _session(gateway: FakeMainGateway, *, leave_when_alone: float = 0.0) -> VoiceSession:
    session = VoiceSession(
        guild_id=GUILD,
        channel_id=CHANNEL,
        user_id=BOT,
        gateway=gateway,
        ssl_context=make_ssl_context(),
        queue_limit=2,
        leave_when_alone=leave_when_alone,
    )
    gateway.session = session
    return session


async def test_join_fails_after_the_deadline_when_discord_never_answers(
    voice: FakeVoiceServer, autojump_clock: trio.testing.MockClock
) -> None:
    gateway = FakeMainGateway(voice, respond=False)
    session = _session(gateway)
    with trio.fail_after(60):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            with pytest.raises(VoiceJoinFailed, match="within 10 s"):
                await nursery.start(session.run)
        assert trio.current_time() - start == pytest.approx(VOICE_SERVER_TIMEOUT, abs=0.1)
    # It asked to join, then said it left: no half-joined state at Discord.
    assert gateway.requests == [CHANNEL, None]
    assert voice.connections == []


async def test_a_null_endpoint_waits_for_the_next_server_update(voice: FakeVoiceServer) -> None:
    gateway = FakeMainGateway(voice)
    gateway.null_endpoint_first = True
    session = _session(gateway)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            assert session.link is not None
            assert len(voice.connections) == 1
            session.leave()
    assert gateway.requests == [CHANNEL, None]
    assert session.ended is None


async def test_a_zombie_voice_websocket_is_resumed(voice: FakeVoiceServer) -> None:
    voice.heartbeat_interval_ms = 200
    gateway = FakeMainGateway(voice)
    session = _session(gateway)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            await voice.wait_until(
                lambda: voice.session is not None and voice.session.dave_executed
            )
            voice.ack_heartbeats = False
            went_quiet = trio.current_time()
            await voice.wait_until(lambda: any(c.kind == "resume" for c in voice.connections))
            # Two intervals without an ACK, then a jittered resume.
            interval = voice.heartbeat_interval_ms / 1000
            assert trio.current_time() - went_quiet >= MISSED_ACKS * interval - interval
            assert voice.connections[0].client_close_code == 4000
            assert len(voice.sessions) == 1  # the same voice session, resumed
            voice.ack_heartbeats = True
            session.leave()
    assert voice.errors == []
    assert gateway.requests == [CHANNEL, None]


async def test_a_4014_followed_by_a_move_relinks_in_the_new_channel(
    voice: FakeVoiceServer,
) -> None:
    gateway = FakeMainGateway(voice)
    session = _session(gateway)
    other = CHANNEL + 10
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            await voice.close_current(4014)
            await gateway.move(other)
            await voice.wait_until(
                lambda: any(
                    s.channel_id == other and s.dave_executed for s in voice.sessions.values()
                )
            )
            assert session.channel_id == other
            assert session.link is not None
            assert session.link.server.channel_id == other
            session.leave()
    # No op 4 of our own for the move: Discord moved us; then the leave.
    assert gateway.requests == [CHANNEL, None]
    assert session.ended is None
    assert voice.errors == []


async def test_alone_timer_restarts_when_somebody_comes_back(
    voice: FakeVoiceServer, autojump_clock: trio.testing.MockClock
) -> None:
    # Discord never answers, so the session waits VOICE_SERVER_TIMEOUT (10 s) for it: the alone
    # timer (5 s) can be observed on MockClock without any socket.
    gateway = FakeMainGateway(voice, respond=False)
    session = _session(gateway, leave_when_alone=5.0)
    start = trio.current_time()
    failures: list[VoiceJoinFailed] = []

    async def run() -> None:
        try:
            await session.run()
        except VoiceJoinFailed as exc:
            failures.append(exc)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            session.set_alone(True)
            await trio.sleep(2)
            session.set_alone(False)  # somebody came back: the 5 s start again later
            await trio.sleep(1)
            session.set_alone(True)
    (failure,) = failures
    assert failure.reason == "Everyone else left the voice channel, so I left too."
    assert trio.current_time() - start == pytest.approx(3 + 5, abs=0.01)
    assert gateway.requests == [CHANNEL, None]
