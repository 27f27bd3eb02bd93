from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import trio

from tests.storage.helpers import DEADLINE_S, query_fresh
from trio_companion.storage import NewChunk, Store, fts_query, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "db.sqlite3") as opened:
        yield opened


async def _fts_rows(store: Store) -> int:
    rows = await trio.to_thread.run_sync(
        query_fresh, store.path, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'lantern'"
    )
    return int(rows[0][0])


async def test_replace_stores_then_replaces_all_chunks_of_a_document(store: Store) -> None:
    docs = store.documents
    with trio.fail_after(DEADLINE_S):
        first = await docs.replace(
            "a.md", "h1", [NewChunk("the stormglass lantern"), NewChunk("glows")], indexed_at=1.0
        )
        await docs.replace("b.md", "h2", [NewChunk("a lantern of brass")], embedding_model="m")
        assert await _fts_rows(store) == 2
        again = await docs.replace("a.md", "h3", [NewChunk("a torch instead")])
        indexed = await docs.indexed()
        assert await docs.counts() == (2, 2)
        hits = await docs.search_fts("lantern", 10)
        assert await _fts_rows(store) == 1  # the old chunk left the index with its row
    assert again == first
    assert {p: (d.content_hash, d.embedding_model) for p, d in indexed.items()} == {
        "a.md": ("h3", ""),
        "b.md": ("h2", "m"),
    }
    assert [(hit.path, hit.ordinal, hit.text) for hit in hits] == [
        ("b.md", 0, "a lantern of brass")
    ]


async def test_remove_deletes_documents_their_chunks_and_index_entries(store: Store) -> None:
    docs = store.documents
    with trio.fail_after(DEADLINE_S):
        await docs.replace("a.md", "h1", [NewChunk("lantern one"), NewChunk("lantern two")])
        await docs.replace("b.md", "h2", [NewChunk("other")])
        removed = await docs.remove(["a.md", "missing.md"])
        assert await docs.remove([]) == 0
        assert await docs.counts() == (1, 1)
        assert await _fts_rows(store) == 0
    assert removed == 1


async def test_search_ranks_by_bm25_and_stems_words(store: Store) -> None:
    docs = store.documents
    with trio.fail_after(DEADLINE_S):
        await docs.replace("craft.md", "h1", [NewChunk("Crafting: craft a blade at the forge")])
        await docs.replace("map.md", "h2", [NewChunk("The forge district map")])
        hits = await docs.search_fts("crafted blades", 10)
        none = await docs.search_fts("zeppelin", 10)
        limited = await docs.search_fts("forge", 1)
    assert [hit.path for hit in hits] == ["craft.md"]
    assert hits[0].score > 0
    assert none == []
    assert len(limited) == 1


@pytest.mark.parametrize(
    "typed",
    [
        '"',
        '"unbalanced quote',
        'say ""hi"" there',
        "lant*",
        "*",
        "NEAR(lantern glows, 2)",
        "NEAR",
        "lantern -glows",
        "-",
        "--",
        "lantern AND OR NOT glows",
        "AND",
        "text:lantern",
        "chunks_fts:lantern",
        "^lantern",
        "(lantern",
        "lantern)",
        "{text}: lantern",
        "'; DROP TABLE chunks; --",
        "\x00 lantern",
        "",
        "   ",
        "ünïcödé lantern 灯笼",
    ],
)
async def test_user_syntax_never_reaches_fts5(store: Store, typed: str) -> None:
    docs = store.documents
    with trio.fail_after(DEADLINE_S):
        await docs.replace("a.md", "h1", [NewChunk("the lantern glows near the text")])
        hits = await docs.search_fts(typed, 5)
        assert await docs.counts() == (1, 1)
    # Operators are words like any other: the chunk is found iff it has one of the words typed.
    found = set(re.findall(r"\w+", typed.lower())) & {"the", "lantern", "glows", "near", "text"}
    assert [hit.path for hit in hits] == (["a.md"] if found else [])


@pytest.mark.parametrize(
    ("typed", "query"),
    [
        ("Lantern glows", '"lantern" OR "glows"'),
        ('a "quoted" word', '"quoted" OR "word"'),
        ("the and of", '"the" OR "and" OR "of"'),  # only stop words: kept
        ("NEAR(x y) -z *", '"near" OR "x" OR "y" OR "z"'),
        ("Same same SAME", '"same"'),
        ("?!* -- ()", ""),
    ],
)
def test_fts_query_quotes_each_word(typed: str, query: str) -> None:
    assert fts_query(typed) == query


def test_fts_query_keeps_a_bounded_number_of_words() -> None:
    assert fts_query(" ".join(f"w{n}" for n in range(100)), max_terms=3) == '"w0" OR "w1" OR "w2"'


async def test_embedded_chunks_are_those_of_the_model(store: Store) -> None:
    docs = store.documents
    with trio.fail_after(DEADLINE_S):
        await docs.replace("a.md", "h", [NewChunk("x", b"\x00\x00\x80?")], embedding_model="m")
        await docs.replace("b.md", "h", [NewChunk("y", b"\x00\x00\x80?")], embedding_model="old")
        await docs.replace("c.md", "h", [NewChunk("z")], embedding_model="m")
        rows = await docs.embedded_chunks("m")
    assert [(row.path, row.text, row.embedding) for row in rows] == [
        ("a.md", "x", b"\x00\x00\x80?")
    ]


async def test_negative_limit_is_a_bug(store: Store) -> None:
    with trio.fail_after(DEADLINE_S), pytest.raises(ValueError, match="limit"):
        await store.documents.search_fts("x", -1)
