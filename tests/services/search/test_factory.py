"""`factory`: ``memory.search_provider`` → the provider, or None."""

from __future__ import annotations

import httpx
import pytest

from trio_companion.config.model import MemoryConfig
from trio_companion.services.search.duckduckgo import DuckDuckGoProvider
from trio_companion.services.search.factory import make_search_provider
from trio_companion.services.search.searxng import SearXNGProvider


async def test_each_setting(http: httpx.AsyncClient) -> None:
    assert make_search_provider(MemoryConfig(), http) is None
    searxng = make_search_provider(
        MemoryConfig(search_provider="searxng", searxng_url="http://search.lan:8888/"), http
    )
    assert isinstance(searxng, SearXNGProvider)
    assert searxng.name == "SearXNG"
    ddg = make_search_provider(MemoryConfig(search_provider="duckduckgo"), http)
    assert isinstance(ddg, DuckDuckGoProvider)
    assert ddg.name == "DuckDuckGo"


async def test_searxng_needs_a_url(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="searxng_url"):
        make_search_provider(MemoryConfig(search_provider="searxng"), http)
