"""Errors of the `gateway` package (Discord gateway, REST and interactions).

::

    CompanionError                          (trio_companion.errors)
    └── GatewayError                        (this module: root of the gateway package)
        ├── PayloadTooLarge                 (protocol.encode_*: we refused to send > 4096 bytes)
        ├── MalformedFrame                  (protocol.decode_*: Discord sent bytes we cannot parse)
        ├── DecompressionError              (compression: a compressed stream is corrupt or too big)
        ├── UnsupportedCompression          (compression.make_inflater: unknown or not installed)
        ├── GatewayClosed                   (gateway shell: connection ended; reconnect per action)
        └── FatalGatewayClose               (gateway shell: Discord refused us; stop, exit 2)

Who raises what:

- The sans-IO core (`protocol`, `events`, `compression`) raises `PayloadTooLarge`,
  `MalformedFrame`, `DecompressionError` and `UnsupportedCompression`. It never raises for an event
  it does not know or cannot validate: those pass through as `events.UnknownEvent`.
- The trio shell raises `GatewayClosed` when a connection ends, carrying the `CloseAction` that
  `protocol.close_info` gives for the close code; its reconnect loop consumes it. A close code whose
  action is FATAL becomes `FatalGatewayClose` instead, which no loop catches: it reaches the CLI,
  which prints ``str(error)`` (one line the user can act on) and exits with status 2.
- "Closed by us" vs "broken by the peer" follows trio: using a gateway after our own ``aclose()``
  raises `trio.ClosedResourceError`; `GatewayClosed` means the connection ended under us, and its
  ``by_peer`` field says whether Discord closed it (a close frame or a dropped socket) or we
  closed it to reconnect (zombie connection, op 7 Reconnect, op 9 Invalid Session).

New leaves (REST errors, for example) go directly under `GatewayError`, with typed fields and a
docstring saying who raises them and when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from trio_companion.errors import CompanionError

if TYPE_CHECKING:
    from trio_companion.gateway.protocol import CloseAction

__all__ = [
    "DecompressionError",
    "FatalGatewayClose",
    "GatewayClosed",
    "GatewayError",
    "MalformedFrame",
    "PayloadTooLarge",
    "UnsupportedCompression",
]


class GatewayError(CompanionError):
    """Root of the errors raised on purpose by `trio_companion.gateway`."""


@final
class PayloadTooLarge(GatewayError):
    """An outgoing gateway payload is larger than Discord accepts.

    Raised by the ``protocol.encode_*`` functions before anything is sent: Discord closes the
    connection with 4002 on a payload over `limit` bytes, so refusing it here keeps the session.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"a gateway payload of {size} bytes exceeds Discord's limit of {limit} bytes"
        )
        self.size = size
        self.limit = limit


@final
class MalformedFrame(GatewayError):
    """A frame from Discord is not a valid gateway payload (bad JSON, or no ``op``).

    Raised by ``protocol.decode_frame`` and the decoders of non-dispatch payloads (Hello). The
    shell treats it like a broken connection: close with a resumable code and resume.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(f"Discord sent a malformed gateway payload: {detail}")
        self.detail = detail


@final
class DecompressionError(GatewayError):
    """The compressed gateway stream is corrupt, or a message inflates past the size limit.

    Raised by the inflaters in `compression`. ``limit`` is the size limit that was exceeded, or
    ``None`` when the data itself is corrupt. The inflater is unusable afterwards: the stream
    state is lost, so the shell must drop the connection and resume on a new one.
    """

    def __init__(self, detail: str, *, limit: int | None = None) -> None:
        super().__init__(f"cannot decompress the gateway stream: {detail}")
        self.detail = detail
        self.limit = limit


@final
class UnsupportedCompression(GatewayError):
    """The configured transport compression is unknown or its library is not installed.

    Raised by ``compression.make_inflater``; ``available`` lists what would work.
    """

    def __init__(self, name: str, available: tuple[str, ...], hint: str = "") -> None:
        choices = ", ".join(available)
        super().__init__(
            f"gateway compression {name!r} is not available (choose one of: {choices}){hint}"
        )
        self.name = name
        self.available = available


@final
class GatewayClosed(GatewayError):
    """A gateway connection ended; ``action`` says how to reconnect.

    Raised by the gateway shell's connection task and caught by its reconnect loop. ``code`` is
    the websocket close code, or ``None`` when the socket dropped without one. ``by_peer`` is true
    when Discord closed or broke the connection, false when we closed it in order to reconnect.
    ``action`` is never FATAL here: fatal closes raise `FatalGatewayClose`.
    """

    def __init__(
        self, code: int | None, reason: str, action: CloseAction, *, by_peer: bool = True
    ) -> None:
        who = "Discord closed" if by_peer else "we closed"
        shown = "no close code" if code is None else f"code {code}"
        super().__init__(
            f"{who} the gateway connection ({shown})" + (f": {reason}" if reason else "")
        )
        self.code = code
        self.reason = reason
        self.action = action
        self.by_peer = by_peer


@final
class FatalGatewayClose(GatewayError):
    """Discord closed the gateway with a code that reconnecting cannot fix.

    Raised by the gateway shell for the FATAL close codes (4004, 4010-4014). ``str(error)`` is
    ``explanation``: one line naming the cause and the fix. The CLI prints it and exits with 2.
    """

    def __init__(self, code: int, explanation: str) -> None:
        super().__init__(explanation)
        self.code = code
        self.explanation = explanation
