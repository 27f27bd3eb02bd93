"""Build the web search provider from `MemoryConfig` (``memory.search_provider``).

The provider uses the app's shared ``httpx.AsyncClient``: its timeouts are the HTTP ones, and
callers put their own deadline around a search (STYLE.md 11).
"""

from __future__ import annotations

import httpx

from trio_companion.config.model import MemoryConfig
from trio_companion.services.search.base import SearchProvider
from trio_companion.services.search.duckduckgo import DuckDuckGoProvider
from trio_companion.services.search.searxng import SearXNGProvider

__all__ = ["make_search_provider"]


def make_search_provider(config: MemoryConfig, http: httpx.AsyncClient) -> SearchProvider | None:
    """The configured provider on ``http``, or None when web search is off (``"none"``).

    Raises ``ValueError`` for ``"searxng"`` without ``searxng_url`` (the config loader already
    refuses that; this guards configs built in code).
    """
    if config.search_provider == "searxng":
        if not config.searxng_url:
            raise ValueError("memory.searxng_url is required when search_provider is 'searxng'")
        return SearXNGProvider(http, config.searxng_url)
    if config.search_provider == "duckduckgo":
        return DuckDuckGoProvider(http)
    return None
