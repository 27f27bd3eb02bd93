"""`SearXNGProvider` against `FakeSearXNG` over loopback HTTP, on the MockClock."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from tests.fakes.search_servers import SAMPLE_RESULTS, FakeResult, FakeSearXNG
from trio_companion.services.search.base import SearchResult
from trio_companion.services.search.errors import (
    JSONOutputDisabled,
    SearchHTTPError,
    SearchTimeout,
    SearchUnparsable,
    SearchUnreachable,
)
from trio_companion.services.search.searxng import SearXNGProvider

DEADLINE = 30


async def test_parses_the_json_api_and_sends_safe_search(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    provider = SearXNGProvider(http, fake_searxng.url + "/")
    with trio.fail_after(DEADLINE):
        results = await provider.search("trio python")
    assert results == [
        SearchResult(title=r.title, url=r.url, snippet=r.content) for r in SAMPLE_RESULTS
    ]
    [query] = fake_searxng.queries
    assert query.q == "trio python"
    assert query.safe == "1"
    assert query.params["format"] == "json"
    [request] = fake_searxng.requests
    assert (request.method, request.path) == ("GET", "/search")


async def test_safe_search_can_be_turned_off(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    with trio.fail_after(DEADLINE):
        await SearXNGProvider(http, fake_searxng.url).search("q", safe=False)
    assert fake_searxng.queries[0].safe == "0"


async def test_limit_dedup_cleaning_and_url_schemes(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    fake_searxng.results = [
        FakeResult("Fish &amp;  chips", "https://a.example/", "Best\n  in &quot;town&quot;"),
        FakeResult("Fish again", "https://a.example", "duplicate"),
        FakeResult("Magnet", "magnet:?xt=urn:btih:abc", "not a web page"),
        *(FakeResult(f"Page {n}", f"https://p{n}.example/", "") for n in range(10)),
    ]
    provider = SearXNGProvider(http, fake_searxng.url)
    with trio.fail_after(DEADLINE):
        results = await provider.search("fish", limit=3)
        default = await provider.search("fish")
    assert results == [
        SearchResult(title="Fish & chips", url="https://a.example/", snippet='Best in "town"'),
        SearchResult(title="Page 0", url="https://p0.example/", snippet=""),
        SearchResult(title="Page 1", url="https://p1.example/", snippet=""),
    ]
    assert len(default) == 5


async def test_nulls_and_no_results(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    provider = SearXNGProvider(http, fake_searxng.url)
    fake_searxng.body = (
        b'{"results": [{"title": null, "url": "https://x.example", "content": null},'
        b' {"url": null}, {"title": "no url"}]}'
    )
    with trio.fail_after(DEADLINE):
        assert await provider.search("x") == [
            SearchResult(title="https://x.example", url="https://x.example", snippet="")
        ]
        fake_searxng.body = None
        fake_searxng.results = []
        assert await provider.search("nothing at all") == []
        assert await provider.search("   ") == []  # nothing to search: no request
    assert len(fake_searxng.requests) == 2


async def test_json_disabled_says_how_to_fix_it(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    fake_searxng.json_disabled = True
    with trio.fail_after(DEADLINE), pytest.raises(JSONOutputDisabled) as caught:
        await SearXNGProvider(http, fake_searxng.url).search("q")
    assert "enable `json` in its settings.yml formats" in str(caught.value)


async def test_http_error_hides_the_html_page(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    fake_searxng.status = 500
    with trio.fail_after(DEADLINE), pytest.raises(SearchHTTPError) as caught:
        await SearXNGProvider(http, fake_searxng.url).search("q")
    assert caught.value.status == 500
    assert str(caught.value) == "SearXNG answered the search with an error (HTTP 500)."


@pytest.mark.parametrize(
    "body", [b"<html>not json</html>", b'{"answers": []}', b'{"results": "nope"}']
)
async def test_unparsable_answers(
    autojump_clock: trio.testing.MockClock,
    fake_searxng: FakeSearXNG,
    http: httpx.AsyncClient,
    body: bytes,
) -> None:
    fake_searxng.body = body
    with trio.fail_after(DEADLINE), pytest.raises(SearchUnparsable, match="couldn't read"):
        await SearXNGProvider(http, fake_searxng.url).search("q")


async def test_down_is_unreachable(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    fake_searxng.down = True
    with trio.fail_after(DEADLINE), pytest.raises(SearchUnreachable) as caught:
        await SearXNGProvider(http, fake_searxng.url).search("q")
    assert caught.value.url == fake_searxng.url
    assert str(caught.value).startswith("Can't reach SearXNG at http://127.0.0.1:")


async def test_a_slow_server_times_out(
    autojump_clock: trio.testing.MockClock, fake_searxng: FakeSearXNG, http: httpx.AsyncClient
) -> None:
    fake_searxng.delay = 60.0  # longer than the client's 5 s read timeout
    with trio.fail_after(DEADLINE), pytest.raises(SearchTimeout):
        await SearXNGProvider(http, fake_searxng.url).search("q")


async def test_limit_below_one_is_a_bug(http: httpx.AsyncClient) -> None:
    with trio.fail_after(DEADLINE), pytest.raises(ValueError, match="at least 1"):
        await SearXNGProvider(http, "http://127.0.0.1:9").search("q", limit=0)
