"""`DuckDuckGoProvider`: DuckDuckGo's JavaScript-free results page, parsed with ``html.parser``.

Theory of operation
-------------------
``POST {base_url}/html/`` with the form fields ``q`` (the query) and ``kp`` (safe search: ``1``
strict, ``-2`` off) answers a whole HTML page. Each result is a ``div.result`` holding:

- ``a.result__a``: the title (its text, with ``<b>`` highlights) and the link. Links are usually
  DuckDuckGo redirects, ``//duckduckgo.com/l/?uddg=<the target, URL-encoded>&rut=…``, which we
  unwrap to the target;
- ``.result__snippet`` (an ``a`` or a ``div``): the snippet text.

Ads (``div.result--ad``) link to ``duckduckgo.com/y.js``: links that still point at DuckDuckGo
after unwrapping are dropped. A page without results has a ``.no-results`` element. A page with
neither results nor that marker is not a results page (DuckDuckGo changed its layout, or served a
challenge instead): `SearchUnparsable`. DuckDuckGo answers 202 with a challenge page when it
thinks we search too often: `SearchHTTPError` says so.

`parse_results_page` is the pure (sans-IO) part: it takes the page text, returns raw candidates;
the provider runs it in a worker thread (it takes milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final, final
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import trio

from trio_companion import __version__
from trio_companion.services.search.base import (
    DEFAULT_LIMIT,
    SearchResult,
    check_limit,
    tidy_results,
)
from trio_companion.services.search.errors import (
    SearchHTTPError,
    SearchTimeout,
    SearchUnparsable,
    SearchUnreachable,
)

__all__ = ["DEFAULT_BASE_URL", "DuckDuckGoProvider", "parse_results_page", "unwrap_link"]

NAME: Final = "DuckDuckGo"
DEFAULT_BASE_URL: Final = "https://html.duckduckgo.com"
# DuckDuckGo's ``kp`` URL parameter (its "URL parameters" help page): 1 strict, -2 off.
SAFE_ON: Final = "1"
SAFE_OFF: Final = "-2"
# An honest client name; the HTML endpoint is meant for browsers without JavaScript.
USER_AGENT: Final = f"Mozilla/5.0 (compatible; trio_companion/{__version__})"
# Elements that have no end tag: they must not count as nesting.
_VOID: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


def unwrap_link(href: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The absolute target of a result link: ``/l/?uddg=<target>`` redirects unwrapped."""
    url = urljoin(base_url + "/html/", href.strip())
    parts = urlsplit(url)
    if parts.path == "/l/":
        target = parse_qs(parts.query).get("uddg")
        if target:
            return target[0]
    return url


@dataclass(slots=True)
class _Candidate:
    href: str
    title: list[str] = field(default_factory=list)
    snippet: list[str] = field(default_factory=list)


class _ResultsParser(HTMLParser):
    """Collects title, link and snippet of each result, and whether the page looks right."""

    def __init__(self) -> None:
        # Entities are passed through (handle_entityref) and decoded once, by `clean_text`.
        super().__init__(convert_charrefs=False)
        self.candidates: list[_Candidate] = []
        self.no_results = False
        self._into: list[str] | None = None  # the text being collected
        self._depth = 0  # open elements inside the one being collected

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._into is not None:
            if tag not in _VOID:
                self._depth += 1
            return
        classes = set((dict(attrs).get("class") or "").split())
        if "no-results" in classes:
            self.no_results = True
        if tag == "a" and "result__a" in classes:
            candidate = _Candidate(href=dict(attrs).get("href") or "")
            self.candidates.append(candidate)
            self._collect(candidate.title, tag)
        elif "result__snippet" in classes and self.candidates:
            self._collect(self.candidates[-1].snippet, tag)

    def handle_endtag(self, tag: str) -> None:
        if self._into is None or tag in _VOID:
            return
        self._depth -= 1
        if self._depth <= 0:
            self._into = None

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            self._into.append(data)

    def handle_entityref(self, name: str) -> None:
        self.handle_data(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.handle_data(f"&#{name};")

    def _collect(self, into: list[str], tag: str) -> None:
        if tag in _VOID:
            return
        self._into = into
        self._depth = 1


def parse_results_page(page: str, base_url: str = DEFAULT_BASE_URL) -> list[tuple[str, str, str]]:
    """Raw ``(title, url, snippet)`` candidates of a results page, links unwrapped.

    Raises `SearchUnparsable` when ``page`` is neither a results page nor a "no results" page.
    Links that stay on DuckDuckGo (ads) are left out; the rest is for `tidy_results`.
    """
    parser = _ResultsParser()
    parser.feed(page)
    parser.close()
    if not parser.candidates and not parser.no_results:
        raise SearchUnparsable(NAME, "the page had no results list")
    candidates: list[tuple[str, str, str]] = []
    for candidate in parser.candidates:
        url = unwrap_link(candidate.href, base_url)
        host = (urlsplit(url).hostname or "").lower()
        if host == "duckduckgo.com" or host.endswith(".duckduckgo.com"):
            continue
        candidates.append(("".join(candidate.title), url, "".join(candidate.snippet)))
    return candidates


@final
class DuckDuckGoProvider:
    """Web search through DuckDuckGo's HTML results page (no API key, no JavaScript).

    ``http`` is the app's shared client; its timeouts are the only ones applied here.
    ``base_url`` is for tests (a fake server).
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    @property
    def name(self) -> str:
        return NAME

    async def search(
        self, query: str, *, limit: int = DEFAULT_LIMIT, safe: bool = True
    ) -> list[SearchResult]:
        """See `SearchProvider.search`."""
        check_limit(limit)
        if not query.strip():
            return []
        form = {"q": query, "kp": SAFE_ON if safe else SAFE_OFF}
        try:
            response = await self._http.post(
                f"{self._base_url}/html/", data=form, headers={"User-Agent": USER_AGENT}
            )
        except httpx.ConnectTimeout:
            raise SearchUnreachable(NAME, self._base_url) from None
        except httpx.TimeoutException:
            raise SearchTimeout(NAME) from None
        except httpx.TransportError:
            raise SearchUnreachable(NAME, self._base_url) from None
        if response.status_code != 200:
            # Its error pages are HTML: no detail worth showing a user.
            raise SearchHTTPError(NAME, response.status_code)
        # html.parser takes ~10 ms for a page of 30 results: too long for the trio thread.
        candidates = await trio.to_thread.run_sync(
            parse_results_page, response.text, self._base_url
        )
        return tidy_results(candidates, limit)
