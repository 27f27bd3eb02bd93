"""Which chat messages trigger an automatic web search."""

from __future__ import annotations

import pytest

from trio_companion.services.search.auto import looks_time_sensitive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("who won the match yesterday?", True),
        ("what's the weather in Paris today?", True),
        ("Is there any news about the launch", True),
        ("what is the latest version of Python?", True),
        ("when does the new season come out?", True),
        ("what happened in the 2026 election?", True),
        ("the weather is nice today", False),  # not a question
        ("what is the capital of Australia?", False),  # does not change with time
        ("how do I bake bread?", False),
        ("tell me a joke", False),
        ("I read the news", False),
    ],
)
def test_looks_time_sensitive(text: str, expected: bool) -> None:
    assert looks_time_sensitive(text) is expected
