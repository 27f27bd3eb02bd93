"""The document index: the documents folder, kept in the store, searched by words and meaning.

Theory of operation
-------------------
`DocumentIndex.reindex` walks the documents folder in a worker thread. Only ``.md`` and ``.txt``
files count, and only those whose real path (symlinks resolved) lies inside the folder: a
symlink pointing out of it, to ``/etc/passwd`` say, is refused and logged, never read. Each
file's content is hashed (sha256); a file whose hash and embedding model match what the store
holds is left alone, so adding one document chunks and embeds that document only. A new or
changed file is chunked (`trio_companion.services.rag.chunking`) in the same thread, embedded in
batches when an embedding model is configured, and its chunks replace the old ones in one
transaction. Documents no longer in the folder are deleted. One reindex runs at a time.

Not every document is a file: `DocumentIndex.store_text` stores text made by the companion itself
(conversation summaries) under a path starting with `GENERATED_PREFIX`; reindex leaves those
alone, and a file whose name starts with the prefix is not indexed, so the two never collide.

If embedding fails (server down, model missing), the rest of that reindex stores chunks without
vectors, marked as not embedded, and the next reindex embeds them again; search still works by
words meanwhile.

`DocumentIndex.search` ranks chunks by BM25 (FTS5, in the store) and, with embeddings, by cosine
similarity computed with numpy in a worker thread under a `trio.CapacityLimiter` of 1, then fuses
both rankings by reciprocal rank (`trio_companion.services.rag.retrieve`). The vectors are loaded
from the store once and kept until a reindex changes something.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import msgspec
import trio

from trio_companion.services.llm.errors import LLMError
from trio_companion.services.rag.chunking import chunk_text
from trio_companion.services.rag.retrieve import (
    Passage,
    VectorTable,
    decode_vector,
    encode_vector,
    reciprocal_rank_fusion,
)
from trio_companion.storage import NewChunk

if TYPE_CHECKING:
    from trio_companion.services.llm.base import LLMBackend
    from trio_companion.storage import EmbeddedChunk, Store

__all__ = [
    "DOCUMENT_SUFFIXES",
    "GENERATED_PREFIX",
    "DocumentIndex",
    "IndexStatistics",
    "ReindexReport",
]

log = logging.getLogger(__name__)

DOCUMENT_SUFFIXES: Final = frozenset({".md", ".txt"})
# Paths of documents that are not files of the folder (see `DocumentIndex.store_text`); ':' is not
# in any relative path this module produces for a normal file name, and such files are refused.
GENERATED_PREFIX: Final = "summary:"
# A documents folder holds notes and wiki pages; a larger file is most likely a mistake (a log,
# a dump) and would crowd out everything else.
MAX_DOCUMENT_BYTES: Final = 2 * 1024 * 1024
# Texts per embedding request: Ollama and OpenAI accept lists; 32 chunks of 800 characters stay
# far below any server's request limit.
EMBED_BATCH: Final = 32
# One embedding request, at the call site (STYLE.md 11): a cold model load can take a minute.
EMBED_DEADLINE: Final = 120.0
# Embedding the query must not hold a search up: without it, the search uses words only.
QUERY_EMBED_DEADLINE: Final = 10.0
# Each ranking contributes this many candidates per wanted passage to the fusion (at least
# MIN_CANDIDATES): deep enough that a chunk ranked well by one list is not lost by the other.
CANDIDATES_PER_RESULT: Final = 4
MIN_CANDIDATES: Final = 20


@final
class ReindexReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one `DocumentIndex.reindex` did, in documents."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    """Files refused (outside the folder, too large, unreadable); they are not indexed."""
    missing: bool = False
    """The folder does not exist: nothing was changed."""


@final
class IndexStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters since start, for ``/status`` and the tests."""

    documents_indexed: int
    """Documents chunked (and embedded) and written; an unchanged document is not counted."""
    chunks_written: int
    embed_requests: int
    embed_failures: int
    searches: int
    vectors_loaded: int
    """Vectors in the cosine table (0 until a search with embeddings needed them)."""
    vector_threads_waiting: int
    reindexing: bool
    last_report: ReindexReport | None


@dataclass(frozen=True, slots=True)
class _ScannedFile:
    path: str
    digest: str
    chunks: list[str] | None
    """None when the file is unchanged: it was not decoded nor chunked."""


@dataclass(frozen=True, slots=True)
class _Scan:
    files: dict[str, _ScannedFile]
    skipped: int
    missing: bool


@final
class DocumentIndex:
    """The documents of `documents_dir`, indexed in `store`; see the module docstring.

    With `backend` None (or `embedding_model` empty) search is by words only.
    """

    def __init__(
        self,
        store: Store,
        documents_dir: Path,
        *,
        backend: LLMBackend | None,
        embedding_model: str,
    ) -> None:
        self._documents = store.documents
        self._root = documents_dir
        self._backend = backend if embedding_model else None
        self._model = embedding_model if backend is not None else ""
        self._reindex_lock = trio.Lock()
        self._vectors_lock = trio.Lock()
        # Cosine ranking is CPU work on one shared matrix: one thread at a time (STYLE.md 12).
        self._cpu = trio.CapacityLimiter(1)
        self._vectors: tuple[VectorTable, dict[int, tuple[str, str]]] | None = None
        self._generation = 0  # bumped whenever the stored chunks change
        self._documents_indexed = 0
        self._chunks_written = 0
        self._embed_requests = 0
        self._embed_failures = 0
        self._searches = 0
        self._last_report: ReindexReport | None = None

    @property
    def documents_dir(self) -> Path:
        return self._root

    @property
    def embeddings_enabled(self) -> bool:
        return self._backend is not None

    async def reindex(self) -> ReindexReport:
        """Bring the store in line with the folder: index new and changed files, drop removed.

        Never raises for a file it cannot use (it is skipped and logged) nor for a failing
        embedding server (see the module docstring); raises the store's errors. Cancellation:
        documents already written stay written; the next reindex continues from there.
        """
        async with self._reindex_lock:
            report = await self._reindex()
        self._last_report = report
        log.info(
            "documents in %s: %d added, %d updated, %d removed, %d unchanged, %d skipped",
            self._root,
            report.added,
            report.updated,
            report.removed,
            report.unchanged,
            report.skipped,
        )
        return report

    async def search(self, query: str, *, k: int) -> list[Passage]:
        """The `k` passages best matching `query`, best first; [] for a blank query.

        Uses the embedding server only when configured, and searches by words alone if it fails
        or is slower than `QUERY_EMBED_DEADLINE`.
        """
        if k <= 0 or not query.strip():
            return []
        self._searches += 1
        depth = max(k * CANDIDATES_PER_RESULT, MIN_CANDIDATES)
        hits = await self._documents.search_fts(query, depth)
        found = {hit.chunk_id: (hit.path, hit.text) for hit in hits}
        rankings = [[hit.chunk_id for hit in hits]]
        vector = await self._embed_query(query)
        if vector is not None:
            table, chunks = await self._vector_table()
            nearest = await trio.to_thread.run_sync(table.top, vector, depth, limiter=self._cpu)
            rankings.append([chunk_id for chunk_id, _ in nearest])
            found.update((chunk_id, chunks[chunk_id]) for chunk_id, _ in nearest)
        return [
            Passage(source=found[chunk_id][0], text=found[chunk_id][1], score=score)
            for chunk_id, score in reciprocal_rank_fusion(rankings)[:k]
        ]

    async def store_text(self, path: str, text: str) -> None:
        """Index `text` as the document `path`, which must start with `GENERATED_PREFIX`.

        Chunked and (when configured) embedded like a file; an embedding failure stores the
        chunks for word search only. Raises the store's errors.
        """
        if not path.startswith(GENERATED_PREFIX):
            raise ValueError(f"a generated document's path must start with {GENERATED_PREFIX!r}")
        digest = hashlib.sha256(text.encode()).hexdigest()
        scanned = _ScannedFile(path, digest, None)
        await self._store_document(scanned, chunk_text(text), embed=self._backend is not None)
        self._generation += 1
        self._vectors = None

    def statistics(self) -> IndexStatistics:
        return IndexStatistics(
            documents_indexed=self._documents_indexed,
            chunks_written=self._chunks_written,
            embed_requests=self._embed_requests,
            embed_failures=self._embed_failures,
            searches=self._searches,
            vectors_loaded=len(self._vectors[0]) if self._vectors is not None else 0,
            vector_threads_waiting=self._cpu.statistics().tasks_waiting,
            reindexing=self._reindex_lock.locked(),
            last_report=self._last_report,
        )

    async def _reindex(self) -> ReindexReport:
        indexed = await self._documents.indexed()
        # A document embedded with another model (or not at all) counts as changed.
        known = {
            path: document.content_hash
            for path, document in indexed.items()
            if document.embedding_model == self._model
        }
        scan = await trio.to_thread.run_sync(scan_folder, self._root, known)
        if scan.missing:
            log.info("the documents folder %s does not exist; nothing to index", self._root)
            return ReindexReport(missing=True)
        added = updated = unchanged = 0
        embedding = self._backend is not None
        for scanned in scan.files.values():
            if scanned.chunks is None:
                unchanged += 1
                continue
            embedding = await self._store_document(scanned, scanned.chunks, embed=embedding)
            if scanned.path in indexed:
                updated += 1
            else:
                added += 1
        removed = await self._documents.remove(
            [p for p in indexed if p not in scan.files and not p.startswith(GENERATED_PREFIX)]
        )
        if added or updated or removed:
            self._generation += 1
            self._vectors = None
        return ReindexReport(
            added=added,
            updated=updated,
            removed=removed,
            unchanged=unchanged,
            skipped=scan.skipped,
        )

    async def _store_document(
        self, scanned: _ScannedFile, texts: list[str], *, embed: bool
    ) -> bool:
        """Embed (if `embed`) and store one document; return whether embedding still works."""
        vectors: list[bytes | None] = [None] * len(texts)
        model = ""
        if embed and texts:
            try:
                vectors = list(await self._embed(texts))
                model = self._model
            except (LLMError, trio.TooSlowError) as exc:
                self._embed_failures += 1
                log.warning(
                    "embedding %s with %s failed (%s); documents are searched by words until "
                    "the next reindex",
                    scanned.path,
                    self._model,
                    exc or f"over {EMBED_DEADLINE:.0f} s",
                )
                embed = False
        elif embed:
            model = self._model
        chunks = [NewChunk(text, vector) for text, vector in zip(texts, vectors, strict=True)]
        await self._documents.replace(scanned.path, scanned.digest, chunks, embedding_model=model)
        self._documents_indexed += 1
        self._chunks_written += len(chunks)
        return embed

    async def _embed(self, texts: Sequence[str]) -> list[bytes]:
        assert self._backend is not None
        encoded: list[bytes] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start : start + EMBED_BATCH]
            self._embed_requests += 1
            with trio.fail_after(EMBED_DEADLINE):
                vectors = await self._backend.embed(batch, model=self._model)
            encoded.extend(encode_vector(vector) for vector in vectors)
        return encoded

    async def _embed_query(self, query: str) -> list[float] | None:
        if self._backend is None:
            return None
        self._embed_requests += 1
        try:
            with trio.fail_after(QUERY_EMBED_DEADLINE):
                (vector,) = await self._backend.embed([query], model=self._model)
        except (LLMError, trio.TooSlowError) as exc:
            self._embed_failures += 1
            log.warning("embedding a query failed (%s); searching by words only", exc or "slow")
            return None
        return vector

    async def _vector_table(self) -> tuple[VectorTable, dict[int, tuple[str, str]]]:
        async with self._vectors_lock:
            if self._vectors is not None:
                return self._vectors
            generation = self._generation
            rows = await self._documents.embedded_chunks(self._model)
            table = await trio.to_thread.run_sync(_build_table, rows, limiter=self._cpu)
            loaded = (table, {row.chunk_id: (row.path, row.text) for row in rows})
            # A reindex that finished meanwhile made these rows stale: use them once, keep none.
            if generation == self._generation:
                self._vectors = loaded
            return loaded


def _build_table(rows: Sequence[EmbeddedChunk]) -> VectorTable:
    return VectorTable(
        [row.chunk_id for row in rows], [decode_vector(row.embedding) for row in rows]
    )


def scan_folder(root: Path, known: Mapping[str, str]) -> _Scan:
    """Hash the documents under `root`; chunk those whose hash differs from `known[path]`.

    Blocking: run it in a worker thread. Paths are relative to `root`, with ``/``. Files whose
    real path is outside `root` are refused, as are those over `MAX_DOCUMENT_BYTES`.
    """
    try:
        base = root.resolve(strict=True)
    except OSError:
        return _Scan({}, 0, missing=True)
    if not base.is_dir():
        return _Scan({}, 0, missing=True)
    files: dict[str, _ScannedFile] = {}
    skipped = 0
    # followlinks=False: a symlinked directory is not entered, wherever it points.
    for directory, subdirectories, names in os.walk(base, followlinks=False):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(names):
            path = Path(directory, name)
            if name.startswith(".") or path.suffix.lower() not in DOCUMENT_SUFFIXES:
                continue
            relative = path.relative_to(base).as_posix()
            if relative.startswith(GENERATED_PREFIX):
                log.warning("skipping the document %s: the name is reserved", relative)
                skipped += 1
                continue
            data = _read_inside(path, base, relative)
            if data is None:
                skipped += 1
                continue
            digest = hashlib.sha256(data).hexdigest()
            chunks = None
            if known.get(relative) != digest:
                chunks = chunk_text(data.decode("utf-8-sig", errors="replace"))
            files[relative] = _ScannedFile(relative, digest, chunks)
    return _Scan(files, skipped, missing=False)


def _read_inside(path: Path, base: Path, relative: str) -> bytes | None:
    """The bytes of `path` if it really is a file inside `base` and not too large; else None."""
    try:
        real = path.resolve(strict=True)
    except OSError as exc:
        log.warning("skipping the document %s: %s", relative, exc.strerror or exc)
        return None
    if not real.is_relative_to(base):
        log.warning("refusing the document %s: it leads outside the documents folder", relative)
        return None
    try:
        # Open the path that was checked, not the symlink, which could be changed meanwhile.
        with real.open("rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        log.warning("skipping the document %s: %s", relative, exc.strerror or exc)
        return None
    if len(data) > MAX_DOCUMENT_BYTES:
        log.warning(
            "skipping the document %s: it is over %d MiB", relative, MAX_DOCUMENT_BYTES >> 20
        )
        return None
    return data
