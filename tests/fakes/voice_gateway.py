"""`VoiceConnection`: one websocket of the fake voice gateway (`tests.fakes.voice_server`).

Theory of operation
-------------------

`VoiceConnection.serve` (the handler task, in the connection's own nursery) checks the URL
(``/?v=8``), sends op 8 Hello, then handles the client's frames one at a time: JSON text frames
(ops 0, 1, 3, 5, 7, 23, 31) and binary DAVE frames ``[op u8][payload]`` (ops 26, 28). Every
server write goes through one `trio.StrictFIFOLock`; messages after Hello except the heartbeat
ACK and Resumed are stamped with the session's next ``seq`` and kept for replay on Resume
(`voice_server.VoiceSession.stamp_json` / `stamp_binary`).

Close codes (PROTOCOL.md 5.4): payload not JSON 4002, unknown opcode 4001, anything but a
heartbeat before Identify/Resume 4003, a second Identify 4005, bad token or ids 4004, unknown or
invalidated session 4006, DAVE missing 4017, Select Protocol with a protocol other than udp 4012
or a mode not offered 4016, a missing/other ``v`` 4020 (see `_check_url`). Violations that are
bugs of the client (not credential or policy rejections) are also appended to
``FakeVoiceServer.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, final
from urllib.parse import parse_qsl, urlsplit

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from trio_companion.voice.protocol import VOICE_GATEWAY_VERSION, VoiceOpcode

if TYPE_CHECKING:
    from tests.fakes.voice_server import FakeVoiceServer, VoiceSession

__all__ = ["Received", "Sent", "VoiceConnection"]

_Op = VoiceOpcode
# Ops a client sends as JSON text and as binary (PROTOCOL.md 5.3, 6.2); others close with 4001.
_CLIENT_JSON_OPS: Final = frozenset(
    {
        _Op.IDENTIFY,
        _Op.SELECT_PROTOCOL,
        _Op.HEARTBEAT,
        _Op.SPEAKING,
        _Op.RESUME,
        _Op.DAVE_TRANSITION_READY,
        _Op.DAVE_MLS_INVALID_COMMIT_WELCOME,
    }
)
_CLIENT_BINARY_OPS: Final = frozenset({_Op.DAVE_MLS_KEY_PACKAGE, _Op.DAVE_MLS_COMMIT_WELCOME})
# Closes after which a Resume still works: 4015 (server crash) and the client dropping TCP.
_RESUMABLE_SERVER_CLOSES: Final = frozenset({4015})
_CLOSE_TIMEOUT: Final = 5.0  # our choice: how long `close` waits for the client's close frame


@dataclass(frozen=True, slots=True)
class Received:
    """A client frame: ``d`` is the JSON ``d`` or, for a binary frame, the payload bytes."""

    time: float
    op: int
    d: Any
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Sent:
    """A server frame: ``seq`` is None for Hello, heartbeat ACK and Resumed; ``d`` as above."""

    time: float
    op: int
    seq: int | None
    d: Any
    binary: bool = False
    replayed: bool = False


@final
class VoiceConnection:
    """One accepted voice websocket.

    Observation: ``target`` (path and query), ``query``; ``received``/``sent``; ``kind``
    (``"identify"`` or ``"resume"`` once one was accepted); ``session_id``; ``seq_acks`` (the
    ``seq_ack`` of every heartbeat, None when missing); ``client_close_code`` (the client's close
    frame, None if it dropped TCP or the server closed first); ``server_close_code``;
    ``ended`` (set once the connection is gone).
    """

    def __init__(
        self,
        server: FakeVoiceServer,
        index: int,
        target: str,
        stream: trio.abc.Stream,
        ws: WebSocketConnection,
    ) -> None:
        parts = urlsplit(target)
        self.index: Final = index
        self.target: Final = target
        self.path: Final = parts.path
        self.query: Final = dict(parse_qsl(parts.query))
        self.opened_at: Final = trio.current_time()
        self.received: list[Received] = []
        self.sent: list[Sent] = []
        self.kind: Literal["identify", "resume"] | None = None
        self.session_id: str | None = None
        self.seq_acks: list[int | None] = []
        self.client_close_code: int | None = None
        self.server_close_code: int | None = None
        self.ended = trio.Event()
        self._server = server
        self._stream = stream
        self._ws = ws
        self._lock = trio.StrictFIFOLock()
        self._closing = False
        self._close_done = trio.Event()

    def __repr__(self) -> str:
        return f"VoiceConnection(index={self.index}, kind={self.kind!r})"

    # --- state ---------------------------------------------------------------------------------

    @property
    def session(self) -> VoiceSession | None:
        return None if self.session_id is None else self._server.sessions.get(self.session_id)

    @property
    def live(self) -> bool:
        """Neither closing nor ended."""
        return not self._closing and not self.ended.is_set()

    def ops(self, op: int) -> list[Any]:
        """The ``d`` (or binary payload) of every client frame with opcode ``op``."""
        return [r.d for r in self.received if r.op == op]

    def sent_ops(self, op: int) -> list[Any]:
        return [s.d for s in self.sent if s.op == op]

    # --- sending -------------------------------------------------------------------------------

    async def send_json(self, op: int, d: Any, *, seq: bool = True) -> bool:
        """Send op ``op``; with ``seq`` it gets the session's next seq and is kept for replay.
        Returns False if the websocket is already closed."""
        async with self._lock:
            return await self._send_json_locked(op, d, seq=seq)

    async def _send_json_locked(self, op: int, d: Any, *, seq: bool) -> bool:
        session = self.session
        if seq and session is not None:
            number, message = session.stamp_json(op, d)
        else:
            number, message = None, msgspec.json.encode({"op": op, "d": d}).decode()
        return await self._write(message, Sent(trio.current_time(), op, number, d))

    async def send_binary(self, op: int, payload: bytes) -> bool:
        """Send a DAVE binary frame ``[seq u16][op u8][payload]`` (seq from the session)."""
        session = self.session
        if session is None:
            raise RuntimeError("binary DAVE frames need a session")
        async with self._lock:
            number, message = session.stamp_binary(op, payload)
            return await self._write(
                message, Sent(trio.current_time(), op, number, payload, binary=True)
            )

    async def _write(self, message: str | bytes, record: Sent) -> bool:
        try:
            await self._ws.send_message(message)
        except ConnectionClosed:
            return False
        self.sent.append(record)
        self._server._notify()
        return True

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code``, wait up to 5 s for the client's answer, then close TCP. Every
        code but 4015 invalidates the session (a later Resume gets 4006). No-op once closing."""
        if self._closing or self.ended.is_set():
            return
        self._closing = True
        self.server_close_code = code
        if code not in _RESUMABLE_SERVER_CLOSES and (session := self.session) is not None:
            session.invalidated = True
        try:
            with trio.move_on_after(_CLOSE_TIMEOUT):
                await self._ws.aclose(code, reason)
        finally:
            self._close_done.set()
            self._server._notify()
            await trio.aclose_forcefully(self._stream)

    async def _reject(self, code: int, error: str | None = None) -> bool:
        """Close with ``code``; ``error``, if given, is a client bug for the server's errors."""
        if error is not None:
            self._error(error)
        await self.close(code)
        return False

    def _error(self, message: str) -> None:
        self._server.errors.append(f"connection {self.index}: {message}")
        self._server._notify()

    # --- serving -------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Hello, then one client frame at a time until either side closes."""
        server = self._server
        try:
            if await self._check_url():
                hello = {
                    "v": VOICE_GATEWAY_VERSION,
                    "heartbeat_interval": server.heartbeat_interval_ms,
                }
                await self.send_json(_Op.HELLO, hello, seq=False)
                if server._close_after_hello:
                    code = server._close_after_hello.pop(0)
                    await self.close(code)
                while not self._closing and await self._on_message(await self._ws.get_message()):
                    pass
        except ConnectionClosed:
            pass
        closed = self._ws.closed
        if not self._closing and closed is not None and closed.code != 1006:  # 1006: no frame
            self.client_close_code = closed.code
            # PROTOCOL.md 5.1 step 12: the client leaves with 1000; that session is over.
            if closed.code in (1000, 1001) and (session := self.session) is not None:
                session.invalidated = True
        if self._closing:
            await self._close_done.wait()

    async def _check_url(self) -> bool:
        # Our choice: 4020 (bad request) for a missing or other version. Discord does not
        # document the code; 4020 makes a client stop (a bug) instead of looping as 4006 would.
        if self.path.rstrip("/") != "" or self.query.get("v") != str(VOICE_GATEWAY_VERSION):
            await self._reject(4020, f"voice websocket opened at {self.target!r}, not /?v=8")
            return False
        return True

    async def _on_message(self, message: str | bytes) -> bool:
        """Handle one client frame; False once the connection is being closed."""
        now = trio.current_time()
        if isinstance(message, bytes):
            return await self._on_binary(message, now)
        try:
            payload = msgspec.json.decode(message)
        except msgspec.DecodeError:
            return await self._reject(4002, f"text frame is not JSON: {message[:80]!r}")
        op = payload.get("op") if isinstance(payload, dict) else None
        if not isinstance(op, int) or isinstance(op, bool):
            return await self._reject(4002, f"payload without an integer op: {message[:80]!r}")
        d = payload.get("d")
        self.received.append(Received(now, op, d))
        self._server._notify()
        if op not in _CLIENT_JSON_OPS:
            return await self._reject(4001, f"client sent unknown JSON op {op}")
        if op == _Op.HEARTBEAT:
            return await self._on_heartbeat(d)
        if op == _Op.IDENTIFY:
            return await self._on_identify(d)
        if op == _Op.RESUME:
            return await self._on_resume(d)
        session = self.session
        if session is None:
            return await self._reject(4003, f"op {op} before Identify/Resume")
        if op == _Op.SELECT_PROTOCOL:
            return await self._on_select_protocol(session, d)
        if op == _Op.SPEAKING:
            self._on_speaking(session, d, now)
            return True
        if op == _Op.DAVE_TRANSITION_READY:
            return await self._on_transition_ready(session, d)
        # op 31: the client could not apply our commit/welcome. Nothing in this fake should
        # make that happen, so it is an error (a real server would remove and re-add it).
        self._error(f"op 31 mls_invalid_commit_welcome {d!r}")
        return True

    async def _on_binary(self, message: bytes, now: float) -> bool:
        if not message:
            return await self._reject(4002, "empty binary frame")
        op, payload = message[0], message[1:]
        self.received.append(Received(now, op, payload, binary=True))
        self._server._notify()
        if op not in _CLIENT_BINARY_OPS:
            return await self._reject(4001, f"client sent unknown binary op {op}")
        session = self.session
        if session is None:
            return await self._reject(4003, f"binary op {op} before Identify/Resume")
        if session.dave is None:
            self._error(f"DAVE binary op {op} on a session without DAVE")
            return True
        if op == _Op.DAVE_MLS_KEY_PACKAGE:
            await self._server._dave_on_key_package(self, session, payload)
        else:
            await self._server._dave_on_commit_welcome(self, session, payload)
        return True

    async def _on_heartbeat(self, d: Any) -> bool:
        if not isinstance(d, dict) or "t" not in d:
            self._error(f"heartbeat d is {d!r}, expected {{t, seq_ack}}")
            nonce = None
        else:
            nonce = d["t"]
        seq_ack = d.get("seq_ack") if isinstance(d, dict) else None
        if seq_ack is not None and (not isinstance(seq_ack, int) or isinstance(seq_ack, bool)):
            self._error(f"heartbeat seq_ack {seq_ack!r} is not an integer")
            seq_ack = None
        self.seq_acks.append(seq_ack)
        session = self.session
        if session is not None:
            if seq_ack is None:
                self._error("v8 heartbeat without seq_ack")
            elif seq_ack > session.seq:
                self._error(f"heartbeat seq_ack {seq_ack} > last seq sent {session.seq}")
        if self._server.ack_heartbeats:
            await self.send_json(_Op.HEARTBEAT_ACK, {"t": nonce}, seq=False)
        return True

    async def _on_identify(self, d: Any) -> bool:
        server = self._server
        if self.kind is not None:
            return await self._reject(4005, "second Identify/Resume on one connection")
        fields = ("server_id", "user_id", "session_id", "token")
        if not isinstance(d, dict) or not all(isinstance(d.get(f), str | int) for f in fields):
            return await self._reject(4020, f"Identify without {fields}: {d!r}")
        credentials = server._allowed.get(str(d["session_id"]))
        if credentials is None:
            return await self._reject(4006)  # unknown session: not a client bug as such
        if (str(d["server_id"]), str(d["user_id"]), str(d["token"])) != (
            str(credentials.server_id),
            str(credentials.user_id),
            credentials.token,
        ):
            return await self._reject(4004)
        max_dave = d.get("max_dave_protocol_version")
        if not isinstance(max_dave, int) or isinstance(max_dave, bool):
            max_dave = 0
        if server.dave_required and max_dave < 1:
            return await self._reject(4017)  # PROTOCOL.md 6.1: right after Identify
        session = server._new_session(credentials, max_dave)
        self.kind, self.session_id = "identify", session.session_id
        session.connection = self
        ready = {
            "ssrc": session.ssrc,
            "ip": server.udp_host,
            "port": server.udp_port,
            "modes": list(server.modes),
            # PROTOCOL.md 5.1 step 6: Discord's Ready carries a wrong heartbeat_interval that
            # clients must ignore; 1 ms makes a client that uses it flood visibly.
            "heartbeat_interval": 1,
            "experiments": ["fixed_keyframe_interval"],
        }
        async with self._lock:
            await self._send_json_locked(_Op.READY, ready, seq=True)
            if server.send_undocumented_ops:
                await self._send_json_locked(15, {"any": 100}, seq=True)  # media sink wants
        return True

    async def _on_resume(self, d: Any) -> bool:
        server = self._server
        if self.kind is not None:
            return await self._reject(4005, "second Identify/Resume on one connection")
        fields = ("server_id", "session_id", "token")
        if not isinstance(d, dict) or not all(isinstance(d.get(f), str | int) for f in fields):
            return await self._reject(4020, f"Resume without {fields}: {d!r}")
        session = server.sessions.get(str(d["session_id"]))
        if session is None or session.invalidated:
            return await self._reject(4006)
        if (str(d["server_id"]), str(d["token"])) != (str(session.server_id), session.token):
            return await self._reject(4004)
        seq_ack = d.get("seq_ack")
        if not isinstance(seq_ack, int) or isinstance(seq_ack, bool):
            self._error(f"v8 Resume without an integer seq_ack: {seq_ack!r}")
            seq_ack = -1
        elif seq_ack > session.seq:
            self._error(f"Resume seq_ack {seq_ack} > last seq sent {session.seq}")
        self.kind, self.session_id = "resume", session.session_id
        previous = session.connection
        session.connection = self
        if previous is not None and previous is not self:
            await previous.close(4015)  # our choice: a resumed-over socket is simply closed
        async with self._lock:
            await self._send_json_locked(_Op.RESUMED, None, seq=False)
            for number, op, d_sent, message in session.replay_after(seq_ack):
                binary = isinstance(message, bytes)
                record = Sent(trio.current_time(), op, number, d_sent, binary, replayed=True)
                await self._write(message, record)
        return True

    async def _on_select_protocol(self, session: VoiceSession, d: Any) -> bool:
        server = self._server
        data = d.get("data") if isinstance(d, dict) else None
        if not isinstance(d, dict) or d.get("protocol") != "udp" or not isinstance(data, dict):
            return await self._reject(4012, f"Select Protocol {d!r}: expected protocol udp")
        mode = data.get("mode")
        if mode not in server.modes:
            return await self._reject(4016, f"Select Protocol mode {mode!r} was not offered")
        if session.cipher is not None:
            self._error("a second Select Protocol on one session")
        peer = (data.get("address"), data.get("port"))
        if session.discovered_peer is None:
            self._error("Select Protocol before UDP IP discovery")
        elif peer != session.discovered_peer:
            self._error(f"Select Protocol names {peer}, discovery saw {session.discovered_peer}")
        if isinstance(peer[0], str) and isinstance(peer[1], int):
            session.selected_peer = (peer[0], peer[1])
        session.select_mode(str(mode))
        description = {
            "mode": mode,
            "secret_key": list(session.secret_key),
            "dave_protocol_version": session.dave_protocol_version,
            "audio_codec": "opus",
            "video_codec": "H264",
            "media_session_id": session.media_session_id,
        }
        async with self._lock:
            await self._send_json_locked(_Op.SESSION_DESCRIPTION, description, seq=True)
        await server._after_session_description(self, session)
        return True

    def _on_speaking(self, session: VoiceSession, d: Any, now: float) -> None:
        flags = d.get("speaking") if isinstance(d, dict) else None
        if not isinstance(flags, int) or isinstance(flags, bool):
            self._error(f"Speaking d is {d!r}, expected {{speaking, delay, ssrc}}")
            return
        if d.get("ssrc") != session.ssrc:
            self._error(f"Speaking ssrc {d.get('ssrc')!r}, the session's is {session.ssrc}")
        else:
            session.speaking_seen = True
        self._server.speaking.append((now, flags))
        self._server._notify()

    async def _on_transition_ready(self, session: VoiceSession, d: Any) -> bool:
        tid = d.get("transition_id") if isinstance(d, dict) else None
        dave = session.dave
        if dave is None or dave.pending_transition is None or tid != dave.pending_transition:
            pending = None if dave is None else dave.pending_transition
            self._error(f"op 23 transition_ready {d!r}, pending transition {pending}")
            return True
        dave.pending_transition = None
        await self.send_json(_Op.DAVE_EXECUTE_TRANSITION, {"transition_id": tid})
        dave.executed = True
        self._server._notify()
        return True
