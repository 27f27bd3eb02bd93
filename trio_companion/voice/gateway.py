"""One voice-server session: the voice websocket (v8) and its UDP socket (PROTOCOL.md 5, 6.2).

Theory of operation
-------------------

A `VoiceLink` is built from one `VoiceServer` (the session id of our VOICE_STATE_UPDATE and the
token/endpoint of a VOICE_SERVER_UPDATE) and lives inside `run`:

1. **Handshake.** Open ``wss://{endpoint}/?v=8`` (port kept, P8) → op 8 Hello → op 0 Identify
   with ``max_dave_protocol_version`` → op 2 Ready → UDP IP discovery (74-byte packets, a few
   attempts) → op 1 Select Protocol (`crypto.choose_mode`) → op 4 Session Description (key, mode,
   DAVE version) → op 5 Speaking 0 to register our SSRC, as discord.py does. Only then does
   ``task_status.started()`` run: a started link can play.
2. **Serving.** One reader task handles every server message (ops 5, 6, 11, 13 and the DAVE ops
   21-31, JSON or binary, through `dave.DaveState`; unknown ops are ignored), one heartbeat task
   per websocket sends op 3 with ``seq_ack`` (the last ``seq`` of either kind of frame). Two
   intervals without an ACK make the websocket a zombie: we close it with 4000 and resume.
3. **Closes.** `protocol.close_info` decides. RESUME (4015, < 4000, no code, zombie): a new
   websocket to the same endpoint with op 7 Resume and the same ``seq_ack``; the UDP socket,
   SSRC, key, RTP counters and DAVE group are kept, so a playback in progress goes on. After
   `MAX_RESUMES` failed resumes in a row, or for NEW_SESSION / STOP, `run` raises
   `VoiceDisconnected` and the voice session decides (a fresh op 4 flow, or leave and tell).
4. **Sending.** All websocket writes go through one `trio.StrictFIFOLock`. Audio goes through a
   `pacing.PacedSender` on the UDP socket, with `dave.DaveState.encrypt` as its frame transform
   (DAVE first, transport encryption second, PROTOCOL.md 6.3 step 8).
5. **Ending.** Cancelling `run` (a /leave, a move to a new voice server, shutdown) closes the
   websocket with 1000 in a shielded, bounded scope, cancels any playback (its `play` raises
   `VoiceLinkLost`) and closes the UDP socket.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Final, final

import davey
import msgspec
import trio
import trio_websocket

from trio_companion.errors import first_exception
from trio_companion.gateway.websocket import open_tls_websocket
from trio_companion.voice.crypto import TransportCipher, choose_mode
from trio_companion.voice.dave import DaveState, parse_binary_frame
from trio_companion.voice.errors import (
    MalformedPacket,
    VoiceDisconnected,
    VoiceError,
    VoiceLinkLost,
)
from trio_companion.voice.pacing import PacedSender, PacedSenderStatistics, PlaybackReport
from trio_companion.voice.protocol import (
    CloseInfo,
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
from trio_companion.voice.rtp import RtpSender

__all__ = [
    "CLOSE_SEND_WAIT",
    "CLOSE_TIMEOUT",
    "CONNECT_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "MAX_RESUMES",
    "VoiceLink",
    "VoiceLinkStatistics",
    "VoiceServer",
]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 10.0  # Our choice: TCP + TLS + websocket upgrade to a voice server.
HANDSHAKE_TIMEOUT: Final = 10.0  # Our choice: Hello → Session Description (or Resumed).
CLOSE_TIMEOUT: Final = 2.0  # Our choice: how long a zombie close may take.
# As the main gateway's shard (SHUTDOWN_CLOSE_WAIT): time for our 1000 frame to be written when
# we leave or relink; its answer cannot be read (the reader is cancelled), so do not wait for it.
CLOSE_SEND_WAIT: Final = 0.25
DISCOVERY_ATTEMPTS: Final = 3  # Our choice: UDP is lossy; three tries before giving up.
DISCOVERY_TIMEOUT: Final = 2.0  # Our choice: per IP discovery attempt.
MISSED_ACKS: Final = 2  # PROTOCOL.md 5.2: about two intervals without an ACK is a zombie.
MAX_RESUMES: Final = 5  # Our choice: consecutive failed resumes before a fresh session.
RESUME_BACKOFF_BASE: Final = 0.5  # Our choice: first resume waits up to 0.5 s (full jitter) ...
RESUME_BACKOFF_CAP: Final = 8.0  # ... doubling up to 8 s.
ZOMBIE_CLOSE_CODE: Final = 4000  # PROTOCOL.md P4: a 4xxx close keeps the session resumable.
_MAX_MESSAGE_SIZE: Final = 1 << 20  # Voice messages are small; DAVE welcomes are a few kB.

_decoder: Final = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class VoiceServer:
    """Everything needed to open one voice connection. Never cached across joins: a move gives
    a new token even with the same endpoint (PROTOCOL.md 5.1 step 2)."""

    guild_id: int
    channel_id: int
    user_id: int
    session_id: str
    token: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class VoiceLinkStatistics:
    """For ``/status`` and the benchmarks."""

    connected: bool
    mode: str | None
    dave_protocol_version: int
    resumes: int
    heartbeat_latency: float | None
    sender: PacedSenderStatistics | None


class _Zombie(Exception):
    """The heartbeat task found no ACK for `MISSED_ACKS` intervals."""


@dataclass(slots=True)
class _Socket:
    """One websocket generation: its own heartbeat state, never shared (PROTOCOL.md P1)."""

    ws: trio_websocket.WebSocketConnection
    acked: trio.Event
    zombie: bool = False
    resumed: bool = False


@final
class VoiceLink:
    """The voice websocket and UDP socket of one `VoiceServer`; see the module docstring."""

    def __init__(
        self,
        server: VoiceServer,
        *,
        ssl_context: ssl.SSLContext | None,
        max_dave_protocol_version: int = davey.DAVE_PROTOCOL_VERSION,
    ) -> None:
        self.server = server
        self._ssl = ssl_context
        self._max_dave = max_dave_protocol_version
        self._send_lock = trio.StrictFIFOLock()
        self._current: _Socket | None = None
        self._udp: trio.socket.SocketType | None = None
        self._seq_ack = -1
        self._ssrc = 0
        self._mode: str | None = None
        self._sender: PacedSender | None = None
        self._dave = DaveState(user_id=server.user_id, channel_id=server.channel_id)
        self._resumes = 0
        self._latency: float | None = None
        self._plays: set[trio.CancelScope] = set()
        self._closed = False

    # --- public -------------------------------------------------------------------------------

    @property
    def dave(self) -> DaveState:
        return self._dave

    def statistics(self) -> VoiceLinkStatistics:
        return VoiceLinkStatistics(
            connected=self._current is not None and self._sender is not None,
            mode=self._mode,
            dave_protocol_version=self._dave.protocol_version,
            resumes=self._resumes,
            heartbeat_latency=self._latency,
            sender=self._sender.statistics() if self._sender else None,
        )

    async def play(self, frames: trio.MemoryReceiveChannel[bytes]) -> PlaybackReport:
        """Send ``frames`` (20 ms Opus frames) on the 20 ms grid until the channel closes.

        Raises `VoiceLinkLost` if the link ends meanwhile (or has ended), and `RuntimeError`
        if called before `run` started or while another playback runs."""
        if self._sender is None:
            raise RuntimeError("VoiceLink.play before the link started")
        if self._closed:
            frames.close()
            raise VoiceLinkLost
        with trio.CancelScope() as scope:
            self._plays.add(scope)
            try:
                return await self._sender.play(frames)
            finally:
                self._plays.discard(scope)
        raise VoiceLinkLost

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, then serve until cancelled; see the module docstring.

        ``task_status.started()`` after the Session Description. Raises `VoiceDisconnected`
        when the connection ended for good (before or after starting), never returns
        normally."""
        udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp = udp
        try:
            with udp:
                await self._serve_generations(task_status)
        finally:
            self._closed = True
            for scope in self._plays:
                scope.cancel()

    # --- generations ------------------------------------------------------------------------

    async def _serve_generations(self, task_status: trio.TaskStatus[None]) -> None:
        failed_resumes = 0
        while True:
            code, zombie, resumed = await self._one_websocket(task_status)
            started = self._sender is not None  # a Session Description arrived at some point
            if resumed:
                failed_resumes = 0
            info = CloseInfo(VoiceCloseAction.RESUME, "the voice heartbeat stopped; resuming")
            if not zombie:
                info = close_info(code)
            log.info("voice %s: closed (%s): %s", self.server.guild_id, code, info.explanation)
            if info.action is VoiceCloseAction.RESUME:
                if not started:
                    # Nothing to resume before the first Session Description.
                    raise VoiceDisconnected(code, VoiceCloseAction.NEW_SESSION, info.explanation)
                if failed_resumes >= MAX_RESUMES:
                    raise VoiceDisconnected(
                        code,
                        VoiceCloseAction.NEW_SESSION,
                        f"{info.explanation}; {MAX_RESUMES} resumes failed, rejoining",
                    )
                failed_resumes += 1
                self._resumes += 1
                cap = min(RESUME_BACKOFF_CAP, RESUME_BACKOFF_BASE * 2 ** (failed_resumes - 1))
                await trio.sleep(random.uniform(0, cap))
                continue
            raise VoiceDisconnected(code, info.action, info.explanation)

    async def _one_websocket(
        self, task_status: trio.TaskStatus[None]
    ) -> tuple[int | None, bool, bool]:
        """One websocket from connect to close: (close code, zombie, resumed)."""
        resume = self._sender is not None
        url = voice_gateway_url(self.server.endpoint)
        code: int | None = None
        zombie = resumed = False
        failure: VoiceError | None = None
        try:
            async with open_tls_websocket(
                url, self._ssl, connect_timeout=CONNECT_TIMEOUT, max_message_size=_MAX_MESSAGE_SIZE
            ) as ws:
                sock = _Socket(ws, trio.Event())
                try:
                    await self._serve_socket(sock, resume, task_status)
                finally:
                    self._current = None
                    zombie, resumed = sock.zombie, sock.resumed
                    if not zombie:
                        # Also on cancellation: 1000 ends the voice session (we leave). Then
                        # the websocket's reader task is cancelled too, so the peer's answering
                        # close frame is never read: wait for ours to go out only.
                        with trio.move_on_after(CLOSE_SEND_WAIT, shield=True):
                            await ws.aclose(1000)
        except* trio_websocket.ConnectionClosed as group:
            reason = first_exception(group, trio_websocket.ConnectionClosed)
            code = reason.reason.code if reason.reason is not None else None
        except* _Zombie:
            zombie = True
        except* (
            OSError,
            trio.BrokenResourceError,
            trio.TooSlowError,
            trio_websocket.HandshakeError,
            MalformedPacket,
        ) as group:
            log.info(
                "voice %s: connection failed: %r",
                self.server.guild_id,
                first_exception(group, Exception),
            )
        except* VoiceError as group:
            failure = first_exception(group, VoiceError)
        if isinstance(failure, VoiceDisconnected):
            raise failure
        if failure is not None:
            # UnsupportedEncryptionMode and the like: reconnecting would fail the same way.
            raise VoiceDisconnected(code, VoiceCloseAction.STOP, str(failure))
        return code, zombie, resumed

    async def _serve_socket(
        self, sock: _Socket, resume: bool, task_status: trio.TaskStatus[None]
    ) -> None:
        """Handshake (identify or resume; ``sock.resumed`` says whether a resume succeeded),
        then read until the socket closes: `trio_websocket.ConnectionClosed`."""
        async with trio.open_nursery() as nursery:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                interval = await self._hello(sock)
                nursery.start_soon(self._heartbeat, sock, interval)
                if resume:
                    await self._resume(sock)
                    sock.resumed = True
                else:
                    await self._identify(sock)
            self._current = sock
            if not resume:
                task_status.started()
            await self._read_forever(sock)

    # --- handshake --------------------------------------------------------------------------

    async def _hello(self, sock: _Socket) -> float:
        d = await self._expect(sock, VoiceOpcode.HELLO)
        return float(d["heartbeat_interval"]) / 1000

    async def _identify(self, sock: _Socket) -> None:
        s = self.server
        await self._send(
            sock,
            encode_identify(
                server_id=s.guild_id,
                user_id=s.user_id,
                session_id=s.session_id,
                token=s.token,
                max_dave_protocol_version=self._max_dave,
            ),
        )
        ready = await self._expect(sock, VoiceOpcode.READY)
        self._ssrc = int(ready["ssrc"])
        mode = choose_mode(ready.get("modes", ()))
        # Ready's heartbeat_interval is wrong and ignored (PROTOCOL.md 5.1 step 6).
        address = await self._discover(str(ready["ip"]), int(ready["port"]))
        await self._send(sock, encode_select_protocol(address.address, address.port, mode))
        description = await self._expect(sock, VoiceOpcode.SESSION_DESCRIPTION)
        self._mode = str(description.get("mode", mode))
        cipher = TransportCipher(self._mode, bytes(description["secret_key"]))
        assert self._udp is not None
        self._sender = PacedSender(
            self._udp,
            RtpSender(
                self._ssrc,
                sequence=random.randrange(1 << 16),
                timestamp=random.randrange(1 << 32),
            ),
            cipher,
            on_speaking=self._speaking,
            transform=self._dave.encrypt,
        )
        version = int(description.get("dave_protocol_version") or 0)
        try:
            dave_start = self._dave.start(version)
        except ValueError:
            # We identified with max_dave_protocol_version; more is a server bug, or a
            # davey too old for what Discord now requires. Retrying cannot help.
            raise VoiceDisconnected(
                None,
                VoiceCloseAction.STOP,
                f"Discord asked for DAVE protocol version {version}, which this build does not "
                "speak: update trio_companion",
            ) from None
        for out in dave_start:
            await self._send(sock, out)
        # Registers our SSRC before any audio, as discord.py does (PROTOCOL.md 5.1 step 10).
        await self._send(sock, encode_speaking(self._ssrc, SpeakingFlags.NONE))

    async def _resume(self, sock: _Socket) -> None:
        s = self.server
        await self._send(
            sock,
            encode_resume(
                server_id=s.guild_id,
                session_id=s.session_id,
                token=s.token,
                seq_ack=self._seq_ack,
            ),
        )
        await self._expect(sock, VoiceOpcode.RESUMED)

    async def _discover(self, ip: str, port: int) -> DiscoveredAddress:
        assert self._udp is not None
        await self._udp.connect((ip, port))
        request = encode_ip_discovery_request(self._ssrc)
        for _ in range(DISCOVERY_ATTEMPTS):
            await self._udp.send(request)
            with trio.move_on_after(DISCOVERY_TIMEOUT):
                while True:
                    with contextlib.suppress(MalformedPacket):
                        return decode_ip_discovery_response(await self._udp.recv(2048))
        raise VoiceDisconnected(
            None,
            VoiceCloseAction.NEW_SESSION,
            "the voice server did not answer UDP IP discovery; is UDP blocked?",
        )

    # --- serving ----------------------------------------------------------------------------

    async def _expect(self, sock: _Socket, op: VoiceOpcode) -> Any:
        """Read messages, handling the others as usual, until one with ``op`` arrives."""
        while True:
            got, d = await self._receive(sock)
            if got == op:
                return d if d is not None else {}
            await self._handle(sock, got, d)

    async def _read_forever(self, sock: _Socket) -> None:
        while True:
            op, d = await self._receive(sock)
            await self._handle(sock, op, d)

    async def _receive(self, sock: _Socket) -> tuple[int, Any]:
        """One message: (op, d) for JSON; (op, payload bytes) for a DAVE binary frame."""
        while True:
            message = await sock.ws.get_message()
            if isinstance(message, bytes):
                seq, op, payload = parse_binary_frame(message)
                self._seq_ack = seq
                return op, payload
            try:
                payload = _decoder.decode(message)
                op = int(payload["op"])
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                log.warning("voice %s: unreadable message ignored", self.server.guild_id)
                continue
            if isinstance(payload.get("seq"), int):
                self._seq_ack = payload["seq"]
            return op, payload.get("d")

    async def _handle(self, sock: _Socket, op: int, d: Any) -> None:
        if op == VoiceOpcode.HEARTBEAT_ACK:
            sock.acked.set()
            return
        out: list[str | bytes] = []
        try:
            if op == VoiceOpcode.CLIENTS_CONNECT:
                self._dave.clients_connect(int(u) for u in d["user_ids"])
            elif op == VoiceOpcode.CLIENT_DISCONNECT:
                self._dave.client_disconnect(int(d["user_id"]))
            elif op == VoiceOpcode.SESSION_DESCRIPTION and self._sender is not None:
                # A new description mid-session (DAVE version change): follow it.
                out = self._dave.start(int(d.get("dave_protocol_version") or 0))
            elif isinstance(d, bytes):
                out = self._dave.handle_binary(op, d)
            elif (
                VoiceOpcode.DAVE_PREPARE_TRANSITION
                <= op
                <= VoiceOpcode.DAVE_MLS_INVALID_COMMIT_WELCOME
            ):
                out = self._dave.handle_json(op, d)
            # Everything else (op 5 from others, undocumented ops) is ignored (PROTOCOL.md 5.3).
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("voice %s: malformed op %s ignored: %r", self.server.guild_id, op, exc)
        for message in out:
            await self._send(sock, message)

    async def _heartbeat(self, sock: _Socket, interval: float) -> None:
        missed = 0
        while True:
            sock.acked = trio.Event()
            sent_at = trio.current_time()
            await self._send(sock, encode_heartbeat(int(sent_at * 1000), self._seq_ack))
            with trio.move_on_after(interval):
                await sock.acked.wait()
                self._latency = trio.current_time() - sent_at
                missed = 0
                await trio.sleep_until(sent_at + interval)
                continue
            missed += 1
            if missed >= MISSED_ACKS:
                sock.zombie = True
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await sock.ws.aclose(ZOMBIE_CLOSE_CODE)
                raise _Zombie

    async def _send(self, sock: _Socket, message: str | bytes) -> None:
        async with self._send_lock:
            await sock.ws.send_message(message)

    async def _speaking(self, on: bool) -> None:
        sock = self._current
        if sock is None:
            return  # between websockets (a resume): the server keeps the SSRC mapping.
        flags = SpeakingFlags.MICROPHONE if on else SpeakingFlags.NONE
        with contextlib.suppress(trio_websocket.ConnectionClosed, trio.BrokenResourceError):
            await self._send(sock, encode_speaking(self._ssrc, flags))
