"""A fake Discord gateway (v10): real WebSocket over TLS on loopback, strict where Discord is.

Theory of operation. `FakeGateway.run` listens on ``127.0.0.1`` (random port) with trio's
``serve_ssl_over_tcp``; each TCP connection gets one child nursery holding trio-websocket's reader
task and the connection's handler task, which reads the client's frames in order and answers them.
Tests act on a `FakeConnection` from their own task (`FakeConnection.dispatch`, `send_op`,
`close`, `drop`). Every server→client write goes through the connection's `trio.StrictFIFOLock`,
so seqs and the compression stream stay in send order. Sessions (`gateway_session.FakeSession`)
belong to the gateway, not to a connection, so a Resume on a new connection finds them.

What is checked, as Discord does (PROTOCOL.md 1.x): ``v=10&encoding=json`` (4012/4002), frames of
at most 4096 bytes (4002), JSON (4002), known client opcodes (4001), nothing but heartbeats before
Identify/Resume (4003), a second Identify (4005), token (4004), intents (4013/4014), shard (4010),
``max_concurrency`` identifies per 5 s (op 9 false), 120 frames per 60 s per connection (4008),
Resume (op 9 false for an unknown or invalidated session or a wrong token; 4007 for a seq the
session never reached). A client close with 1000/1001 invalidates its session. Things Discord
would not close for land in `FakeGateway.errors` (heartbeat ``d`` not the last seq, a Resume sent
to the Identify URL, binary frames), so a test can assert the list stays empty.

Waiting: every state change sets one gateway-wide `trio.Event` (then replaced), and the ``wait_*``
methods re-check their condition after each. Times come from `trio.current_time()`, so the fake
runs under `trio.testing.MockClock`. Cancelling `run` ends every connection and task.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final, final
from urllib.parse import urlsplit

import pytest
import trio
from trio_websocket import ConnectionClosed, wrap_server_stream

from tests.fakes.discord_rest import FAKE_TOKEN
from tests.fakes.gateway_connection import RESUME_PATH, FakeConnection
from tests.fakes.gateway_session import KNOWN_INTENTS, FakeSession, ready_payload
from trio_companion.gateway.protocol import PRIVILEGED_INTENTS, SEND_LIMIT, SEND_WINDOW

__all__ = [
    "DEFAULT_SNOWFLAKE",
    "RESUME_PATH",
    "FakeConnection",
    "FakeGateway",
    "fake_gateway",
    "open_fake_gateway",
]

DEFAULT_SNOWFLAKE: Final = 1_100_000_000_000_000_001  # the same ids as tests.fakes.discord_rest
_HANDSHAKE_TIMEOUT: Final = 10.0  # our choice: a client that never finishes the HTTP upgrade


@final
class FakeGateway:
    """The fake; ``url = await nursery.start(gateway.run, server_ssl_context)``.

    Knobs (plain attributes, read when used, so a test may change them between connections):
    ``token``, ``heartbeat_interval_ms`` (sent in Hello), ``ack_heartbeats``,
    ``send_reconnect_before_hello`` (op 7 before Hello on new connections),
    ``max_concurrency``, ``allowed_privileged`` (privileged intent bits the app may use),
    ``known_intents``, ``guilds`` (GUILD_CREATE bodies sent after READY; READY lists them as
    unavailable stubs), ``send_limit``/``send_window``, ``close_timeout``,
    ``split_compressed_frames`` (each compressed message goes out as two binary frames).

    Records: ``connections``, ``sessions``, ``identifies``/``resumes`` (trio times of every one
    received), ``errors``.
    """

    def __init__(
        self,
        *,
        token: str,
        heartbeat_interval_ms: int = 41_250,
        application_id: int = DEFAULT_SNOWFLAKE,
        bot_user_id: int = DEFAULT_SNOWFLAKE,
        bot_username: str = "companion",
        application_flags: int = 0,
        session_prefix: str = "sess",
        guilds: Sequence[dict[str, Any]] = (),
        max_concurrency: int = 1,
        allowed_privileged: int = int(PRIVILEGED_INTENTS),
    ) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.bot_username = bot_username
        self.application_flags = application_flags
        self.session_prefix = session_prefix
        self.guilds: list[dict[str, Any]] = list(guilds)
        self.max_concurrency = max_concurrency
        self.allowed_privileged = allowed_privileged
        self.known_intents = KNOWN_INTENTS
        self.ack_heartbeats = True
        self.send_reconnect_before_hello = False
        self.send_limit = SEND_LIMIT
        self.send_window = SEND_WINDOW
        self.close_timeout = 5.0  # our choice: how long `close` waits for the client's answer
        self.split_compressed_frames = False
        self.port: int | None = None
        self.connections: list[FakeConnection] = []
        self.sessions: dict[str, FakeSession] = {}
        self.identifies: list[float] = []
        self.resumes: list[float] = []
        self.errors: list[str] = []
        # Called with ``d`` of every op 4 Voice State Update on an established connection (the
        # voice fake answers with VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE, as Discord does).
        self.on_voice_state_update: Callable[[Any], Awaitable[None]] | None = None
        self._accepted_identifies: list[float] = []
        self._session_connections: dict[str, FakeConnection] = {}
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        """What ``GET /gateway/bot`` should return."""
        if self.port is None:
            raise RuntimeError("the fake gateway is not running yet")
        return f"wss://127.0.0.1:{self.port}/"

    @property
    def resume_url(self) -> str:
        """READY's ``resume_gateway_url``."""
        return self.url.rstrip("/") + RESUME_PATH

    async def run(
        self,
        ssl_context: ssl.SSLContext,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled; ``task_status.started(url)`` once listening."""
        async with trio.open_nursery() as nursery:
            listeners: list[trio.SSLListener[trio.SocketStream]] = await nursery.start(
                partial(
                    trio.serve_ssl_over_tcp,
                    self._handle_stream,
                    0,
                    ssl_context,
                    host="127.0.0.1",
                    https_compatible=True,
                )
            )
            transport = listeners[0].transport_listener
            assert isinstance(transport, trio.SocketListener)
            self.port = transport.socket.getsockname()[1]
            task_status.started(self.url)

    async def wait_connection(self, index: int) -> FakeConnection:
        """Wait until the ``index``-th connection (0-based) has been accepted."""
        await self.wait_until(lambda: len(self.connections) > index)
        return self.connections[index]

    async def wait_live_connection(self) -> FakeConnection:
        """Wait for a connection with an established session; the newest such one."""
        await self.wait_until(lambda: any(c.live for c in self.connections))
        return next(c for c in reversed(self.connections) if c.live)

    async def dispatch(self, name: str, data: Any, *, session_id: str | None = None) -> int:
        """Dispatch to a session (the newest by default): sent on its live connection, or kept
        for replay when it has none. Returns the seq; raises LookupError without a session."""
        if session_id is None:
            if not self.sessions:
                raise LookupError("no session yet")
            session_id = next(reversed(self.sessions))
        session = self.sessions[session_id]
        connection = self._session_connections.get(session_id)
        if connection is not None and connection.live:
            return await connection.dispatch(name, data)
        return session.add_event(name, data)

    def invalidate_session(self, session_id: str | None = None) -> None:
        """Make a later Resume of the session (the newest by default) get op 9 false."""
        self.sessions[session_id or next(reversed(self.sessions))].invalidated = True

    # --- internals -----------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    def _new_session(self, intents: int, shard: tuple[int, int] | None) -> FakeSession:
        session_id = f"{self.session_prefix}-{len(self.sessions) + 1}"
        session = FakeSession(session_id, trio.current_time(), intents, shard)
        self.sessions[session_id] = session
        return session

    def _ready(self, session: FakeSession) -> dict[str, Any]:
        return ready_payload(
            session,
            user={"id": str(self.bot_user_id), "username": self.bot_username, "bot": True},
            application={"id": str(self.application_id), "flags": self.application_flags},
            guild_ids=[str(g["id"]) for g in self.guilds],
            resume_url=self.resume_url,
        )

    async def _handle_stream(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        connection: FakeConnection | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    connection = await self._accept(nursery, stream)
                    if connection is not None:
                        await connection._serve()
                except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client went away mid-handshake: only this connection ends
                finally:
                    nursery.cancel_scope.cancel()  # the websocket reader task
        finally:
            # Set before the await, which raises Cancelled when `run` is being cancelled; the
            # socket itself closes synchronously inside aclose_forcefully either way.
            if connection is not None:
                connection.ended.set()
                self._notify()
            await trio.aclose_forcefully(stream)

    async def _accept(
        self, nursery: trio.Nursery, stream: trio.SSLStream[trio.SocketStream]
    ) -> FakeConnection | None:
        with trio.move_on_after(_HANDSHAKE_TIMEOUT):
            request = await wrap_server_stream(nursery, stream)
            path = urlsplit(request.path).path
            if path != "/" and path.rstrip("/") != RESUME_PATH.rstrip("/"):
                self.errors.append(f"websocket request for unknown path {request.path!r}")
                await request.reject(404)
                return None
            ws = await request.accept()
            connection = FakeConnection(self, len(self.connections), request.path, stream, ws)
            self.connections.append(connection)
            self._notify()
            return connection
        return None  # handshake timed out


@asynccontextmanager
async def open_fake_gateway(
    ssl_context: ssl.SSLContext, *, token: str, **knobs: Any
) -> AsyncIterator[FakeGateway]:
    """A running `FakeGateway` for the body of the ``async with``; stopped on exit."""
    gateway = FakeGateway(token=token, **knobs)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run, ssl_context)
        yield gateway
        nursery.cancel_scope.cancel()


@pytest.fixture
async def fake_gateway(nursery: trio.Nursery, server_ssl_context: ssl.SSLContext) -> FakeGateway:
    """A running `FakeGateway` with the REST fake's token, for the test's lifetime. Register
    this module in ``pytest_plugins`` to use it; point ``FakeDiscordRest.gateway_url`` at
    ``fake_gateway.url`` for whole-app tests."""
    gateway = FakeGateway(token=FAKE_TOKEN)
    await nursery.start(gateway.run, server_ssl_context)
    return gateway
