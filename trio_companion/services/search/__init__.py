"""Web search: a SearXNG instance's JSON API or DuckDuckGo's HTML page, behind `SearchProvider`.

`factory` builds the configured provider (or none) from ``memory.search_provider``; `errors`
draws the error tree; `base` holds the capability and the rules every provider's results keep.
"""

from trio_companion.services.search.base import DEFAULT_LIMIT, SearchProvider, SearchResult
from trio_companion.services.search.duckduckgo import DuckDuckGoProvider
from trio_companion.services.search.errors import (
    JSONOutputDisabled,
    SearchError,
    SearchHTTPError,
    SearchTimeout,
    SearchUnparsable,
    SearchUnreachable,
)
from trio_companion.services.search.factory import make_search_provider
from trio_companion.services.search.searxng import SearXNGProvider

__all__ = [
    "DEFAULT_LIMIT",
    "DuckDuckGoProvider",
    "JSONOutputDisabled",
    "SearXNGProvider",
    "SearchError",
    "SearchHTTPError",
    "SearchProvider",
    "SearchResult",
    "SearchTimeout",
    "SearchUnparsable",
    "SearchUnreachable",
    "make_search_provider",
]
