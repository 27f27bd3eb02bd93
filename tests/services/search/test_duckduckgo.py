"""`DuckDuckGoProvider` against `FakeDuckDuckGo` over loopback HTTP; the page parser
(`parse_results_page`, `unwrap_link`) table-driven.

The provider parses pages in a worker thread, which the MockClock's autojump does not wait for
(it would jump to the test's deadline): tests that get a page run on the real clock, which
nothing here sleeps on; only the timeout and connection tests, which parse nothing, use it.
"""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from tests.fakes.search_servers import SAMPLE_RESULTS, FakeDuckDuckGo, FakeResult
from trio_companion.services.search.base import SearchResult
from trio_companion.services.search.duckduckgo import (
    DuckDuckGoProvider,
    parse_results_page,
    unwrap_link,
)
from trio_companion.services.search.errors import (
    SearchHTTPError,
    SearchTimeout,
    SearchUnparsable,
    SearchUnreachable,
)

DEADLINE = 30


@pytest.mark.parametrize(
    ("href", "url"),
    [
        (
            "//duckduckgo.com/l/?uddg=https%3A%2F%2Fexample.com%2Fa%3Fb%3D1%26c%3D2&rut=f00",
            "https://example.com/a?b=1&c=2",
        ),
        ("/l/?uddg=http%3A%2F%2Fexample.org%2F", "http://example.org/"),
        ("https://example.net/direct", "https://example.net/direct"),
        ("https://duckduckgo.com/y.js?ad_domain=x", "https://duckduckgo.com/y.js?ad_domain=x"),
    ],
)
def test_unwrap_link(href: str, url: str) -> None:
    assert unwrap_link(href) == url


def test_parse_a_results_page() -> None:
    page = """
    <div id="links" class="results">
      <div class="result result--ad"><a class="result__a"
        href="https://duckduckgo.com/y.js?ad_domain=shop">Ad</a></div>
      <div class="result">
        <h2 class="result__title"><a rel="nofollow" class="result__a"
          href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fa.example%2F&amp;rut=1">A <b>bold</b>
          &amp; title<br></a></h2>
        <a class="result__snippet" href="#">Snippet with <b>markup</b> &#x27;quoted&#x27;</a>
      </div>
      <div class="result">
        <a class="result__a" href="https://b.example/">B</a>
        <div class="result__snippet">Div <span>snippet</span><img src="x"> end</div>
      </div>
    </div>"""
    assert parse_results_page(page) == [
        (
            "A bold\n          &amp; title",
            "https://a.example/",
            "Snippet with markup &#x27;quoted&#x27;",
        ),
        ("B", "https://b.example/", "Div snippet end"),
    ]


def test_no_results_page_and_foreign_page() -> None:
    assert parse_results_page('<div class="no-results">No results.</div>') == []
    with pytest.raises(SearchUnparsable, match="no results list"):
        parse_results_page("<html><body><form id='challenge'>Are you human?</form></body></html>")


async def test_parses_the_page_and_sends_safe_search(
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
) -> None:
    provider = DuckDuckGoProvider(http, fake_duckduckgo.url)
    with trio.fail_after(DEADLINE):
        results = await provider.search("trio python")
    # Redirects unwrapped, the ad left out, highlights and entities cleaned.
    assert results == [
        SearchResult(title=r.title, url=r.url, snippet=r.content) for r in SAMPLE_RESULTS
    ]
    [query] = fake_duckduckgo.queries
    assert query.q == "trio python"
    assert query.safe == "1"
    [request] = fake_duckduckgo.requests
    assert (request.method, request.path) == ("POST", "/html/")
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert "trio_companion" in (request.header("user-agent") or "")


async def test_safe_search_can_be_turned_off(
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
) -> None:
    with trio.fail_after(DEADLINE):
        await DuckDuckGoProvider(http, fake_duckduckgo.url).search("q", safe=False)
    assert fake_duckduckgo.queries[0].safe == "-2"


async def test_limit_dedup_and_direct_links(
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
) -> None:
    fake_duckduckgo.wrap_links = False
    fake_duckduckgo.results = [
        FakeResult("One", "https://one.example/x", "first"),
        FakeResult("One again", "https://one.example/x#top", "same page"),
        *(FakeResult(f"Page {n}", f"https://p{n}.example/", "") for n in range(10)),
    ]
    provider = DuckDuckGoProvider(http, fake_duckduckgo.url)
    with trio.fail_after(DEADLINE):
        limited = await provider.search("q", limit=2)
        default = await provider.search("q")
    assert [r.url for r in limited] == ["https://one.example/x", "https://p0.example/"]
    assert len(default) == 5


async def test_no_results(
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
) -> None:
    fake_duckduckgo.results = []
    with trio.fail_after(DEADLINE):
        assert await DuckDuckGoProvider(http, fake_duckduckgo.url).search("zxqv") == []


@pytest.mark.parametrize(("status", "words"), [(202, "limiting our searches"), (500, "HTTP 500")])
async def test_http_errors(
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
    status: int,
    words: str,
) -> None:
    fake_duckduckgo.status = status
    with trio.fail_after(DEADLINE), pytest.raises(SearchHTTPError, match=words) as caught:
        await DuckDuckGoProvider(http, fake_duckduckgo.url).search("q")
    assert caught.value.status == status


async def test_a_changed_page_is_unparsable(
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
) -> None:
    fake_duckduckgo.body = b"<html><body><h1>Something new</h1></body></html>"
    with trio.fail_after(DEADLINE), pytest.raises(SearchUnparsable):
        await DuckDuckGoProvider(http, fake_duckduckgo.url).search("q")


async def test_down_and_slow(
    autojump_clock: trio.testing.MockClock,
    fake_duckduckgo: FakeDuckDuckGo,
    http: httpx.AsyncClient,
) -> None:
    provider = DuckDuckGoProvider(http, fake_duckduckgo.url)
    fake_duckduckgo.down = True
    with trio.fail_after(DEADLINE):
        with pytest.raises(SearchUnreachable, match="Can't reach DuckDuckGo"):
            await provider.search("q")
        fake_duckduckgo.down = False
        fake_duckduckgo.delay = 60.0
        with pytest.raises(SearchTimeout):
            await provider.search("q")
