"""Errors of the voice converters (`trio_companion.services.rvc`).

::

    CompanionError                 (trio_companion.errors)
    └── RVCError                   (this module: root of the voice converters)
        ├── RVCUnavailable         (no connection to the server, or it took too long)
        ├── RVCFailed              (the server answered, but with an error instead of audio)
        └── RVCModelNotFound       (the server has no voice model of that name)

Who raises what: the backends (`RVCHttpConverter`, `RVCWebUIConverter`) turn every failure of
their HTTP exchanges into one of these leaves; audio the server sends back that cannot be decoded
is `RVCFailed` too. `SpeechConverter` catches them all and speaks the unconverted audio instead.
Nothing else escapes a backend on purpose: an ``httpx`` exception reaching a caller is a bug.

"Broken by the peer" vs "stopped by us": these errors all mean the server (or the network)
failed us. When the *caller* gives up (its deadline, a cancelled voice session), trio's
``Cancelled`` propagates as usual and no error is raised.

``str(error)`` is a sentence a Discord user can read; it never holds a secret nor a traceback.
"""

from __future__ import annotations

from typing import Final, final
from urllib.parse import urlsplit, urlunsplit

import httpx

from trio_companion.errors import CompanionError

__all__ = ["RVCError", "RVCFailed", "RVCModelNotFound", "RVCUnavailable", "transport_error"]

# Server error texts are shown to users: keep them to a readable length. RVC-WebUI answers with
# whole Python tracebacks, of which the last line is the useful one.
_MAX_DETAIL: Final = 300


def _public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, so it is safe to show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def short_detail(detail: str) -> str:
    """The last non-empty line of ``detail`` (a traceback's message), squashed and shortened."""
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    text = " ".join(lines[-1].split()) if lines else ""
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return text


class RVCError(CompanionError):
    """Root of the errors raised on purpose by the voice converters."""


@final
class RVCUnavailable(RVCError):
    """No answer from the server at `url`: the connection failed, or it took too long.

    Raised by every backend call when connecting fails (refused, unknown host, connect timeout),
    when the server hangs up before answering, or when the injected client's read timeout runs out
    (`timed_out`): a conversion that takes longer than that is treated as a server in trouble.
    """

    def __init__(self, url: str, *, timed_out: bool = False) -> None:
        self.url = _public_url(url)
        self.timed_out = timed_out
        if timed_out:
            message = f"The voice conversion server at {self.url} took too long to answer."
        else:
            message = f"Can't reach the voice conversion server at {self.url}: is it running?"
        super().__init__(message)


@final
class RVCFailed(RVCError):
    """The server answered, but with an error: HTTP `status` (200 for an error inside a 2xx reply).

    `detail` is the server's own explanation, shortened to its last line; `hint`, when set, says
    what to do about it (for RVC-WebUI: run the bot on the WebUI's host, see `RVCWebUIConverter`).
    """

    def __init__(self, status: int, detail: str, *, hint: str | None = None) -> None:
        self.status = status
        self.detail = short_detail(detail) or "no details"
        self.hint = hint
        detail_text = self.detail if self.detail.endswith((".", "!", "?")) else self.detail + "."
        if status >= 400:
            message = f"The voice conversion server failed (HTTP {status}): {detail_text}"
        else:
            message = f"The voice conversion server failed: {detail_text}"
        if hint:
            message += " " + hint
        super().__init__(message)


@final
class RVCModelNotFound(RVCError):
    """The server has no voice model `model`; `available` lists the ones it has, when known."""

    def __init__(self, model: str, available: tuple[str, ...] = ()) -> None:
        self.model = model
        self.available = available
        message = f"The voice model '{model}' isn't on the voice conversion server"
        if available:
            shown = ", ".join(available[:10]) + (", …" if len(available) > 10 else "")
            message += f" (it has: {shown})."
        else:
            message += ": check the model name in the configuration."
        super().__init__(message)


def transport_error(url: str, exc: httpx.TransportError) -> RVCUnavailable:
    """The `RVCUnavailable` for an ``httpx`` failure before (or while) reading a response.

    A connect timeout counts as "can't reach"; any other timeout (the wait for the converted
    audio) as "took too long".
    """
    timed_out = isinstance(exc, httpx.TimeoutException) and not isinstance(
        exc, httpx.ConnectTimeout
    )
    return RVCUnavailable(url, timed_out=timed_out)
