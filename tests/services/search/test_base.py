"""`base`: the promises every provider's results keep (table-driven, no I/O)."""

from __future__ import annotations

import pytest

from trio_companion.services.search.base import (
    MAX_SNIPPET_CHARS,
    MAX_URL_CHARS,
    SearchResult,
    check_limit,
    clean_text,
    tidy_results,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Fish &amp; chips", "Fish & chips"),
        ("  many \n\t spaces  ", "many spaces"),
        ("caf&#233; &#x27;quoted&#x27;", "café 'quoted'"),
        ("non&nbsp;breaking", "non breaking"),
        ("", ""),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw, 100) == clean


def test_clean_text_shortens_with_an_ellipsis() -> None:
    assert clean_text("abcdef ghij", 8) == "abcdef…"


def test_tidy_results_keeps_the_promises() -> None:
    raw = [
        ("First", "https://a.example/page", "one"),
        ("Same page again", "https://A.example/page/#part", "dup"),
        ("Script", "javascript:alert(1)", ""),
        ("FTP", "ftp://files.example/x", ""),
        ("Relative", "/local/path", ""),
        ("Too long", "https://b.example/" + "x" * MAX_URL_CHARS, ""),
        ("", "http://c.example", "  no\ntitle "),
        ("Long snippet", "https://d.example", "word " * 200),
        ("Fourth", "https://e.example", ""),
    ]
    results = tidy_results(raw, 3)
    assert results == [
        SearchResult(title="First", url="https://a.example/page", snippet="one"),
        SearchResult(title="http://c.example", url="http://c.example", snippet="no title"),
        SearchResult(
            title="Long snippet",
            url="https://d.example",
            snippet=("word " * 200)[: MAX_SNIPPET_CHARS - 1].rstrip() + "…",
        ),
    ]
    assert len(tidy_results(raw, 100)) == 4


def test_limit_must_be_positive() -> None:
    check_limit(1)
    with pytest.raises(ValueError, match="at least 1"):
        check_limit(0)
