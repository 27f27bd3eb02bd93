"""DocumentIndex against a real store, a folder in tmp_path and the fake Ollama's embeddings.

The corpus (``corpus/``, a fictional game's wiki written for these tests) has one topic per
document; each query names its expected document. Retrieval quality is tested by words (BM25)
alone: the fake's embeddings are hashes, not meaning, so with them the tests check the fusion's
mechanics instead (see the fusion test for the numbers).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
import trio

from tests.fakes.llm_servers import FakeOllama, fake_embedding
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.ollama import OllamaBackend
from trio_companion.services.rag import DocumentIndex, ReindexReport, chunk_text
from trio_companion.storage import Store, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

DEADLINE: Final = 20.0
CORPUS: Final = Path(__file__).parent / "corpus"
MODEL: Final = "nomic-embed-text"
TOP: Final = 3

QUERIES: Final = [
    ("which class heals allies and can revive teammates", "classes.md"),
    ("tank with a tower shield", "classes.md"),
    ("the lighthouse on the harbour map", "maps.md"),
    ("can I cut the rope bridge", "maps.md"),
    ("how long is the respawn delay", "rules.md"),
    ("penalty for leaving a match early", "rules.md"),
    ("how many beacons to win a round", "rules.md"),
    ("item that reveals invisible traps", "items.md"),
    ("avoid fall damage by gliding", "items.md"),
    ("how do I brew potions from herbs", "crafting.txt"),
    ("chance of a masterwork item", "crafting.txt"),
    ("how much does it cost to found a guild", "guilds.md"),
    ("guild war territory and tax", "guilds.md"),
    ("auction house fee", "currency.md"),
    ("what are ember shards for", "currency.md"),
    ("placement matches and tiers", "ranked.md"),
    ("rating decay above platinum", "ranked.md"),
    ("when do daily quests refresh", "quests.txt"),
    ("sparing the bandit chief", "quests.txt"),
    ("first mount at level ten", "pets.md"),
    ("what does a pet fox do", "pets.md"),
    ("how long do day and night last", "weather.md"),
    ("does rain weaken fire spells", "weather.md"),
    ("how do I rebind keys", "controls.txt"),
    ("is a gamepad supported", "controls.txt"),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "db.sqlite3") as opened:
        yield opened


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    folder = tmp_path / "documents"
    shutil.copytree(CORPUS, folder)
    return folder


def ollama(fake: FakeOllama, http: httpx.AsyncClient) -> OllamaBackend:
    return OllamaBackend(
        http, url=fake.url, model="llama3.2", keep_alive="5m", limits=LLMLimits(4, 10_000)
    )


def embedded_texts(fake: FakeOllama) -> list[list[str]]:
    """The texts of each embedding request the fake received, in order."""
    inputs: list[list[str]] = []
    for request in fake.requests:
        if request.path == "/api/embed":
            body: dict[str, Any] = request.json
            assert body["model"] == MODEL
            inputs.append(list(body["input"]))
    return inputs


async def top_sources(index: DocumentIndex, query: str) -> list[str]:
    return [passage.source for passage in await index.search(query, k=TOP)]


def test_the_corpus_is_big_enough() -> None:
    files = sorted(p.name for p in CORPUS.iterdir())
    assert len(files) >= 10
    assert len(QUERIES) >= 20
    assert {expected for _, expected in QUERIES} == set(files)


async def test_words_only_finds_each_expected_document_in_the_top_3(
    store: Store, documents: Path
) -> None:
    index = DocumentIndex(store, documents, backend=None, embedding_model=MODEL)
    with trio.fail_after(DEADLINE):
        assert await index.reindex() == ReindexReport(added=12)
        results = {query: await top_sources(index, query) for query, _ in QUERIES}
    misses = [(q, results[q]) for q, expected in QUERIES if expected not in results[q]]
    firsts = sum(results[q][0] == expected for q, expected in QUERIES)
    assert not misses
    assert firsts >= 20  # of 25 queries, the expected document ranks first
    assert not index.embeddings_enabled


async def test_fusion_with_embeddings_ranks_what_both_rankings_agree_on_first(
    store: Store, documents: Path, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    # The fake's embeddings are hashes: their ranking is noise except for identical texts.
    # Fusing noise with equal weight does cost BM25's quality (measured on QUERIES: 17 of 25
    # expected documents in the top 3, against 25 of 25 by words alone), so quality is tested
    # by words above, and here the mechanics: a whole chunk as the query is first in both
    # rankings and must come first after fusion.
    backend = ollama(fake_ollama, llm_http)
    index = DocumentIndex(store, documents, backend=backend, embedding_model=MODEL)
    chunked = {path.name: chunk_text(path.read_text()) for path in sorted(CORPUS.iterdir())}
    assert all(len(chunks) == 1 for chunks in chunked.values())
    texts = {name: chunks[0] for name, chunks in chunked.items()}
    with trio.fail_after(DEADLINE):
        await index.reindex()
        results = {name: await top_sources(index, text) for name, text in texts.items()}
    assert {name: found[0] for name, found in results.items()} == {name: name for name in texts}
    stats = index.statistics()
    assert stats.vectors_loaded == 12  # the cosine ranking really took part
    assert stats.searches == len(texts)
    # One request per document at indexing (each is one chunk), then one per query.
    assert len(embedded_texts(fake_ollama)) == 12 + len(texts)


async def test_vectors_rank_passages_the_words_miss(
    store: Store, documents: Path, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    # The fake embeds equal texts equally: a query equal to a whole chunk is its nearest vector,
    # though none of its words (here: none at all) is in the index.
    (documents / "symbols.txt").write_text("∆∆∆ ≈≈≈")
    index = DocumentIndex(
        store, documents, backend=ollama(fake_ollama, llm_http), embedding_model=MODEL
    )
    with trio.fail_after(DEADLINE):
        await index.reindex()
        passages = await index.search("∆∆∆ ≈≈≈", k=1)
    assert [(p.source, p.text) for p in passages] == [("symbols.txt", "∆∆∆ ≈≈≈")]
    assert fake_embedding("∆∆∆ ≈≈≈", fake_ollama.embedding_dim)  # what the fake answered


async def test_only_new_changed_and_removed_documents_are_touched(
    store: Store, documents: Path, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    index = DocumentIndex(
        store, documents, backend=ollama(fake_ollama, llm_http), embedding_model=MODEL
    )
    long_text = "\n\n".join(
        f"Paragraph {n} about the lore of the Ember Crown. " * 6 for n in range(8)
    )
    with trio.fail_after(DEADLINE):
        assert await index.reindex() == ReindexReport(added=12)
        before = index.statistics()
        indexed = len(embedded_texts(fake_ollama))

        (documents / "lore").mkdir()
        (documents / "lore" / "crown.md").write_text(long_text)
        added = await index.reindex()
        after_add = index.statistics()
        add_requests = embedded_texts(fake_ollama)[indexed:]

        (documents / "maps.md").write_text("# Maps\n\nA new map: the Glass Desert.")
        updated = await index.reindex()
        after_update = index.statistics()
        update_requests = embedded_texts(fake_ollama)[indexed + len(add_requests) :]

        (documents / "weather.md").unlink()
        removed = await index.reindex()
        quiet = await index.reindex()
        after_all = index.statistics()
        # By words: the fake's vectors would add noise to these checks.
        glass = [hit.path for hit in await store.documents.search_fts("glass desert", 3)]
        bay = [hit.path for hit in await store.documents.search_fts("lighthouse bay fog", 3)]
        storms = [hit.path for hit in await store.documents.search_fts("thunderstorms", 3)]
        counts = await store.documents.counts()
    crown_chunks = chunk_text(long_text)
    assert len(crown_chunks) > 1
    assert added == ReindexReport(added=1, unchanged=12)
    assert add_requests == [crown_chunks]  # exactly the new document's chunks, one request
    assert after_add.documents_indexed - before.documents_indexed == 1
    assert after_add.chunks_written - before.chunks_written == len(crown_chunks)
    assert updated == ReindexReport(updated=1, unchanged=12)
    assert update_requests == [["# Maps\n\nA new map: the Glass Desert."]]
    assert after_update.documents_indexed - after_add.documents_indexed == 1
    assert removed == ReindexReport(removed=1, unchanged=12)
    assert quiet == ReindexReport(unchanged=12)
    assert after_all.documents_indexed == after_update.documents_indexed
    assert len(embedded_texts(fake_ollama)) == indexed + 2
    assert glass[0] == "maps.md"
    assert bay == []
    assert storms == []
    assert counts == (12, 11 + len(crown_chunks))


async def test_a_change_of_embedding_model_re_embeds_everything(
    store: Store, documents: Path, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    with trio.fail_after(DEADLINE):
        await DocumentIndex(store, documents, backend=None, embedding_model="").reindex()
        index = DocumentIndex(
            store, documents, backend=ollama(fake_ollama, llm_http), embedding_model=MODEL
        )
        report = await index.reindex()
    assert report == ReindexReport(updated=12)
    assert len(embedded_texts(fake_ollama)) == 12


async def test_a_failing_embedding_server_leaves_word_search_and_a_retry(
    store: Store,
    documents: Path,
    fake_ollama: FakeOllama,
    llm_http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = DocumentIndex(
        store, documents, backend=ollama(fake_ollama, llm_http), embedding_model=MODEL
    )
    fake_ollama.status = 500
    with trio.fail_after(DEADLINE), caplog.at_level(logging.WARNING):
        first = await index.reindex()
        found = await top_sources(index, "auction house fee")
        failed_requests = len(embedded_texts(fake_ollama))
        fake_ollama.status = None
        second = await index.reindex()
    assert first == ReindexReport(added=12)
    assert found[0] == "currency.md"
    # The first failure stops embedding for the rest of that reindex: 1 + the query's request.
    assert failed_requests == 2
    assert index.statistics().embed_failures == 2
    assert second == ReindexReport(updated=12)
    assert "searched by words until the next reindex" in caplog.text


async def test_paths_outside_the_folder_are_refused(
    store: Store, documents: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "plans.md").write_text("The secret plans of the zeppelin.")
    os.symlink("/etc/passwd", documents / "passwd.txt")
    os.symlink(outside / "plans.md", documents / "plans.md")
    os.symlink(outside, documents / "linked")  # a directory: not entered
    os.symlink(documents / "rules.md", documents / "rules-again.md")  # inside: fine
    index = DocumentIndex(store, documents, backend=None, embedding_model="")
    with trio.fail_after(DEADLINE), caplog.at_level(logging.WARNING):
        report = await index.reindex()
        indexed = await store.documents.indexed()
        secret = await index.search("zeppelin nologin root", k=5)
    assert report == ReindexReport(added=13, skipped=2)
    assert "passwd.txt" not in indexed
    assert "plans.md" not in indexed
    assert "rules-again.md" in indexed
    assert [p.source for p in secret] == []
    assert "refusing the document passwd.txt: it leads outside the documents folder" in caplog.text


async def test_a_missing_folder_changes_nothing(
    store: Store, documents: Path, tmp_path: Path
) -> None:
    with trio.fail_after(DEADLINE):
        await DocumentIndex(store, documents, backend=None, embedding_model="").reindex()
        gone = DocumentIndex(store, tmp_path / "nowhere", backend=None, embedding_model="")
        report = await gone.reindex()
        counts = await store.documents.counts()
    assert report == ReindexReport(missing=True)
    assert counts == (12, 12)


async def test_blank_queries_and_other_files_find_nothing(store: Store, documents: Path) -> None:
    (documents / "image.png").write_bytes(b"\x89PNG auction")
    (documents / ".hidden.md").write_text("auction")
    index = DocumentIndex(store, documents, backend=None, embedding_model="")
    with trio.fail_after(DEADLINE):
        report = await index.reindex()
        blank = await index.search("   ", k=3)
        none = await index.search("auction", k=0)
        hits = await top_sources(index, "auction")
    assert report == ReindexReport(added=12)
    assert blank == none == []
    assert hits == ["currency.md"]
