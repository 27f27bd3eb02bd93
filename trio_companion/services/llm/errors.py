"""Errors of the LLM backends (`trio_companion.services.llm`).

::

    CompanionError                 (trio_companion.errors)
    └── LLMError                   (this module: root of the LLM backends)
        ├── LLMUnreachable         (no connection to the server, or it hung up before answering)
        ├── ModelNotFound          (the server does not have the configured model)
        ├── LLMHTTPError           (the server answered with an error status or an error line)
        ├── LLMStreamCut           (a streamed reply ended without its final chunk)
        ├── LLMTimeout             (the server went quiet for longer than the read timeout)
        └── LLMBusy                (our per-minute budget is spent, or the server said 429/503)

Who raises what: the backends (`ollama`, `openai`) turn every failure of the HTTP exchange into
one of these leaves; `limits.LLMLimits.slot_nowait` raises `LLMBusy`. Nothing else escapes a
backend on purpose: an ``httpx`` exception reaching a caller is a bug.

"Broken by the peer" vs "closed by us": these errors all mean the server (or the network) failed
us. When the *caller* stops early (leaves ``stream_chat`` or is cancelled), no error is raised:
the response is closed and trio's ``Cancelled`` propagates as usual.

``str(error)`` is a sentence a Discord user can read and act on. It never includes the API key
(backends redact it from anything the server echoes back) nor a traceback.
"""

from __future__ import annotations

import math
from typing import Final, final
from urllib.parse import urlsplit, urlunsplit

from trio_companion.errors import CompanionError

__all__ = [
    "LLMBusy",
    "LLMError",
    "LLMHTTPError",
    "LLMStreamCut",
    "LLMTimeout",
    "LLMUnreachable",
    "ModelNotFound",
]

# Server error texts are shown to users: keep them to a readable length.
_MAX_DETAIL: Final = 300


def _public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, so it is safe to show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _short(detail: str) -> str:
    detail = " ".join(detail.split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return detail


class LLMError(CompanionError):
    """Root of the errors raised on purpose by the LLM backends."""


@final
class LLMUnreachable(LLMError):
    """No connection to the server at `url`, or it closed the connection before answering.

    Raised by every backend call when connecting fails (refused, unknown host, connect timeout,
    TLS failure) or when the server hangs up before sending a response head.
    """

    def __init__(self, url: str, *, provider: str = "ollama") -> None:
        self.url = _public_url(url)
        self.provider = provider
        hint = "is Ollama running?" if provider == "ollama" else "is the server running?"
        super().__init__(f"Can't reach the LLM server at {self.url}: {hint}")


@final
class ModelNotFound(LLMError):
    """The server does not have `model` (HTTP 404 naming the model).

    Raised by ``stream_chat``/``complete`` for the chat model and by ``embed`` for the embedding
    model. For Ollama the fix is ``ollama pull <model>``.
    """

    def __init__(self, model: str, provider: str) -> None:
        self.model = model
        self.provider = provider
        if provider == "ollama":
            message = (
                f"The model '{model}' isn't installed on Ollama: "
                f"run `ollama pull {model}` on the server, then try again."
            )
        else:
            message = (
                f"The LLM server has no model named '{model}': "
                "check the model name in the configuration."
            )
        super().__init__(message)


@final
class LLMHTTPError(LLMError):
    """The server reported an error: an HTTP error `status`, or an error line mid-stream.

    `detail` is the server's own explanation (shortened, the API key redacted). A mid-stream error
    line arrives after a 200 head, so `status` is then 200; `received_chars` says how much of
    the reply had been delivered before it.
    """

    def __init__(self, status: int, detail: str, *, received_chars: int = 0) -> None:
        self.status = status
        self.detail = _short(detail) or "no details"
        self.received_chars = received_chars
        if status in (401, 403):
            message = (
                f"The LLM server refused our credentials (HTTP {status}): {_sentence(self.detail)} "
                "Check the API key in the configuration."
            )
        elif status >= 400:
            message = (
                f"The LLM server answered with an error (HTTP {status}): {_sentence(self.detail)}"
            )
        else:
            message = f"The LLM server reported an error while replying: {_sentence(self.detail)}"
        super().__init__(message)


@final
class LLMStreamCut(LLMError):
    """A streamed reply ended without its final chunk (Ollama ``done``, OpenAI ``[DONE]``).

    Raised while iterating ``stream_chat`` when the connection breaks mid-stream or the body ends
    early. `received_chars` visible characters had been delivered: the reply so far is partial.
    """

    def __init__(self, received_chars: int) -> None:
        self.received_chars = received_chars
        if received_chars:
            message = (
                f"The reply was cut off after {received_chars} characters: "
                "the connection to the LLM server broke."
            )
        else:
            message = "The LLM server closed the connection before finishing its reply."
        super().__init__(message)


@final
class LLMTimeout(LLMError):
    """The server sent nothing for longer than the HTTP client's read (or write) timeout.

    The timeout is the one configured on the injected ``httpx.AsyncClient`` (``read_timeout``):
    it bounds the wait for the response head (model loading, the first token) and the gap between
    two chunks. `received_chars` visible characters had been delivered before it fired.
    """

    def __init__(self, received_chars: int = 0) -> None:
        self.received_chars = received_chars
        if received_chars:
            message = "The LLM server stopped in the middle of its reply and took too long."
        else:
            message = (
                "The LLM server took too long to answer: it may be loading the model or "
                "overloaded. Try again in a moment."
            )
        super().__init__(message)


@final
class LLMBusy(LLMError):
    """Too many requests: our own per-minute budget is spent, or the server said 429/503.

    `retry_after` is the number of seconds after which a retry may succeed, when known.
    """

    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after
        if retry_after is None:
            message = "The LLM is busy right now: try again in a moment."
        else:
            seconds = max(1, math.ceil(retry_after))
            unit = "second" if seconds == 1 else "seconds"
            message = f"The LLM is busy right now: try again in {seconds} {unit}."
        super().__init__(message)
