"""Errors of the web search providers (`trio_companion.services.search`).

::

    CompanionError                 (trio_companion.errors)
    └── SearchError                (this module: root of the web search providers)
        ├── SearchUnreachable      (no connection to the search server, or it hung up)
        ├── SearchTimeout          (the search took longer than the caller's deadline or the
        │                           HTTP client's read timeout)
        ├── SearchHTTPError        (the server answered with an error status)
        ├── JSONOutputDisabled     (SearXNG answered 403 to ``format=json``: JSON is not enabled)
        └── SearchUnparsable       (the answer was not the JSON / HTML page we expected)

Who raises what: the providers (`searxng`, `duckduckgo`) turn every failure of the HTTP exchange
into one of these leaves; nothing else escapes a provider on purpose (an ``httpx`` exception
reaching a caller is a bug). The ``/search`` command raises nothing itself, but builds a
`SearchTimeout` for its message when its own deadline fires.

"Broken by the peer" vs "closed by us": these errors all mean the search server (or the network)
failed us. A caller that is cancelled gets trio's ``Cancelled``, never one of these.

``str(error)`` is a sentence a Discord user can read and act on; it never shows a password that
may be part of a configured URL.
"""

from __future__ import annotations

from typing import Final, final
from urllib.parse import urlsplit, urlunsplit

from trio_companion.errors import CompanionError

__all__ = [
    "JSONOutputDisabled",
    "SearchError",
    "SearchHTTPError",
    "SearchTimeout",
    "SearchUnparsable",
    "SearchUnreachable",
]

# Server texts are shown to users: keep them to a readable length.
_MAX_DETAIL: Final = 200


def _public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, so it is safe to show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _short(detail: str) -> str:
    detail = " ".join(detail.split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return detail


class SearchError(CompanionError):
    """Root of the errors raised on purpose by the web search providers.

    `provider` is the provider's display name ("SearXNG", "DuckDuckGo").
    """

    def __init__(self, provider: str, message: str) -> None:
        self.provider = provider
        super().__init__(message)


@final
class SearchUnreachable(SearchError):
    """No connection to the search server at `url` (refused, unknown host, TLS failure, connect
    timeout), or it closed the connection before answering."""

    def __init__(self, provider: str, url: str) -> None:
        self.url = _public_url(url)
        super().__init__(
            provider, f"Can't reach {provider} at {self.url}: is it running and reachable?"
        )


@final
class SearchTimeout(SearchError):
    """The search did not finish in time (the caller's deadline or the client's read timeout)."""

    def __init__(self, provider: str) -> None:
        super().__init__(
            provider, f"{provider} took too long to answer the search: try again in a moment."
        )


@final
class SearchHTTPError(SearchError):
    """The search server answered with an unexpected `status` (`detail`: its shortened text).

    DuckDuckGo answers 202 (with a challenge page) and SearXNG's limiter 429 when they think we
    search too often; the message says so.
    """

    def __init__(self, provider: str, status: int, detail: str = "") -> None:
        self.status = status
        self.detail = _short(detail)
        if status in (202, 429):
            message = (
                f"{provider} is limiting our searches right now (HTTP {status}): "
                "try again in a few minutes."
            )
        else:
            message = f"{provider} answered the search with an error (HTTP {status})"
            message += f": {self.detail}" if self.detail else "."
        super().__init__(provider, message)


@final
class JSONOutputDisabled(SearchError):
    """SearXNG answered 403 to ``format=json``: its ``search.formats`` setting lacks ``json``."""

    status: Final = 403

    def __init__(self) -> None:
        super().__init__(
            "SearXNG",
            "SearXNG refused JSON output: enable `json` in its settings.yml formats.",
        )


@final
class SearchUnparsable(SearchError):
    """The answer was not what the provider's API or page layout promises (`detail` says how)."""

    def __init__(self, provider: str, detail: str) -> None:
        self.detail = _short(detail)
        super().__init__(provider, f"{provider} sent an answer I couldn't read ({self.detail}).")
