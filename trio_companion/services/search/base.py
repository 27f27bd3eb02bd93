"""The web search capability the companion needs, apart from any search engine.

Providers (``searxng.py``, ``duckduckgo.py``) implement `SearchProvider`; the ``/search`` command
asks for a `SearchProvider`, never for a provider class. Every provider returns its results
through `tidy_results`, so all of them keep the same promises:

- at most ``limit`` results, in the engine's order;
- only ``http``/``https`` URLs;
- titles and snippets as plain text: HTML entities decoded, runs of whitespace collapsed, long
  texts shortened;
- no two results with the same URL (ignoring the fragment, a trailing slash and the case of the
  scheme and host).

Safe search is on unless the caller turns it off. Errors are in
`trio_companion.services.search.errors`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import msgspec

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_SNIPPET_CHARS",
    "MAX_TITLE_CHARS",
    "MAX_URL_CHARS",
    "SearchProvider",
    "SearchResult",
    "check_limit",
    "clean_text",
    "tidy_results",
]

# The predecessor gave the model 3 results; five give a better answer and still fit a prompt.
DEFAULT_LIMIT: Final = 5
# What the model and users see of one result: enough for a sentence or two.
MAX_TITLE_CHARS: Final = 200
MAX_SNIPPET_CHARS: Final = 400
# Longer URLs are mostly tracking noise, and five of them must fit one Discord message (2000).
MAX_URL_CHARS: Final = 300


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    """One web result: plain-text `title` and `snippet`, an absolute http(s) `url`."""

    title: str
    url: str
    snippet: str = ""


class SearchProvider(Protocol):
    """A web search engine. Implementations are safe to share between tasks."""

    @property
    def name(self) -> str:
        """A display name for messages ("SearXNG")."""
        ...

    async def search(
        self, query: str, *, limit: int = DEFAULT_LIMIT, safe: bool = True
    ) -> list[SearchResult]:
        """Up to ``limit`` results for ``query`` (see the module docstring for their promises).

        An empty result list means the engine found nothing. Raises a
        `trio_companion.services.search.errors.SearchError` when the search failed, and
        ``ValueError`` when ``limit`` is below 1. Takes no timeout: put a deadline around the
        call (the HTTP client's timeouts still apply).
        """
        ...


def clean_text(text: str, limit: int) -> str:
    """``text`` with HTML entities decoded, whitespace collapsed, cut to ``limit`` characters."""
    text = " ".join(html.unescape(text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _dedup_key(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _usable_url(url: str) -> bool:
    if len(url) > MAX_URL_CHARS or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def tidy_results(candidates: Iterable[tuple[str, str, str]], limit: int) -> list[SearchResult]:
    """The first ``limit`` usable results of ``(title, url, snippet)`` raw candidates.

    Titles and snippets are cleaned with `clean_text` (entities may still be encoded); a result
    without a title is titled with its URL.
    """
    results: list[SearchResult] = []
    seen: set[str] = set()
    for title, raw_url, snippet in candidates:
        if len(results) >= limit:
            break
        url = raw_url.strip()
        if not _usable_url(url):
            continue
        key = _dedup_key(url)
        if key in seen:
            continue
        seen.add(key)
        results.append(
            SearchResult(
                title=clean_text(title, MAX_TITLE_CHARS) or url,
                url=url,
                snippet=clean_text(snippet, MAX_SNIPPET_CHARS),
            )
        )
    return results


def check_limit(limit: int) -> None:
    """Raise ``ValueError`` unless ``limit`` is at least 1 (for providers)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
