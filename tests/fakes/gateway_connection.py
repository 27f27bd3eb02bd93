"""`FakeConnection`: one client websocket of the fake gateway (`tests.fakes.discord_gateway`).

Its handler task (`FakeConnection._serve`, run in the connection's own nursery by the gateway)
sends Hello and handles the client's frames one at a time; the test API (`dispatch`, `send_op`,
`close`, `drop`, `wait_op`) runs in the test's task. All writes share one `trio.StrictFIFOLock`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, final
from urllib.parse import parse_qsl, urlsplit

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from tests.fakes.gateway_session import (
    CLIENT_OPS,
    CLOSE_REASONS,
    SESSION_ENDING_CLOSES,
    Deflate,
    FakeSession,
    HeartbeatSeqCheck,
    check_identify,
    check_resume_seq,
    make_deflate,
    supported_compressions,
)
from trio_companion.gateway.protocol import IDENTIFY_WINDOW, MAX_PAYLOAD_BYTES, CloseCode, Opcode

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import FakeGateway

__all__ = ["RESUME_PATH", "FakeConnection"]

RESUME_PATH: Final = "/resume/"  # our choice: a path of its own, so tests see where resumes went
_SESSION_END: Final = (1000, 1001)  # PROTOCOL.md 1.6: a client close with these ends the session


def _op(op: int, d: Any) -> dict[str, Any]:
    return {"op": op, "d": d, "s": None, "t": None}


@final
class FakeConnection:
    """One accepted websocket. ``path`` is the URL path (``/`` or `RESUME_PATH`), ``query`` its
    query string; ``received`` holds ``(trio time, op, d)`` of every frame the client sent that
    parsed, ``sent`` ``(trio time, payload)`` of every frame the fake sent.

    ``closed_code``/``closed_reason``: the close frame the client sent, if it closed first (None
    when it dropped TCP). ``server_close_code``/``server_close_reason``: the fake's close frame.
    ``ended`` is set once the connection and its tasks are gone.
    """

    def __init__(
        self,
        gateway: FakeGateway,
        index: int,
        target: str,
        stream: trio.abc.Stream,
        ws: WebSocketConnection,
    ) -> None:
        parts = urlsplit(target)
        self.index = index
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query))
        self.compress: str | None = self.query.get("compress")
        self.opened_at = trio.current_time()
        self.received: list[tuple[float, int, Any]] = []
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.session_id: str | None = None
        self.identify: dict[str, Any] | None = None  # the accepted Identify's d
        self.identified = False  # READY was sent on this connection
        self.resumed = False  # RESUMED was sent on this connection
        self.closed_code: int | None = None
        self.closed_reason: str | None = None
        self.server_close_code: int | None = None
        self.server_close_reason: str | None = None
        self.dropped = False  # the fake cut TCP with `drop`
        self.ended = trio.Event()
        self._gw = gateway
        self._stream = stream
        self._ws = ws
        self._lock = trio.StrictFIFOLock()
        self._deflate: Deflate | None = None
        self._frame_times: deque[float] = deque()
        self._heartbeats = HeartbeatSeqCheck()
        self._closing = False
        self._close_done = trio.Event()

    # --- state ---------------------------------------------------------------------------------

    @property
    def session(self) -> FakeSession | None:
        return None if self.session_id is None else self._gw.sessions[self.session_id]

    @property
    def seq(self) -> int:
        """The session's last seq (0 without a session)."""
        return 0 if (session := self.session) is None else session.seq

    @property
    def established(self) -> bool:
        """READY or RESUMED was sent here."""
        return self.identified or self.resumed

    @property
    def live(self) -> bool:
        """Established and neither closing nor ended: dispatches reach the client."""
        return self.established and not self._closing and not self.ended.is_set()

    @property
    def via_resume_url(self) -> bool:
        """The client connected to READY's ``resume_gateway_url``."""
        return self.path.rstrip("/") == RESUME_PATH.rstrip("/")

    def frames(self, op: int) -> list[tuple[float, Any]]:
        """``(trio time, d)`` of every frame with opcode ``op`` the client sent."""
        return [(t, d) for t, o, d in self.received if o == op]

    # --- test API ------------------------------------------------------------------------------

    async def dispatch(self, name: str, data: Any) -> int:
        """Send op 0 ``name`` with the session's next seq, which is returned. The event is kept
        for replay on resume; if the connection is closing or gone it is only kept (the client
        missed it). Raises RuntimeError when no session lives on this connection."""
        session = self.session
        if session is None:
            raise RuntimeError(f"connection {self.index} has no session to dispatch on")
        async with self._lock:
            return await self._dispatch_locked(session, name, data)

    async def send_op(self, op: int, d: Any = None) -> bool:
        """Send a non-dispatch payload: op 7 reconnect, op 9 invalid session, op 1 heartbeat
        request... Returns False if the connection was already closed. Op 9 with ``d`` not true
        also invalidates this connection's session, as it would on Discord."""
        if op == Opcode.INVALID_SESSION and d is not True and (session := self.session):
            session.invalidated = True
        async with self._lock:
            return await self._send(_op(op, d))

    async def send_raw(self, message: str | bytes) -> bool:
        """Send ``message`` as one frame, uncompressed and unchecked (for malformed-input tests)."""
        async with self._lock:
            return await self._send_message(message, None)

    async def close(self, code: int, reason: str | None = None) -> None:
        """Close with ``code`` (Discord's reason text by default) and wait up to
        `FakeGateway.close_timeout` for the client's answer, then close TCP. A session-ending
        code (4004, 4007, 4009-4014) invalidates the session. No-op once closing or closed."""
        if self._closing or self._ws.closed is not None or self.ended.is_set():
            return
        self._closing = True
        self.server_close_code = code
        self.server_close_reason = reason = (
            CLOSE_REASONS.get(code, "") if reason is None else reason
        )
        if code in SESSION_ENDING_CLOSES and (session := self.session):
            session.invalidated = True
        try:
            with trio.move_on_after(self._gw.close_timeout):
                await self._ws.aclose(code, reason)
        finally:
            self._close_done.set()  # before the await: it raises if we are being cancelled
            self._gw._notify()
            await trio.aclose_forcefully(self._stream)

    async def drop(self) -> None:
        """Cut the TCP connection without a close frame (the session stays resumable)."""
        if self._closing or self.ended.is_set():
            return
        self._closing = self.dropped = True
        self._close_done.set()
        self._gw._notify()
        await trio.aclose_forcefully(self._stream)

    async def wait_op(self, op: int, *, count: int = 1) -> Any:
        """Wait until the client has sent ``count`` frames with opcode ``op``; return the d of the
        ``count``-th. Raises RuntimeError if the connection ends first."""
        frames: list[tuple[float, Any]] = []

        def done() -> bool:
            nonlocal frames
            frames = self.frames(op)
            return len(frames) >= count or self.ended.is_set()

        await self._gw.wait_until(done)
        if len(frames) < count:
            raise RuntimeError(f"connection {self.index} ended before op {op} x{count}")
        return frames[count - 1][1]

    async def wait_established(self) -> None:
        """Wait until READY or RESUMED was sent here; RuntimeError if the connection ends first."""
        await self._gw.wait_until(lambda: self.established or self.ended.is_set())
        if not self.established:
            raise RuntimeError(f"connection {self.index} ended without a session")

    # --- sending -------------------------------------------------------------------------------

    async def _send(self, payload: dict[str, Any]) -> bool:
        data = msgspec.json.encode(payload)  # caller holds self._lock
        message = data.decode() if self._deflate is None else self._deflate(data)
        return await self._send_message(message, payload)

    async def _send_message(self, message: str | bytes, payload: dict[str, Any] | None) -> bool:
        try:
            if isinstance(message, bytes) and self._gw.split_compressed_frames and payload:
                half = len(message) // 2
                await self._ws.send_message(message[:half])
                await self._ws.send_message(message[half:])
            else:
                await self._ws.send_message(message)
        except ConnectionClosed:
            return False
        if payload is not None:
            self.sent.append((trio.current_time(), payload))
        self._gw._notify()
        return True

    async def _dispatch_locked(self, session: FakeSession, name: str, data: Any) -> int:
        seq = session.add_event(name, data)
        if not self._closing and not self.ended.is_set():
            payload = {"op": Opcode.DISPATCH, "d": data, "s": seq, "t": name}
            if await self._send(payload):
                self._heartbeats.sent(seq)
        return seq

    # --- serving -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        """The handler task: Hello, then one client frame at a time until either side closes."""
        gw = self._gw
        try:
            if await self._check_query():
                async with self._lock:
                    if gw.send_reconnect_before_hello:
                        await self._send(_op(Opcode.RECONNECT, None))
                    await self._send(
                        _op(Opcode.HELLO, {"heartbeat_interval": gw.heartbeat_interval_ms})
                    )
                while await self._on_message(await self._ws.get_message()):
                    pass
        except ConnectionClosed:
            pass
        closed = self._ws.closed
        if not self._closing and closed is not None and closed.code != 1006:  # 1006: no frame
            self.closed_code, self.closed_reason = closed.code, closed.reason
            if closed.code in _SESSION_END and (session := self.session):
                session.invalidated = True
        if self._closing:  # let `close` finish its handshake before the reader task goes
            await self._close_done.wait()

    async def _check_query(self) -> bool:
        if self.query.get("v") != "10":
            await self.close(CloseCode.INVALID_API_VERSION)
        elif self.query.get("encoding") != "json":
            await self.close(CloseCode.DECODE_ERROR, "The fake speaks encoding=json only.")
        elif self.compress is not None and self.compress not in supported_compressions():
            await self.close(CloseCode.DECODE_ERROR, f"Unsupported compress={self.compress}.")
        else:
            self._deflate = None if self.compress is None else make_deflate(self.compress)
            return True
        return False

    async def _violation(self, code: int, reason: str | None = None) -> bool:
        await self.close(code, reason)
        return False

    async def _on_message(self, message: str | bytes) -> bool:
        """Handle one client frame; False once the connection is being closed."""
        gw, now = self._gw, trio.current_time()
        raw = message.encode() if isinstance(message, str) else message
        if isinstance(message, bytes):
            gw.errors.append(f"connection {self.index}: binary frame (Discord expects text)")
        if len(raw) > MAX_PAYLOAD_BYTES:
            return await self._violation(CloseCode.DECODE_ERROR)
        try:
            payload = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return await self._violation(CloseCode.DECODE_ERROR)
        op = payload.get("op") if isinstance(payload, dict) else None
        if not isinstance(op, int) or isinstance(op, bool):
            return await self._violation(CloseCode.DECODE_ERROR)
        d = payload.get("d")
        self.received.append((now, op, d))
        gw._notify()
        self._frame_times.append(now)
        while self._frame_times[0] <= now - gw.send_window:
            self._frame_times.popleft()
        if len(self._frame_times) > gw.send_limit:
            return await self._violation(CloseCode.RATE_LIMITED)
        if op not in CLIENT_OPS:
            return await self._violation(CloseCode.UNKNOWN_OPCODE)
        if op == Opcode.HEARTBEAT:
            return await self._on_heartbeat(d)
        if op == Opcode.IDENTIFY:
            return await self._on_identify(d, now)
        if op == Opcode.RESUME:
            return await self._on_resume(d, now)
        if not self.established:
            return await self._violation(CloseCode.NOT_AUTHENTICATED)
        if op == Opcode.VOICE_STATE_UPDATE and gw.on_voice_state_update is not None:
            await gw.on_voice_state_update(d)
            gw._notify()  # what the hook recorded is visible to wait_until
        return True

    async def _on_heartbeat(self, d: Any) -> bool:
        if (error := self._heartbeats.check(d, established=self.established)) is not None:
            self._gw.errors.append(f"connection {self.index}: {error}")
        if self._gw.ack_heartbeats:
            async with self._lock:
                await self._send(_op(Opcode.HEARTBEAT_ACK, None))
        return True

    async def _on_identify(self, d: Any, now: float) -> bool:
        gw = self._gw
        gw.identifies.append(now)
        if self.established:
            return await self._violation(CloseCode.ALREADY_AUTHENTICATED)
        rejection = check_identify(
            d,
            token=gw.token,
            known_intents=gw.known_intents,
            allowed_privileged=gw.allowed_privileged,
        )
        if rejection is not None:
            return await self._violation(*rejection)
        # PROTOCOL.md 1.5/1.9: identifies beyond max_concurrency per 5 s get op 9 false. Only
        # accepted identifies count (our choice: Discord does not say).
        recent = [t for t in gw._accepted_identifies if t > now - IDENTIFY_WINDOW]
        if len(recent) >= gw.max_concurrency:
            await self.send_op(Opcode.INVALID_SESSION, False)
            return True
        gw._accepted_identifies.append(now)
        shard = d.get("shard")
        session = gw._new_session(d["intents"], None if shard is None else (shard[0], shard[1]))
        self.session_id, self.identify = session.session_id, d
        self._heartbeats.reset(None)
        gw._session_connections[session.session_id] = self
        async with self._lock:
            await self._dispatch_locked(session, "READY", gw._ready(session))
            self.identified = True
            for guild in gw.guilds:
                await self._dispatch_locked(session, "GUILD_CREATE", guild)
        return True

    async def _on_resume(self, d: Any, now: float) -> bool:
        gw = self._gw
        gw.resumes.append(now)
        if self.established:
            return await self._violation(CloseCode.ALREADY_AUTHENTICATED)
        if not self.via_resume_url:
            gw.errors.append(
                f"connection {self.index}: Resume sent to {self.path!r}, not to resume_gateway_url"
            )
        sid = d.get("session_id") if isinstance(d, dict) else None
        session = gw.sessions.get(sid) if isinstance(sid, str) else None
        if session is None or session.invalidated or d.get("token") != gw.token:
            await self.send_op(Opcode.INVALID_SESSION, False)
            return True
        seq = d.get("seq")
        if not check_resume_seq(seq, session.seq):
            return await self._violation(CloseCode.INVALID_SEQ)
        self.session_id = session.session_id
        self._heartbeats.reset(seq)
        gw._session_connections[session.session_id] = self
        async with self._lock:
            for s, name, data in session.replay_after(seq):
                if await self._send({"op": Opcode.DISPATCH, "d": data, "s": s, "t": name}):
                    self._heartbeats.sent(s)
            await self._dispatch_locked(session, "RESUMED", {})
            self.resumed = True
        return True
