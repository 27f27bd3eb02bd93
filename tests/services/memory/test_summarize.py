"""Summarizer against a real store (real clock: it works in threads) and the fake Ollama."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
import trio

from tests.fakes.llm_servers import FakeOllama
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.ollama import OllamaBackend
from trio_companion.services.memory import Summarizer, summary_document_path
from trio_companion.services.memory.summarize import SYSTEM_PROMPT, render_transcript
from trio_companion.services.rag import DocumentIndex
from trio_companion.storage import Store, StoredTurn, Turn, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

DEADLINE: Final = 20.0
CHANNEL: Final = 42
THRESHOLD: Final = 10
KEEP: Final = 5
SUMMARY: Final = "Topics: the lighthouse picnic. Decisions: meet at noon."


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "db.sqlite3") as opened:
        yield opened


def backend(fake: FakeOllama, http: httpx.AsyncClient) -> OllamaBackend:
    return OllamaBackend(
        http, url=fake.url, model="llama3.2", keep_alive="5m", limits=LLMLimits(4, 10_000)
    )


def summarizer(
    store: Store, fake: FakeOllama, http: httpx.AsyncClient, rag: DocumentIndex | None = None
) -> Summarizer:
    return Summarizer(store, backend(fake, http), threshold=THRESHOLD, keep_recent=KEEP, rag=rag)


async def seed(store: Store, count: int, channel_id: int = CHANNEL) -> list[int]:
    return await store.history.append_many(
        [
            Turn(
                channel_id=channel_id,
                author_id=7 + n % 2,
                author_name=("ann", "bob")[n % 2],
                role="user",
                content=f"message number {n}",
                created_at=1_795_867_200 + n,
            )
            for n in range(count)
        ]
    )


def transcripts(fake: FakeOllama) -> list[str]:
    """The conversation text of each chat request the fake received."""
    sent: list[str] = []
    for request in fake.chat_requests:
        body: dict[str, Any] = request.json
        system, user = body["messages"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        sent.append(user["content"])
    return sent


async def test_below_the_threshold_nothing_happens(
    store: Store, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    memory = summarizer(store, fake_ollama, llm_http)
    with trio.fail_after(DEADLINE):
        await seed(store, THRESHOLD + KEEP)
        assert await memory.maybe_summarize(CHANNEL) == []
    assert fake_ollama.chat_requests == []


async def test_the_older_turns_are_summarised_and_the_newest_kept(
    store: Store, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = SUMMARY
    memory = summarizer(store, fake_ollama, llm_http)
    with trio.fail_after(DEADLINE):
        ids = await seed(store, THRESHOLD + KEEP + 1)
        (made,) = await memory.maybe_summarize(CHANNEL)
        assert await store.summaries.latest_point(CHANNEL) == ids[-KEEP - 1]
    assert (made.first_turn_id, made.last_turn_id) == (ids[0], ids[-KEEP - 1])
    assert made.text == SUMMARY
    (sent,) = transcripts(fake_ollama)
    assert "[2026-11-28 12:00] ann: message number 0" in sent
    assert "bob: message number 1" in sent
    assert f"message number {THRESHOLD}\n" not in sent  # the last summarised one ends the text
    assert sent.endswith(f"ann: message number {THRESHOLD}")
    assert f"message number {THRESHOLD + 1}" not in sent
    assert memory.statistics().summaries == 1


async def test_no_turn_is_summarised_twice_across_calls_and_a_restart(
    tmp_path: Path, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = SUMMARY
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE):
        async with open_store(path) as store:
            ids = await seed(store, THRESHOLD + KEEP + 3)
            memory = summarizer(store, fake_ollama, llm_http)
            assert len(await memory.maybe_summarize(CHANNEL)) == 1
            assert await memory.maybe_summarize(CHANNEL) == []
        async with open_store(path) as store:
            memory = summarizer(store, fake_ollama, llm_http)
            assert await memory.maybe_summarize(CHANNEL) == []
            more = await seed(store, THRESHOLD + 1)
            (second,) = await memory.maybe_summarize(CHANNEL)
            summaries = await store.summaries.list(CHANNEL, limit=10)
    assert len(fake_ollama.chat_requests) == 2
    first = summaries[1]
    assert (first.first_turn_id, first.last_turn_id) == (ids[0], ids[-KEEP - 1])
    # The second starts right after the first and keeps the newest KEEP of all turns.
    assert (second.first_turn_id, second.last_turn_id) == (ids[-KEEP], more[-KEEP - 1])
    (_, later) = transcripts(fake_ollama)
    assert f"message number {THRESHOLD + 2}\n" not in later  # summarised by the first


async def test_a_failing_model_stores_nothing_and_keeps_the_point(
    store: Store,
    fake_ollama: FakeOllama,
    llm_http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_ollama.status = 500
    memory = summarizer(store, fake_ollama, llm_http)
    with trio.fail_after(DEADLINE), caplog.at_level(logging.WARNING):
        ids = await seed(store, THRESHOLD + KEEP + 1)
        assert await memory.maybe_summarize(CHANNEL) == []
        assert await store.summaries.latest_point(CHANNEL) == 0
        assert await store.summaries.list(CHANNEL, limit=5) == []
        fake_ollama.status = None
        fake_ollama.reply = SUMMARY
        (made,) = await memory.maybe_summarize(CHANNEL)
    assert made.first_turn_id == ids[0]
    assert memory.statistics().failures == 1
    assert f"no summary of channel {CHANNEL}" in caplog.text


async def test_an_empty_answer_is_a_failure(
    store: Store, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = "   "
    memory = summarizer(store, fake_ollama, llm_http)
    with trio.fail_after(DEADLINE):
        await seed(store, THRESHOLD + KEEP + 1)
        assert await memory.maybe_summarize(CHANNEL) == []
        assert await store.summaries.latest_point(CHANNEL) == 0


async def test_stored_as_a_document_that_reindex_keeps(
    store: Store, tmp_path: Path, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = SUMMARY
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "rules.md").write_text("The beacon rules of the game.")
    index = DocumentIndex(store, documents, backend=None, embedding_model="")
    memory = summarizer(store, fake_ollama, llm_http, rag=index)
    with trio.fail_after(DEADLINE):
        await index.reindex()
        await seed(store, THRESHOLD + KEEP + 1)
        (made,) = await memory.maybe_summarize(CHANNEL)
        path = summary_document_path(CHANNEL, made.id)
        assert path.startswith("summary:")
        before = await index.search("lighthouse picnic", k=3)
        report = await index.reindex()
        after = await index.search("lighthouse picnic", k=3)
        stored = await store.documents.indexed()
    assert report.removed == 0
    assert path in stored
    assert [p.source for p in before] == [path] == [p.source for p in after]
    assert "lighthouse picnic" in after[0].text


async def test_requests_are_coalesced_bounded_and_served_in_the_background(
    store: Store, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = SUMMARY
    memory = summarizer(store, fake_ollama, llm_http)
    with trio.fail_after(DEADLINE):
        await seed(store, THRESHOLD + KEEP + 1)
        for _ in range(3):
            memory.request(CHANNEL)
        assert memory.statistics().queued == 1
        for other in range(1000, 1100):  # more channels than the queue holds: dropped, no block
            memory.request(other)
        assert memory.statistics().dropped > 0
        async with trio.open_nursery() as nursery:
            await nursery.start(memory.run)
            await memory.wait_handled(1)  # CHANNEL's request, queued first
            assert await store.summaries.latest_point(CHANNEL) > 0
            nursery.cancel_scope.cancel()
    assert len(fake_ollama.chat_requests) == 1


async def test_summarize_now_ignores_the_threshold_but_not_the_minimum(
    store: Store, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = SUMMARY
    memory = summarizer(store, fake_ollama, llm_http)
    with trio.fail_after(DEADLINE):
        ids = await seed(store, 3)
        assert await memory.summarize(CHANNEL, min_turns=4) is None
        ids += await seed(store, 1)
        made = await memory.summarize(CHANNEL, min_turns=4)
    assert made is not None
    assert (made.first_turn_id, made.last_turn_id) == (ids[0], ids[-1])


def test_a_long_transcript_keeps_whole_turns_within_the_budget() -> None:
    turns = [
        StoredTurn(
            id=n,
            channel_id=1,
            author_id=1,
            author_name="ann",
            role="user",
            content="x" * 5000,
            created_at=0.0,
        )
        for n in range(10)
    ]
    text, shown = render_transcript(turns, budget=2500)
    assert shown == 2
    assert len(text) <= 2500
    assert text.count("ann: ") == 2
