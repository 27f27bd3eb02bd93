"""Fake web search servers: SearXNG's JSON API and DuckDuckGo's HTML page, on loopback.

Both run on `tests.fakes.http.HTTPServer`: ``url = await nursery.start(fake.run)``.

`FakeSearXNG` answers ``GET /search?q=…&format=json&safesearch=…`` with
``{"query": …, "results": [{"title", "url", "content", "engine", …}], …}`` as SearXNG does.
`FakeDuckDuckGo` answers ``POST /html/`` (form ``q``, ``kp``) with a page shaped like
html.duckduckgo.com's: ``div.result`` blocks with an ``a.result__a`` title whose link is a
``//duckduckgo.com/l/?uddg=<target>&rut=…`` redirect, an ``a.result__snippet``, an ad block
first (``result--ad``, linking to ``duckduckgo.com/y.js``), and a ``div.no-results`` when there
is nothing.

Knobs (attributes; set them before or between requests):

- ``results``: the `FakeResult`s to serve (default: `SAMPLE_RESULTS`);
- ``status``: answer every search with this error status;
- ``down = True``: refuse connections (the server is not running);
- ``delay``: seconds (trio's clock) before answering;
- `FakeSearXNG` only: ``json_disabled = True``: answer ``format=json`` with 403, as SearXNG
  does when ``json`` is not in ``search.formats``;
- ``body``: when set, served as is with status 200 (a broken or foreign page).

Records: ``requests`` (every `tests.fakes.http.Request`), and ``queries``: a `SearchQuery` per
search, with its query text and safe-search value as sent.

Fixtures (registered in ``tests/conftest.py``): `fake_searxng` and `fake_duckduckgo`, running
for the test in its nursery.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, quote

import pytest
import trio

from tests.fakes.http import HTTPServer, Request, Response

__all__ = [
    "SAMPLE_RESULTS",
    "FakeDuckDuckGo",
    "FakeResult",
    "FakeSearXNG",
    "SearchQuery",
    "fake_duckduckgo",
    "fake_searxng",
]


@dataclass(frozen=True, slots=True)
class FakeResult:
    title: str
    url: str
    content: str = ""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search as the server saw it: ``safe`` is SearXNG's ``safesearch`` or DDG's ``kp``."""

    q: str
    safe: str | None
    params: dict[str, str]


SAMPLE_RESULTS: Final = (
    FakeResult(
        "Trio: a friendly Python library for async concurrency and I/O",
        "https://trio.readthedocs.io/en/stable/",
        "Trio is a friendly Python library for async concurrency & I/O.",
    ),
    FakeResult(
        "python-trio/trio - GitHub",
        "https://github.com/python-trio/trio",
        "Trio \u2013 a friendly Python library for async concurrency and I/O.",
    ),
    FakeResult(
        "Structured concurrency - Wikipedia",
        "https://en.wikipedia.org/wiki/Structured_concurrency",
        "Structured concurrency is a programming paradigm.",
    ),
)

_HTML: Final = (("content-type", "text/html; charset=utf-8"),)


class _FakeSearchServer:
    def __init__(self, results: Sequence[FakeResult] = SAMPLE_RESULTS) -> None:
        self.results: Sequence[FakeResult] = results
        self.status: int | None = None
        self.delay = 0.0
        self.body: bytes | None = None
        self.requests: list[Request] = []
        self.queries: list[SearchQuery] = []
        self._server = HTTPServer(self._handle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def down(self) -> bool:
        return not self._server.listening

    @down.setter
    def down(self, value: bool) -> None:
        if value:
            self._server.stop_listening()
        else:
            self._server.start_listening()

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(url)`` once listening."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._server.run)
            task_status.started(self.url)

    async def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        if self.delay:
            await trio.sleep(self.delay)
        return self._answer(request)

    def _answer(self, request: Request) -> Response:
        raise NotImplementedError


class FakeSearXNG(_FakeSearchServer):
    """SearXNG's ``/search`` JSON API; see the module docstring for the knobs."""

    def __init__(self, results: Sequence[FakeResult] = SAMPLE_RESULTS) -> None:
        super().__init__(results)
        self.json_disabled = False

    def _answer(self, request: Request) -> Response:
        if (request.method, request.path) != ("GET", "/search"):
            return Response(404, _HTML, b"<h1>Not Found</h1>")
        params = request.query
        self.queries.append(SearchQuery(params.get("q", ""), params.get("safesearch"), params))
        if self.status is not None:
            return Response(self.status, _HTML, b"<html><h1>Internal Server Error</h1></html>")
        if self.json_disabled and params.get("format") == "json":
            return Response(403, _HTML, b"<html><h1>Forbidden</h1></html>")
        if self.body is not None:
            return Response(200, (("content-type", "application/json"),), self.body)
        results = [
            {
                "title": r.title,
                "url": r.url,
                "content": r.content,
                "engine": "fake",
                "engines": ["fake"],
                "score": 1.0,
                "category": "general",
            }
            for r in self.results
        ]
        answer = {
            "query": params.get("q", ""),
            "number_of_results": 0,
            "results": results,
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
        return Response(200, (("content-type", "application/json"),), json.dumps(answer).encode())


class FakeDuckDuckGo(_FakeSearchServer):
    """html.duckduckgo.com's ``POST /html/``; see the module docstring for the knobs."""

    def __init__(self, results: Sequence[FakeResult] = SAMPLE_RESULTS) -> None:
        super().__init__(results)
        self.wrap_links = True  #: links as ``//duckduckgo.com/l/?uddg=`` redirects
        self.with_ad = True

    def _answer(self, request: Request) -> Response:
        if (request.method, request.path) != ("POST", "/html/"):
            return Response(404, _HTML, b"<html>Not found</html>")
        form = dict(parse_qsl(request.body.decode()))
        self.queries.append(SearchQuery(form.get("q", ""), form.get("kp"), form))
        if self.status is not None:
            return Response(self.status, _HTML, b"<html><body>error</body></html>")
        if self.body is not None:
            return Response(200, _HTML, self.body)
        return Response(200, _HTML, results_page(form.get("q", ""), self.results, self).encode())


def _link(url: str, wrap: bool) -> str:
    if not wrap:
        return html.escape(url)
    return html.escape(f"//duckduckgo.com/l/?uddg={quote(url, safe='')}&rut=0123abcd")


def results_page(query: str, results: Sequence[FakeResult], fake: FakeDuckDuckGo) -> str:
    """A page shaped like html.duckduckgo.com's answer (2024 layout, trimmed)."""
    blocks: list[str] = []
    if fake.with_ad and results:
        blocks.append(
            '<div class="result results_links results_links_deep result--ad ">'
            '<div class="links_main links_deep result__body"><h2 class="result__title">'
            '<a rel="nofollow" class="result__a" '
            'href="https://duckduckgo.com/y.js?ad_domain=shop.example&amp;ad_provider=bing">'
            "Buy <b>things</b></a></h2>"
            '<a class="result__snippet" href="https://duckduckgo.com/y.js?ad_domain=x">'
            "An ad.</a></div></div>"
        )
    for result in results:
        link = _link(result.url, fake.wrap_links)
        # Highlights and entities as DuckDuckGo writes them.
        title = html.escape(result.title).replace("Trio", "<b>Trio</b>")
        snippet = html.escape(result.content).replace("Python", "<b>Python</b>")
        blocks.append(
            f'<div class="result results_links results_links_deep web-result ">\n'
            f'  <div class="links_main links_deep result__body">\n'
            f'    <h2 class="result__title">\n'
            f'      <a rel="nofollow" class="result__a" href="{link}">{title}</a>\n'
            f"    </h2>\n"
            f'    <div class="result__extras"><div class="result__extras__url">\n'
            f'      <span class="result__icon"><img class="result__icon__img" width="16" '
            f'height="16" alt="" src="//external-content.duckduckgo.com/ip3/x.ico" name="i15" />'
            f"</span>\n"
            f'      <a class="result__url" href="{link}">{html.escape(result.url)}</a>\n'
            f"    </div></div>\n"
            f'    <a class="result__snippet" href="{link}">{snippet}</a>\n'
            f'    <div class="clear"></div>\n'
            f"  </div>\n"
            f"</div>"
        )
    if not results:
        blocks.append(
            '<div class="result results_links results_links_deep result--no-result">'
            '<div class="no-results">No  results.</div></div>'
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="UTF-8">'
        f"<title>{html.escape(query)} at DuckDuckGo</title></head>\n<body>\n"
        '<div id="links" class="results">\n'
        + "\n".join(blocks)
        + '\n<div class="nav-link"><form action="/html/" method="post">'
        '<input type="submit" class="btn btn--alt" value="Next" />'
        f'<input type="hidden" name="q" value="{html.escape(query)}" /></form></div>\n'
        "</div>\n</body></html>\n"
    )


# --- fixtures (registered in tests/conftest.py) ----------------------------------------------


@pytest.fixture
async def fake_searxng(nursery: trio.Nursery) -> FakeSearXNG:
    """A running `FakeSearXNG` for the test's lifetime (stopped with its nursery)."""
    fake = FakeSearXNG()
    await nursery.start(fake.run)
    return fake


@pytest.fixture
async def fake_duckduckgo(nursery: trio.Nursery) -> FakeDuckDuckGo:
    """A running `FakeDuckDuckGo` for the test's lifetime (stopped with its nursery)."""
    fake = FakeDuckDuckGo()
    await nursery.start(fake.run)
    return fake
