"""One gateway shard: connect, identify or resume, heartbeat, read, and reconnect, on trio.

Theory of operation
-------------------
A `Shard` runs a loop of *connections*. Each connection has its own nursery holding its
heartbeat task, with the reader in the nursery's body, and its own state (`_Connection`: the
inflater, the send budget, the heartbeat ACK flag), so nothing of a dead connection can touch
the next one (PROTOCOL.md P1). What outlives connections is the *session* (`_Session`:
``session_id``, ``resume_gateway_url``, the last sequence number).

A connection ends with an *outcome*, never by raising for an expected reason: Discord closed it
(its close code decides, see `protocol.close_info`), it dropped, the heartbeat found it a zombie
(no ACK for the previous beat), or Discord asked for a reconnect (op 7) or invalidated the session
(op 9). The task that sees the end records a `GatewayClosed` (or `FatalGatewayClose`) and cancels
the connection's nursery; the loop then decides:

* FATAL (4004, 4010-4014): raise `FatalGatewayClose`; the app stops with one clear line.
* NEW_SESSION (4007, 4009, op 9 false): forget the session, wait 1-5 s (the docs' advice for op 9),
  Identify on the cached ``/gateway/bot`` URL.
* RESUME (everything else): Resume at ``resume_gateway_url`` if a session exists, else Identify.

We close connections we mean to resume with 4000, never 1000/1001, which would end the session
(PROTOCOL.md P4); cancellation (shutdown) closes with 1000 on purpose. Connections that die before
READY, or within `HEALTHY_AFTER` seconds of it, back off exponentially with full jitter.

Every send goes through one path: the connection's `SendBudget` (120 per 60 s, 3 kept for
heartbeats) and a `trio.StrictFIFOLock`. Dispatches go to a bounded channel; while the reader is
blocked on it (handlers are slow), a missing heartbeat ACK is not taken as a zombie, because we
are not reading, not Discord not answering.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, final

import trio
import trio_websocket

from trio_companion.errors import first_exception
from trio_companion.gateway.compression import Inflater, gateway_connect_url, make_inflater
from trio_companion.gateway.errors import (
    DecompressionError,
    FatalGatewayClose,
    GatewayClosed,
    MalformedFrame,
)
from trio_companion.gateway.events import Event, Ready, Resumed, decode_event
from trio_companion.gateway.identify import IdentifyGate
from trio_companion.gateway.protocol import (
    HEARTBEAT_RESERVE,
    SEND_LIMIT,
    SEND_WINDOW,
    ZOMBIE_CLOSE_CODE,
    CloseAction,
    GatewayMessage,
    Intents,
    Opcode,
    Presence,
    close_error,
    decode_frame,
    decode_hello,
    decode_invalid_session,
    encode_heartbeat,
    encode_identify,
    encode_resume,
    reconnect_delay,
)
from trio_companion.gateway.websocket import open_tls_websocket

__all__ = ["SendBudget", "Shard", "ShardEvent", "ShardStatistics"]

log = logging.getLogger(__name__)

ShardEvent = tuple[int, Event]

# Seconds to wait for the TCP+TLS+websocket handshake, and for Hello after it.
CONNECT_TIMEOUT: Final = 20.0
HELLO_TIMEOUT: Final = 20.0
# Seconds our close handshake may take before the socket is just dropped.
CLOSE_TIMEOUT: Final = 5.0
# Our choice: at shutdown, time for our close frame to be written, not answered.
SHUTDOWN_CLOSE_WAIT: Final = 0.25
# Our choice: a connection that lived this long after READY was healthy; reset the backoff.
HEALTHY_AFTER: Final = 30.0
# The docs (Gateway "Invalid Session"): wait a random 1-5 s before identifying after op 9.
INVALID_SESSION_WAIT: Final = (1.0, 5.0)
# Largest inflated message accepted: GUILD_CREATE of a big guild is large, but not this large.
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024


@final
class SendBudget:
    """Discord's gateway send limit for one connection, with slots kept for heartbeats."""

    def __init__(
        self, limit: int = SEND_LIMIT, reserve: int = HEARTBEAT_RESERVE, window: float = SEND_WINDOW
    ) -> None:
        self._limit, self._reserve, self._window = limit, reserve, window
        self._sent: deque[float] = deque()

    async def acquire(self, *, priority: bool) -> None:
        """Wait until one more send fits in the window (heartbeats may use the reserve)."""
        cap = self._limit if priority else self._limit - self._reserve
        while True:
            now = trio.current_time()
            while self._sent and self._sent[0] <= now - self._window:
                self._sent.popleft()
            if len(self._sent) < cap:
                self._sent.append(now)
                return
            await trio.sleep_until(self._sent[len(self._sent) - cap] + self._window)

    @property
    def used(self) -> int:
        return len(self._sent)


@dataclass(slots=True)
class _Session:
    session_id: str
    resume_url: str
    seq: int | None


@dataclass(frozen=True, slots=True)
class ShardStatistics:
    shard_id: int
    connected: bool
    session_id: str | None
    seq: int | None
    latency: float | None
    connections: int
    sends_in_window: int


class _Connection:
    """State that lives and dies with one websocket connection."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, inflater: Inflater | None) -> None:
        self.ws = ws
        self.inflater = inflater
        self.budget = SendBudget()
        self.send_lock = trio.StrictFIFOLock()
        self.awaiting_ack = False
        self.beat_sent_at = 0.0
        self.reader_blocked = False
        self.ready = False
        self.outcome: GatewayClosed | FatalGatewayClose | None = None
        self.scope = trio.CancelScope()

    def finish(self, outcome: GatewayClosed | FatalGatewayClose) -> None:
        """Record why the connection ends (the first reason wins) and end it."""
        if self.outcome is None:
            self.outcome = outcome
        self.scope.cancel()


@final
class Shard:
    """One shard's connection loop; ``run`` returns only by cancellation or a fatal close."""

    def __init__(
        self,
        *,
        token: str,
        intents: Intents,
        shard_id: int,
        shard_count: int,
        gateway_url: str,
        identify_gate: IdentifyGate,
        events: trio.MemorySendChannel[ShardEvent],
        ssl_context: ssl.SSLContext,
        compress: str | None = "zlib-stream",
        presence: Presence | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.shard_id = shard_id
        self._token = token
        self._intents = intents
        self._shard = (shard_id, shard_count)
        self._gateway_url = gateway_url
        self._gate = identify_gate
        self._events = events
        self._ssl = ssl_context
        self._compress = compress
        self._presence = presence
        self._rng = rng
        self._session: _Session | None = None
        self._conn: _Connection | None = None
        self._conn_changed = trio.Event()
        self._first_ready = trio.Event()
        self._connections = 0
        self.latency: float | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and stay connected; ``started()`` after the first READY.

        Raises `FatalGatewayClose` for a close that reconnecting cannot fix.
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._connect_forever)
            await self._first_ready.wait()
            task_status.started()

    async def send(self, payload: bytes) -> None:
        """Send ``payload`` (an encoded op) on the current connection once it is authenticated.

        Waits while reconnecting (put a deadline around the call). Raises `GatewayClosed` if the
        connection is lost during the send.
        """
        while self._conn is None or not self._conn.ready:
            await self._conn_changed.wait()
        if not await self._send(self._conn, payload, priority=False):
            raise GatewayClosed(None, "the connection was lost while sending", _RESUME)

    def statistics(self) -> ShardStatistics:
        conn, session = self._conn, self._session
        return ShardStatistics(
            shard_id=self.shard_id,
            connected=conn is not None and conn.ready,
            session_id=session.session_id if session else None,
            seq=session.seq if session else None,
            latency=self.latency,
            connections=self._connections,
            sends_in_window=conn.budget.used if conn else 0,
        )

    # --- the connection loop ----------------------------------------------------------------

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            started = trio.current_time()
            conn_ready_at: list[float] = []
            outcome = await self._connect_once(conn_ready_at)
            if isinstance(outcome, FatalGatewayClose):
                log.error("shard %d: %s", self.shard_id, outcome)
                raise outcome
            log.warning("shard %d: %s; reconnecting", self.shard_id, outcome)
            if outcome.action is CloseAction.NEW_SESSION:
                self._session = None
                await trio.sleep(self._uniform(*INVALID_SESSION_WAIT))
            healthy = (
                bool(conn_ready_at) and trio.current_time() - conn_ready_at[0] >= HEALTHY_AFTER
            )
            attempt = 0 if healthy else attempt + 1
            if attempt:
                delay = reconnect_delay(attempt - 1, self._rng())
                log.info("shard %d: next connection in %.1f s", self.shard_id, delay)
                await trio.sleep_until(max(started, trio.current_time()) + delay)

    async def _connect_once(self, ready_at: list[float]) -> GatewayClosed | FatalGatewayClose:
        """One connection from handshake to end; returns why it ended."""
        session = self._session
        url = gateway_connect_url(
            session.resume_url if session else self._gateway_url, self._compress
        )
        self._connections += 1
        conn: _Connection | None = None
        failure: GatewayClosed | None = None
        try:
            async with open_tls_websocket(
                url,
                self._ssl,
                connect_timeout=CONNECT_TIMEOUT,
                max_message_size=MAX_MESSAGE_SIZE,
            ) as ws:
                conn = _Connection(ws, make_inflater(self._compress) if self._compress else None)
                try:
                    self._set_conn(conn)
                    with conn.scope:
                        async with trio.open_nursery() as nursery:
                            await self._serve(conn, nursery, ready_at)
                    await self._close(conn)
                finally:
                    # Also on cancellation (shutdown): then 1000, which ends the session, so the
                    # bot shows offline at once.
                    if conn.outcome is None:
                        await self._close(conn)
        except* (
            OSError,
            trio.BrokenResourceError,
            trio.TooSlowError,
            trio_websocket.HandshakeError,
            trio_websocket.ConnectionClosed,
        ) as group:
            cause = first_exception(group, Exception)
            failure = GatewayClosed(None, f"connection failed: {cause!r}", _RESUME)
        finally:
            self._set_conn(None)
        if conn is not None and conn.outcome is not None:
            return conn.outcome
        return failure or GatewayClosed(None, "the connection ended", _RESUME)

    async def _close(self, conn: _Connection) -> None:
        """Send our close frame: 4000 when reconnecting keeps the session (PROTOCOL.md P4),
        1000 when we stop. Shielded and bounded: a dead peer cannot hold us."""
        reconnecting = conn.outcome is not None
        # When stopping, the websocket's reader task is cancelled too, so the peer's answering
        # close frame can never be read: give the frame time to go out, not to be answered.
        wait = CLOSE_TIMEOUT if reconnecting else SHUTDOWN_CLOSE_WAIT
        with trio.move_on_after(wait, shield=True):
            await conn.ws.aclose(ZOMBIE_CLOSE_CODE if reconnecting else 1000)

    async def _serve(self, conn: _Connection, nursery: trio.Nursery, ready_at: list[float]) -> None:
        hello = await self._receive_hello(conn)
        if hello is None:
            return
        nursery.start_soon(self._heartbeat, conn, hello / 1000)
        if not await self._authenticate(conn):
            return
        while (message := await self._receive(conn)) is not None:
            await self._handle(conn, message, ready_at)

    async def _receive_hello(self, conn: _Connection) -> int | None:
        """The heartbeat interval (ms) from Hello, or None when the connection ended."""
        with trio.move_on_after(HELLO_TIMEOUT) as waited:
            message = await self._receive(conn)
        if waited.cancelled_caught:
            conn.finish(GatewayClosed(None, "no Hello in time", _RESUME, by_peer=False))
            return None
        if message is None:
            return None
        if message.op == Opcode.RECONNECT:  # it may come before Hello (PROTOCOL.md 1.3)
            conn.finish(GatewayClosed(None, "Discord asked to reconnect", _RESUME, by_peer=False))
            return None
        try:
            if message.op != Opcode.HELLO:
                raise MalformedFrame(f"expected Hello, got op {message.op}")
            return decode_hello(message).heartbeat_interval
        except MalformedFrame as exc:
            conn.finish(GatewayClosed(None, str(exc), _RESUME, by_peer=False))
            return None

    async def _authenticate(self, conn: _Connection) -> bool:
        session = self._session
        if session is not None and session.seq is not None:
            payload = encode_resume(self._token, session.session_id, session.seq)
            log.info("shard %d: resuming session %s", self.shard_id, session.session_id)
        else:
            self._session = None
            await self._gate.wait_turn(self.shard_id)
            payload = encode_identify(
                self._token, self._intents, shard=self._shard, presence=self._presence
            )
            log.info("shard %d: identifying", self.shard_id)
        return await self._send(conn, payload, priority=False)

    async def _receive(self, conn: _Connection) -> GatewayMessage | None:
        """The next whole message, or None once the connection ended (its outcome recorded)."""
        while True:
            try:
                data = await conn.ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                code = exc.reason.code if exc.reason is not None else None
                reason = (exc.reason.reason if exc.reason is not None else None) or ""
                # 1005/1006: no close frame was received; the connection just dropped.
                conn.finish(close_error(None if code in (1005, 1006) else code, reason))
                return None
            try:
                if isinstance(data, bytes) and conn.inflater is not None:
                    text = conn.inflater.feed(data)
                    if text is None:
                        continue
                    return decode_frame(text)
                return decode_frame(data)
            except (MalformedFrame, DecompressionError) as exc:
                conn.finish(GatewayClosed(None, str(exc), _RESUME, by_peer=False))
                return None

    async def _handle(
        self, conn: _Connection, message: GatewayMessage, ready_at: list[float]
    ) -> None:
        op = message.op
        if op == Opcode.DISPATCH and message.t is not None:
            event = decode_event(message.t, message.d)
            if isinstance(event, Ready):
                self._session = _Session(event.session_id, event.resume_gateway_url, message.s)
                log.info("shard %d: ready as %s", self.shard_id, event.user.username)
                self._mark_ready(conn, ready_at)
            elif self._session is not None and message.s is not None:
                self._session.seq = message.s
            if isinstance(event, Resumed):
                log.info("shard %d: resumed", self.shard_id)
                self._mark_ready(conn, ready_at)
            await self._forward(conn, event)
        elif op == Opcode.HEARTBEAT:
            await self._beat(conn)
        elif op == Opcode.HEARTBEAT_ACK:
            conn.awaiting_ack = False
            self.latency = trio.current_time() - conn.beat_sent_at
        elif op == Opcode.RECONNECT:
            conn.finish(GatewayClosed(None, "Discord asked to reconnect", _RESUME, by_peer=False))
        elif op == Opcode.INVALID_SESSION:
            resumable = decode_invalid_session(message)
            action = _RESUME if resumable else CloseAction.NEW_SESSION
            conn.finish(
                GatewayClosed(None, "Discord invalidated the session", action, by_peer=False)
            )

    def _mark_ready(self, conn: _Connection, ready_at: list[float]) -> None:
        conn.ready = True
        ready_at.append(trio.current_time())
        self._first_ready.set()
        self._notify()

    async def _forward(self, conn: _Connection, event: Event) -> None:
        try:
            self._events.send_nowait((self.shard_id, event))
        except trio.WouldBlock:
            conn.reader_blocked = True
            try:
                await self._events.send((self.shard_id, event))
            finally:
                conn.reader_blocked = False

    async def _heartbeat(self, conn: _Connection, interval: float) -> None:
        await trio.sleep(interval * self._rng())
        while True:
            if conn.awaiting_ack and not conn.reader_blocked:
                conn.finish(
                    GatewayClosed(
                        ZOMBIE_CLOSE_CODE, "no heartbeat ACK (zombie)", _RESUME, by_peer=False
                    )
                )
                return
            if not await self._beat(conn):
                return
            await trio.sleep(interval)

    async def _beat(self, conn: _Connection) -> bool:
        conn.awaiting_ack = True
        conn.beat_sent_at = trio.current_time()
        seq = self._session.seq if self._session is not None else None
        return await self._send(conn, encode_heartbeat(seq), priority=True)

    async def _send(self, conn: _Connection, payload: bytes, *, priority: bool) -> bool:
        """The one send path; False (the outcome recorded) if the connection broke."""
        await conn.budget.acquire(priority=priority)
        try:
            async with conn.send_lock:
                await conn.ws.send_message(payload.decode())
        except (trio_websocket.ConnectionClosed, trio.BrokenResourceError, OSError) as exc:
            conn.finish(GatewayClosed(None, f"send failed: {exc!r}", _RESUME))
            return False
        return True

    def _set_conn(self, conn: _Connection | None) -> None:
        self._conn = conn
        self._notify()

    def _notify(self) -> None:
        self._conn_changed.set()
        self._conn_changed = trio.Event()

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._rng()


_RESUME: Final = CloseAction.RESUME
