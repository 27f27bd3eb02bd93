"""A small plain-HTTP/1.1 server on loopback that can stream, for fake LLM servers.

`HTTPServer` is the cleartext sibling of `tests.fakes.https.serve_https` (same `Request`,
`Response` and `DROP`), plus what an LLM fake needs:

- `StreamingResponse`: ``body(send)`` writes chunks (chunked transfer encoding) at its own pace
  on trio's clock; the head goes out with the first one, as Go's ``net/http`` (Ollama) does, so a
  body that waits before its first chunk delays the head too. Returning `DROP` from ``body``
  closes the connection without the terminating chunk: the client sees a body cut short (or, if
  nothing was sent yet, a server that hung up without answering).
- Client hang-ups are noticed at once: while a request is being answered, a watcher task reads
  the connection, and EOF cancels the handler and its body (whose ``finally`` blocks run, so a
  fake can record that the client went away).
- `HTTPServer.stop_listening` closes the listening socket *and* every open connection, so new
  connections are refused (``ECONNREFUSED``) as if the server were down;
  `HTTPServer.start_listening` listens again on the same port.

Each connection is one task running h11's server state machine. Exceptions in a handler are bugs
in the fake: they propagate and fail the test.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, final

import h11
import trio

from tests.fakes.https import DROP, Drop, Request, Response

__all__ = ["DROP", "Drop", "HTTPServer", "Request", "Response", "Send", "StreamingResponse"]

_MAX_RECEIVE: Final = 65_536
_HOST: Final = "127.0.0.1"

Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StreamingResponse:
    """A chunked body written by ``body(send)``, its head sent with the first chunk.

    ``body`` returns None to end the body normally, or `DROP` to cut the connection mid-body.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: Callable[[Send], Awaitable[Drop | None]]


Handler = Callable[[Request], Awaitable[Response | StreamingResponse | Drop]]


@final
class HTTPServer:
    """Serve ``handler`` on ``127.0.0.1``: ``await nursery.start(server.run)`` → the port."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._nursery: trio.Nursery | None = None
        self._listener: trio.SocketListener | None = None
        self._connection_scopes: dict[int, trio.CancelScope] = {}
        self.port = 0
        self.connections = 0  #: connections accepted so far

    @property
    def open_connections(self) -> int:
        return len(self._connection_scopes)

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(port)`` once listening."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.start_listening()
                task_status.started(self.port)
                await trio.sleep_forever()
        finally:
            if self._listener is not None:
                self._listener.socket.close()
                self._listener = None

    def stop_listening(self) -> None:
        """Refuse new connections and close the open ones (the server is "down")."""
        if self._listener is not None:
            self._listener.socket.close()
            self._listener = None
        for scope in self._connection_scopes.values():
            scope.cancel()

    def start_listening(self) -> None:
        """Listen (again) on `port`; the first call picks a free port."""
        assert self._nursery is not None, "start_listening before run"
        if self._listener is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, self.port))
        sock.listen()
        self.port = sock.getsockname()[1]
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        self._listener = listener
        self._nursery.start_soon(self._accept, listener)

    async def _accept(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return  # stop_listening
            self._nursery.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        serial = self.connections
        scope = trio.CancelScope()
        self._connection_scopes[serial] = scope
        try:
            with scope:
                await self._serve_requests(serial, stream)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass  # the client hung up: only this connection ends
        finally:
            del self._connection_scopes[serial]
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _serve_requests(self, serial: int, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)

        async def next_event() -> h11.Event:
            while True:
                event = conn.next_event()
                if isinstance(event, h11.Event):
                    return event
                if event is h11.PAUSED:  # cannot happen: we only read after start_next_cycle
                    raise h11.RemoteProtocolError("h11 paused mid-request")
                conn.receive_data(bytes(await stream.receive_some(_MAX_RECEIVE)))

        while True:
            event = await next_event()
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                raise h11.RemoteProtocolError(f"expected a request, got {event!r}")
            arrived_at = trio.current_time()
            chunks = []
            while not isinstance(body_event := await next_event(), h11.EndOfMessage):
                if isinstance(body_event, h11.Data):
                    chunks.append(bytes(body_event.data))
                elif isinstance(body_event, h11.ConnectionClosed):
                    return
            request = Request(
                method=event.method.decode(),
                target=event.target.decode(),
                headers=tuple((k.decode().lower(), v.decode()) for k, v in event.headers),
                body=b"".join(chunks),
                arrived_at=arrived_at,
                connection=serial,
            )
            state = _Exchange()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_for_hangup, conn, stream, state, nursery.cancel_scope)
                state.keep_alive = await self._respond(conn, stream, request)
                nursery.cancel_scope.cancel()
            if state.client_gone or not state.keep_alive or conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _respond(
        self, conn: h11.Connection, stream: trio.SocketStream, request: Request
    ) -> bool:
        """Answer ``request``; False when the connection must close afterwards."""
        response = await self._handler(request)
        if isinstance(response, Drop):
            return False
        if isinstance(response, Response):
            headers = list(response.headers)
            if response.status not in (204, 304):  # RFC 9110 8.6: no Content-Length on these
                headers.append(("content-length", str(len(response.body))))
            out = conn.send(h11.Response(status_code=response.status, headers=headers)) or b""
            if response.body:
                out += conn.send(h11.Data(data=response.body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(out)
            return True
        # No Content-Length: h11 frames the body with chunked transfer encoding. The head goes
        # out with the first piece of the body, as Go's net/http (Ollama) sends it.
        head = h11.Response(status_code=response.status, headers=list(response.headers))
        head_sent = False

        async def send(data: bytes) -> None:
            nonlocal head_sent
            out = b""
            if not head_sent:
                out, head_sent = conn.send(head) or b"", True
            if data:
                out += conn.send(h11.Data(data=data)) or b""
            if out:
                await stream.send_all(out)

        if isinstance(await response.body(send), Drop):
            return False
        await send(b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return True


@dataclass
class _Exchange:
    keep_alive: bool = True
    client_gone: bool = False


async def _watch_for_hangup(
    conn: h11.Connection, stream: trio.SocketStream, state: _Exchange, scope: trio.CancelScope
) -> None:
    """Read while a request is answered; on EOF (or a reset) cancel the answer."""
    try:
        while data := await stream.receive_some(_MAX_RECEIVE):
            conn.receive_data(bytes(data))  # a pipelined next request: h11 keeps it
    except trio.BrokenResourceError:
        pass
    state.client_gone = True
    scope.cancel()
