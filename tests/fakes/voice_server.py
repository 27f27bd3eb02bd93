"""A fake Discord voice server: the voice gateway v8 over TLS and a strict UDP/RTP endpoint.

Theory of operation
-------------------

`FakeVoiceServer.run` listens on ``127.0.0.1``: a websocket (trio ``serve_ssl_over_tcp`` +
trio-websocket) at `FakeVoiceServer.endpoint` (``localhost:PORT``, no scheme, as in
VOICE_SERVER_UPDATE) and a UDP socket whose address goes into op 2 Ready. A test first calls
`FakeVoiceServer.allow` with the credentials its fake main gateway handed out; an Identify
with those creates a `VoiceSession` (random ssrc and ``secret_key``), which outlives its
websocket so that op 7 Resume on a new one finds it (same ssrc and key, messages after
``seq_ack`` replayed).

- Websocket: `tests.fakes.voice_gateway.VoiceConnection` (one per socket; close codes there).
- UDP: `_serve_udp` answers IP discovery (recording the peer) and hands RTP packets to a
  `tests.fakes.voice_udp.Stream` per ssrc, which checks, decrypts and decodes them.
- DAVE (``dave_protocol_version`` 1 negotiated): the fake plays Discord as the MLS external
  sender (`tests.fakes.dave_external.FakeExternalSender`) and one listening member
  (`FakeDaveMember`, user `LISTENER_ID`). After op 4 it sends op 11 (the listener connects) and
  binary op 25 (external sender); the bot's key package (op 26) gets op 27 proposals adding the
  listener; the bot's op 28 commit+welcome gets the welcome delivered to the listener and op 29
  (transition 1 + commit) to the bot; the bot's op 23 gets op 22. From then on the listener
  decrypts the bot's DAVE frames.

Observation: ``connections``, ``sessions``, ``streams`` (by ssrc), ``speaking``, ``errors``
(every client bug seen: a test asserts it stays empty). Every state change wakes
`FakeVoiceServer.wait_until`. Times are `trio.current_time()`, so the fake runs under
`trio.testing.MockClock`; packets also carry `time.perf_counter()` for pacing benchmarks.
Cancelling `run` ends every connection.
"""

from __future__ import annotations

import importlib
import secrets
import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol, final

import msgspec
import trio
from trio_websocket import ConnectionClosed, wrap_server_stream

from tests.fakes.voice_gateway import Received, Sent, VoiceConnection
from tests.fakes.voice_udp import (
    KEEPALIVE_SIZE,
    Stream,
    encode_ip_discovery_response,
    is_ip_discovery_request,
    parse_ip_discovery_request,
)
from trio_companion.voice.crypto import SUPPORTED_MODES, TransportCipher
from trio_companion.voice.errors import MalformedPacket
from trio_companion.voice.protocol import VoiceOpcode
from trio_companion.voice.rtp import is_rtcp, parse_header

__all__ = [
    "LISTENER_ID",
    "Credentials",
    "DaveState",
    "FakeVoiceServer",
    "Received",
    "Sent",
    "Stream",
    "VoiceConnection",
    "VoiceSession",
]

LISTENER_ID: Final = 1_100_000_000_000_000_777  # the fake's listening DAVE member (a user id)
LISTENER_SSRC: Final = 4242  # the listener's audio ssrc in the undocumented op 12
_HANDSHAKE_TIMEOUT: Final = 10.0  # our choice: a client that never finishes the HTTP upgrade
_MAX_DATAGRAM: Final = 2048  # larger than any Opus packet at 20 ms
_SEQ_MOD: Final = 1 << 16  # PROTOCOL.md 6.2: binary frames carry the seq as u16
_U16: Final = struct.Struct(">H")
_Op = VoiceOpcode


# --- the DAVE fakes' interface (tests.fakes.dave_external, imported lazily) ----------------------


class ExternalSender(Protocol):
    def package(self) -> bytes: ...
    def add_proposals(
        self, *, channel_id: int, epoch: int, key_packages: Sequence[bytes]
    ) -> bytes: ...


class DaveMember(Protocol):
    @property
    def ready(self) -> bool: ...
    def key_package(self) -> bytes: ...
    def set_external_sender(self, package: bytes) -> None: ...
    def process_welcome(self, welcome: bytes) -> None: ...
    def process_commit(self, commit: bytes) -> None: ...
    def decrypt(self, sender_user_id: int, frame: bytes) -> bytes: ...


def _dave_external() -> Any:
    """`tests.fakes.dave_external`, imported when a DAVE session starts."""
    return importlib.import_module("tests.fakes.dave_external")


@final
class DaveState:
    """A session's DAVE side: the external sender, the listener, and the transition.

    ``key_packages``: every op 26 payload; ``commits``: every op 28 commit; ``transition_id``:
    the last announced (op 29); ``pending_transition``: waiting for op 23; ``executed``: op 22
    sent; ``epoch``: the epoch the next proposals are for (0 until the bot's first commit)."""

    def __init__(self, *, channel_id: int) -> None:
        module = _dave_external()
        self.external: ExternalSender = module.FakeExternalSender()
        self.listener: DaveMember = module.FakeDaveMember(
            user_id=LISTENER_ID, channel_id=channel_id
        )
        self.listener.set_external_sender(self.external.package())
        self.split_commit_welcome: Callable[[bytes], tuple[bytes, bytes | None]] = (
            module.split_commit_welcome
        )
        self.key_packages: list[bytes] = []
        self.commits: list[bytes] = []
        self.epoch = 0
        self.transition_id = 0
        self.pending_transition: int | None = None
        self.executed = False


@dataclass(frozen=True, slots=True)
class Credentials:
    """What `FakeVoiceServer.allow` registered for one voice session."""

    server_id: int
    user_id: int
    session_id: str
    token: str
    channel_id: int


@final
class VoiceSession:
    """One identified voice session; survives its websocket for Resume.

    ``seq`` is the last seq stamped (0 before any); ``discovered_peer`` the address IP discovery
    saw; ``selected_peer`` the one Select Protocol named; ``dave`` is None unless DAVE was
    negotiated and started; ``invalidated`` makes a Resume get 4006."""

    def __init__(self, credentials: Credentials, *, dave_protocol_version: int) -> None:
        self.credentials: Final = credentials
        self.server_id: Final = credentials.server_id
        self.user_id: Final = credentials.user_id
        self.session_id: Final = credentials.session_id
        self.token: Final = credentials.token
        self.channel_id: Final = credentials.channel_id
        self.ssrc: Final = secrets.randbelow((1 << 32) - 1) + 1
        self.secret_key: Final = secrets.token_bytes(32)
        self.media_session_id: Final = secrets.token_hex(16)
        self.dave_protocol_version: Final = dave_protocol_version
        self.created_at: Final = trio.current_time()
        self.seq = 0
        self.mode: str | None = None
        self.cipher: TransportCipher | None = None
        self.discovered_peer: tuple[str, int] | None = None
        self.selected_peer: tuple[str, int] | None = None
        self.speaking_seen = False
        self.invalidated = False
        self.connection: VoiceConnection | None = None
        self.dave: DaveState | None = None
        self._buffer: list[tuple[int, int, Any, str | bytes]] = []

    def __repr__(self) -> str:
        return f"VoiceSession({self.session_id!r}, ssrc={self.ssrc})"

    def select_mode(self, mode: str) -> None:
        self.mode = mode
        self.cipher = TransportCipher(mode, self.secret_key)

    @property
    def dave_executed(self) -> bool:
        return self.dave is not None and self.dave.executed

    def dave_decrypt(self, frame: bytes) -> bytes:
        if self.dave is None:
            raise RuntimeError("a DAVE frame, but DAVE was not negotiated on this session")
        if not self.dave.listener.ready:
            raise RuntimeError("a DAVE frame before the listener joined the group")
        return self.dave.listener.decrypt(self.user_id, frame)

    def stamp_json(self, op: int, d: Any) -> tuple[int, str]:
        """The next seq and the JSON message carrying it; kept for replay."""
        self.seq += 1
        message = _json({"op": op, "d": d, "seq": self.seq})
        self._buffer.append((self.seq, op, d, message))
        return self.seq, message

    def stamp_binary(self, op: int, payload: bytes) -> tuple[int, bytes]:
        """The next seq and ``[seq u16][op u8][payload]``; kept for replay."""
        self.seq += 1
        message = _U16.pack(self.seq % _SEQ_MOD) + bytes([op]) + payload
        self._buffer.append((self.seq, op, payload, message))
        return self.seq, message

    def replay_after(self, seq_ack: int) -> list[tuple[int, int, Any, str | bytes]]:
        """``(seq, op, d, message)`` of every stamped message after ``seq_ack``."""
        return [entry for entry in self._buffer if entry[0] > seq_ack]


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


@final
class FakeVoiceServer:
    """The fake; ``await nursery.start(server.run)``, then give the bot `endpoint`.

    Knobs (plain attributes, read when used): ``modes`` (offered in Ready),
    ``dave_protocol_version`` (the most the server speaks; the session gets the smaller of this
    and the client's ``max_dave_protocol_version``), ``heartbeat_interval_ms`` (Hello),
    ``dave_required`` (`require_dave`), ``ack_heartbeats`` (False: a zombie connection),
    ``send_undocumented_ops`` (ops 12, 15, 18, 20, which the
    client must ignore; default on).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        modes: Sequence[str] = SUPPORTED_MODES,
        dave_protocol_version: int = 1,
        heartbeat_interval_ms: float = 13_750,
    ) -> None:
        self.ssl_context: Final = ssl_context
        self.modes: tuple[str, ...] = tuple(modes)
        self.dave_protocol_version = dave_protocol_version
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.dave_required = True
        self.send_undocumented_ops = True
        self.ack_heartbeats = True  # False plays a zombie connection (PROTOCOL.md 5.2)
        self.udp_host: Final = "127.0.0.1"
        self.port: int | None = None
        self.udp_port: int | None = None
        self.connections: list[VoiceConnection] = []
        self.sessions: dict[str, VoiceSession] = {}
        self.streams: dict[int, Stream] = {}
        self.speaking: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.discoveries: list[tuple[float, int, tuple[str, int]]] = []  # (time, ssrc, sender)
        self.keepalives = 0
        self.rtcp_packets = 0
        self._allowed: dict[str, Credentials] = {}
        self._sessions_by_ssrc: dict[int, VoiceSession] = {}
        self._close_after_hello: list[int] = []
        self._changed = trio.Event()

    # --- setup and scripting -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``localhost:PORT``: what VOICE_SERVER_UPDATE's ``endpoint`` should say."""
        if self.port is None:
            raise RuntimeError("the fake voice server is not running yet")
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        """The URL a correct client opens: ``wss://localhost:PORT/?v=8``."""
        return f"wss://{self.endpoint}/?v=8"

    def allow(
        self, *, server_id: int, user_id: int, session_id: str, token: str, channel_id: int = 0
    ) -> None:
        """Accept Identify with exactly these values (snowflakes may arrive as strings).

        An Identify naming another ``session_id`` is closed with 4006, one with the right
        session but another token, server or user with 4004. ``channel_id`` is the voice
        channel: the DAVE group id. Allowing a session id again replaces its credentials."""
        self._allowed[session_id] = Credentials(server_id, user_id, session_id, token, channel_id)

    def require_dave(self, required: bool = True) -> None:
        """Whether an Identify without ``max_dave_protocol_version`` >= 1 is closed with 4017
        (the default, as Discord does since 2026-03-02)."""
        self.dave_required = required

    def close_after_hello(self, code: int, times: int = 1) -> None:
        """Close each of the next ``times`` new connections with ``code`` right after Hello."""
        self._close_after_hello.extend([code] * times)

    async def close_current(self, code: int) -> None:
        """Close the newest live websocket with ``code`` (4015 keeps its session resumable,
        every other code invalidates it). Raises RuntimeError when none is live."""
        connection = self.current_connection
        if connection is None:
            raise RuntimeError("no live voice connection to close")
        await connection.close(code)

    @property
    def current_connection(self) -> VoiceConnection | None:
        """The newest connection that is neither closing nor ended."""
        return next((c for c in reversed(self.connections) if c.live), None)

    # --- observation ---------------------------------------------------------------------------

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds; re-checked after every state change."""
        while not condition():
            await self._changed.wait()

    @property
    def session(self) -> VoiceSession | None:
        """The newest session."""
        return next(reversed(self.sessions.values()), None)

    def stream(self, ssrc: int | None = None) -> Stream:
        """The stream of ``ssrc`` (default: the newest session's). KeyError if none yet."""
        if ssrc is None:
            session = self.session
            if session is None:
                raise KeyError("no voice session yet")
            ssrc = session.ssrc
        return self.streams[ssrc]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _report(self, message: str) -> None:
        self.errors.append(message)

    # --- serving -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started()`` once the websocket and UDP are up."""
        udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with udp:
            await udp.bind((self.udp_host, 0))
            self.udp_port = udp.getsockname()[1]
            async with trio.open_nursery() as nursery:
                listeners: list[trio.SSLListener[trio.SocketStream]] = await nursery.start(
                    partial(
                        trio.serve_ssl_over_tcp,
                        self._handle_stream,
                        0,
                        self.ssl_context,
                        host=self.udp_host,
                        https_compatible=True,
                    )
                )
                transport = listeners[0].transport_listener
                assert isinstance(transport, trio.SocketListener)
                self.port = transport.socket.getsockname()[1]
                nursery.start_soon(self._serve_udp, udp)
                task_status.started()

    async def _handle_stream(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        connection: VoiceConnection | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    with trio.move_on_after(_HANDSHAKE_TIMEOUT):
                        request = await wrap_server_stream(nursery, stream)
                        ws = await request.accept()
                        connection = VoiceConnection(
                            self, len(self.connections), request.path, stream, ws
                        )
                        self.connections.append(connection)
                        self._notify()
                    if connection is not None:
                        await connection.serve()
                except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client went away mid-handshake: only this connection ends
                finally:
                    nursery.cancel_scope.cancel()  # the websocket reader task
        finally:
            if connection is not None:
                connection.ended.set()
                self._notify()
            await trio.aclose_forcefully(stream)

    def _new_session(self, credentials: Credentials, max_dave: int) -> VoiceSession:
        version = min(self.dave_protocol_version, max(max_dave, 0))
        old = self.sessions.pop(credentials.session_id, None)
        if old is not None:
            old.invalidated = True
        session = VoiceSession(credentials, dave_protocol_version=version)
        self.sessions[session.session_id] = session
        self._sessions_by_ssrc[session.ssrc] = session
        return session

    async def _serve_udp(self, udp: trio.socket.SocketType) -> None:
        while True:
            datagram, sender = await udp.recvfrom(_MAX_DATAGRAM)
            address: tuple[str, int] = (sender[0], sender[1])
            reply = self._on_datagram(datagram, address)
            if reply is not None:
                await udp.sendto(reply, address)
            self._notify()

    def _on_datagram(self, datagram: bytes, sender: tuple[str, int]) -> bytes | None:
        if is_ip_discovery_request(datagram):
            length, ssrc = parse_ip_discovery_request(datagram)
            self.discoveries.append((trio.current_time(), ssrc, sender))
            session = self._sessions_by_ssrc.get(ssrc)
            if length != 70:
                self.errors.append(f"IP discovery request with length {length}, expected 70")
            if session is None:
                self.errors.append(f"IP discovery for unknown ssrc {ssrc}")
                return None
            session.discovered_peer = sender
            return encode_ip_discovery_response(ssrc, sender[0], sender[1])
        if is_rtcp(datagram):
            self.rtcp_packets += 1
            return None
        if len(datagram) == KEEPALIVE_SIZE:
            self.keepalives += 1
            return None
        try:
            ssrc = parse_header(datagram).ssrc
        except MalformedPacket as error:
            self.errors.append(f"UDP datagram of {len(datagram)} bytes: {error.reason}")
            return None
        stream = self.streams.get(ssrc)
        if stream is None:
            session = self._sessions_by_ssrc.get(ssrc)
            if session is None:
                self.errors.append(f"RTP packet for unknown ssrc {ssrc}")
                return None
            stream = self.streams[ssrc] = Stream(ssrc, session, self._report)
        stream.receive(datagram, sender)
        return None

    # --- after op 4, and DAVE ------------------------------------------------------------------

    async def _after_session_description(
        self, connection: VoiceConnection, session: VoiceSession
    ) -> None:
        """op 11 (the listener is in the call), the undocumented ops, and DAVE's op 25."""
        listener = str(LISTENER_ID)
        await connection.send_json(_Op.CLIENTS_CONNECT, {"user_ids": [listener]})
        if self.send_undocumented_ops:
            await connection.send_json(18, {"user_id": listener, "flags": 2})  # client flags
            await connection.send_json(20, {"user_id": listener, "platform": 0})  # platform
            stream = {"type": "video", "ssrc": 0, "active": False, "quality": 100}
            await connection.send_json(
                12,  # video sink: another member's ssrcs
                {
                    "user_id": listener,
                    "audio_ssrc": LISTENER_SSRC,
                    "video_ssrc": 0,
                    "rtx_ssrc": 0,
                    "streams": [stream],
                },
            )
        if session.dave_protocol_version > 0 and session.dave is None:
            session.dave = DaveState(channel_id=session.channel_id)
            await connection.send_binary(
                _Op.DAVE_MLS_EXTERNAL_SENDER, session.dave.external.package()
            )

    async def _dave_on_key_package(
        self, connection: VoiceConnection, session: VoiceSession, payload: bytes
    ) -> None:
        dave = session.dave
        assert dave is not None
        dave.key_packages.append(payload)
        try:
            proposals = dave.external.add_proposals(
                channel_id=session.channel_id,
                epoch=dave.epoch,
                key_packages=[dave.listener.key_package()],
            )
        except Exception as error:  # the key package is the client's: report, don't crash
            connection._error(f"op 26 key package refused by the external sender: {error!r}")
            return
        await connection.send_binary(_Op.DAVE_MLS_PROPOSALS, proposals)

    async def _dave_on_commit_welcome(
        self, connection: VoiceConnection, session: VoiceSession, payload: bytes
    ) -> None:
        dave = session.dave
        assert dave is not None
        try:
            commit, welcome = dave.split_commit_welcome(payload)
        except Exception as error:
            connection._error(f"op 28 does not split into commit + welcome: {error!r}")
            return
        if welcome is None:
            connection._error("op 28 without a Welcome, but the proposals added the listener")
            return
        try:
            dave.listener.process_welcome(welcome)
        except Exception as error:
            connection._error(f"the listener cannot process op 28's Welcome: {error!r}")
            return
        dave.commits.append(commit)
        dave.epoch += 1
        dave.transition_id += 1
        dave.pending_transition = dave.transition_id
        await connection.send_binary(
            _Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, _U16.pack(dave.transition_id) + commit
        )
