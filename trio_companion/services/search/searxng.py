"""`SearXNGProvider`: a SearXNG instance's JSON API.

``GET {url}/search?q=…&format=json&safesearch=1`` answers
``{"results": [{"title": …, "url": …, "content": …}, …], …}``. SearXNG only serves JSON when
``json`` is listed in ``search.formats`` of its ``settings.yml``; otherwise it answers 403, which
becomes `JSONOutputDisabled` with that advice.
"""

from __future__ import annotations

from typing import Final, final

import httpx
import msgspec

from trio_companion.services.search.base import (
    DEFAULT_LIMIT,
    SearchResult,
    check_limit,
    tidy_results,
)
from trio_companion.services.search.errors import (
    JSONOutputDisabled,
    SearchHTTPError,
    SearchTimeout,
    SearchUnparsable,
    SearchUnreachable,
)

__all__ = ["SearXNGProvider"]

NAME: Final = "SearXNG"
# SearXNG's safesearch levels (docs "Search API"): 0 off, 1 moderate, 2 strict.
SAFESEARCH_ON: Final = "1"
SAFESEARCH_OFF: Final = "0"


class _Item(msgspec.Struct):
    # Engines leave fields out or null; unknown fields (engine, score, …) are ignored.
    title: str | None = None
    url: str | None = None
    content: str | None = None


class _Answer(msgspec.Struct):
    results: list[_Item]


_decoder: Final = msgspec.json.Decoder(_Answer)


@final
class SearXNGProvider:
    """Web search through the SearXNG instance at ``url`` (its root, e.g. ``http://host:8888``).

    ``http`` is the app's shared client; its timeouts are the only ones applied here.
    """

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url.rstrip("/")

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
        params = {
            "q": query,
            "format": "json",
            "safesearch": SAFESEARCH_ON if safe else SAFESEARCH_OFF,
        }
        try:
            response = await self._http.get(
                f"{self._url}/search", params=params, headers={"Accept": "application/json"}
            )
        except httpx.ConnectTimeout:
            raise SearchUnreachable(NAME, self._url) from None
        except httpx.TimeoutException:
            raise SearchTimeout(NAME) from None
        except httpx.TransportError:
            raise SearchUnreachable(NAME, self._url) from None
        if response.status_code == 403:
            raise JSONOutputDisabled()
        if response.status_code != 200:
            # An HTML error page is no message for a user: keep only plain-text details.
            html_page = "html" in response.headers.get("content-type", "")
            raise SearchHTTPError(NAME, response.status_code, "" if html_page else response.text)
        try:
            answer = _decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise SearchUnparsable(NAME, f"not the JSON search API: {exc}") from None
        return tidy_results(
            ((i.title or "", i.url or "", i.content or "") for i in answer.results), limit
        )
