"""`errors`: the tree and the sentences users read."""

from __future__ import annotations

import pytest

from trio_companion.errors import CompanionError
from trio_companion.services.search.errors import (
    JSONOutputDisabled,
    SearchError,
    SearchHTTPError,
    SearchTimeout,
    SearchUnparsable,
    SearchUnreachable,
)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            SearchUnreachable("SearXNG", "http://user:secret@search.lan:8888"),
            "Can't reach SearXNG at http://search.lan:8888: is it running and reachable?",
        ),
        (
            SearchTimeout("DuckDuckGo"),
            "DuckDuckGo took too long to answer the search: try again in a moment.",
        ),
        (
            SearchHTTPError("SearXNG", 500, "  engine\n  crashed "),
            "SearXNG answered the search with an error (HTTP 500): engine crashed",
        ),
        (
            SearchHTTPError("SearXNG", 502),
            "SearXNG answered the search with an error (HTTP 502).",
        ),
        (
            SearchHTTPError("DuckDuckGo", 202),
            "DuckDuckGo is limiting our searches right now (HTTP 202): try again in a few minutes.",
        ),
        (
            JSONOutputDisabled(),
            "SearXNG refused JSON output: enable `json` in its settings.yml formats.",
        ),
        (
            SearchUnparsable("DuckDuckGo", "the page had no results list"),
            "DuckDuckGo sent an answer I couldn't read (the page had no results list).",
        ),
    ],
)
def test_messages(error: SearchError, message: str) -> None:
    assert isinstance(error, CompanionError)
    assert str(error) == message


def test_typed_fields() -> None:
    assert SearchHTTPError("SearXNG", 500, "x" * 500).detail.endswith("…")
    assert SearchHTTPError("SearXNG", 500).status == 500
    assert JSONOutputDisabled().status == 403
    assert SearchUnreachable("SearXNG", "http://a:b@h").url == "http://h"
    assert SearchTimeout("DuckDuckGo").provider == "DuckDuckGo"
