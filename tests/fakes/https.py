"""A small HTTP/1.1 keep-alive server over TLS on loopback, for fake Discord-like services.

`serve_https` listens on ``127.0.0.1`` on a random port, reports the port through
``task_status.started(port)`` and runs until cancelled. Each connection is one task running
h11's server state machine: read a request (headers and body), await ``handler(request)``,
write its `Response`, repeat while the client keeps the connection alive. A handler that returns
`DROP` makes the server close the connection without answering, which the client sees as a
dropped connection. Exceptions in the handler are bugs in the fake: they propagate and fail the
test. Clients that hang up mid-way, or fail the TLS handshake, only end their own connection.

The fake gateway sits beside it on its own port with the same CA (`tests.fakes.tls`).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final, final
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

__all__ = ["DROP", "Drop", "Handler", "Request", "Response", "serve_https"]

_MAX_RECEIVE: Final = 65_536


@dataclass(frozen=True, slots=True)
class Request:
    """One request as it crossed the wire; header names are lower-case."""

    method: str
    target: str  #: path and query, as sent
    headers: tuple[tuple[str, str], ...]
    body: bytes
    arrived_at: float  #: trio.current_time() when the request head was parsed
    connection: int  #: serial number of the connection it came on

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@final
class Drop:
    """The type of `DROP`: close the connection without answering."""


DROP: Final = Drop()

Handler = Callable[[Request], Awaitable[Response | Drop]]


@dataclass
class _Counter:
    connections: int = field(default=0)


async def serve_https(
    handler: Handler,
    *,
    ssl_context: ssl.SSLContext,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` over HTTPS until cancelled; ``task_status.started(port)`` once up."""
    counter = _Counter()
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SSLListener[trio.SocketStream]] = await nursery.start(
            partial(
                trio.serve_ssl_over_tcp,
                partial(_serve_connection, handler, counter),
                0,
                ssl_context,
                host=host,
                https_compatible=True,
            )
        )
        transport = listeners[0].transport_listener
        assert isinstance(transport, trio.SocketListener)
        port: int = transport.socket.getsockname()[1]
        task_status.started(port)


async def _serve_connection(
    handler: Handler, counter: _Counter, stream: trio.SSLStream[trio.SocketStream]
) -> None:
    counter.connections += 1
    serial = counter.connections
    try:
        await _serve_requests(handler, serial, stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
        pass  # the client hung up, or the TLS handshake failed: only this connection ends
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)


async def _serve_requests(
    handler: Handler, serial: int, stream: trio.SSLStream[trio.SocketStream]
) -> None:
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
        response = await handler(request)
        if isinstance(response, Drop):
            return
        headers = list(response.headers)
        if response.status not in (204, 304):  # RFC 9110 8.6: no Content-Length on these
            headers.append(("content-length", str(len(response.body))))
        out = conn.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if response.body:
            out += conn.send(h11.Data(data=response.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(out)
        if conn.our_state is h11.MUST_CLOSE:
            return
        conn.start_next_cycle()
