"""A client websocket over a TLS stream that we own, for the main and the voice gateway.

trio-websocket's `open_websocket_url` lets the library close the TCP stream, and when the server
closes first the socket can be left unclosed (a ResourceWarning under test). Here we open the TLS
stream ourselves, run trio-websocket's reader task in our own nursery, and on the way out close
the stream forcefully and cancel that nursery, whoever closed the websocket first. Closing the
websocket itself (with which code, how long to wait) is the caller's business, inside the body.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
import trio_websocket

__all__ = ["open_tls_websocket"]


@asynccontextmanager
async def open_tls_websocket(
    url: str,
    ssl_context: ssl.SSLContext | None,
    *,
    connect_timeout: float,
    max_message_size: int,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """Connect to the ``wss://`` ``url`` (port kept), yield the websocket, close everything after.

    ``connect_timeout`` bounds the TCP + TLS connect and, separately, the websocket upgrade
    (`trio.TooSlowError`). Raises what connecting raises: `OSError`,
    `trio_websocket.HandshakeError`, `trio.BrokenResourceError`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with trio.open_nursery() as ws_nursery:
        with trio.fail_after(connect_timeout):
            stream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=ssl_context, https_compatible=True
            )
        try:
            with trio.fail_after(connect_timeout):
                ws = await trio_websocket.wrap_client_stream(
                    ws_nursery, stream, host, resource, max_message_size=max_message_size
                )
            yield ws
        finally:
            await trio.aclose_forcefully(stream)
            ws_nursery.cancel_scope.cancel()
