"""Documents for retrieval: their chunks, embeddings and full-text index (``store.documents``).

A document is a source of text (a file of the documents folder, named by its path relative to
it) with the sha256 of its content and the embedding model its chunks were embedded with. Its
chunks are replaced all at once (`DocumentsRepository.replace`, one transaction), so a search
never sees half of an old and half of a new version. The FTS5 table ``chunks_fts`` follows
``chunks`` through triggers (migration 4), and deleting a document deletes its chunks
(``ON DELETE CASCADE``) and so their index entries.

User text never reaches FTS5's query syntax: `fts_query` keeps only the words of what was typed
and quotes each one, so quotes, ``*``, ``NEAR``, ``-`` or ``:`` are plain text, never operators.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Final, final

import msgspec

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from trio_companion.storage.db import Database

__all__ = [
    "ChunkHit",
    "DocumentsRepository",
    "EmbeddedChunk",
    "IndexedDocument",
    "NewChunk",
    "fts_query",
]

# A question has a few dozen words at most; more only slows the query down.
MAX_QUERY_TERMS: Final = 32
# Letters and digits (any script) in runs: what the unicode61 tokenizer would index as tokens.
_WORD: Final = re.compile(r"\w+", re.UNICODE)

_HASHES: Final = "SELECT path, content_hash, embedding_model FROM documents"
_FIND: Final = "SELECT id FROM documents WHERE path = ?"
_INSERT_DOCUMENT: Final = (
    "INSERT INTO documents (path, content_hash, embedding_model, indexed_at) VALUES (?, ?, ?, ?)"
)
_UPDATE_DOCUMENT: Final = (
    "UPDATE documents SET content_hash = ?, embedding_model = ?, indexed_at = ? WHERE id = ?"
)
_DELETE_CHUNKS: Final = "DELETE FROM chunks WHERE document_id = ?"
_INSERT_CHUNK: Final = (
    "INSERT INTO chunks (document_id, ordinal, text, embedding) VALUES (?, ?, ?, ?)"
)
_DELETE_DOCUMENT: Final = "DELETE FROM documents WHERE path = ?"
# bm25() is lower for better matches; the score handed out is its negation (higher is better).
_SEARCH: Final = """
    SELECT chunks.id, documents.path, chunks.ordinal, chunks.text, -bm25(chunks_fts)
    FROM chunks_fts
    JOIN chunks ON chunks.id = chunks_fts.rowid
    JOIN documents ON documents.id = chunks.document_id
    WHERE chunks_fts MATCH ?
    ORDER BY bm25(chunks_fts), chunks.id
    LIMIT ?
"""
_EMBEDDED: Final = """
    SELECT chunks.id, documents.path, chunks.ordinal, chunks.text, chunks.embedding
    FROM chunks JOIN documents ON documents.id = chunks.document_id
    WHERE chunks.embedding IS NOT NULL AND documents.embedding_model = ?
    ORDER BY chunks.id
"""
_COUNTS: Final = "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)"


@final
class NewChunk(msgspec.Struct, frozen=True):
    """A chunk to store: its text and, if embedded, its vector as little-endian float32 bytes."""

    text: str
    embedding: bytes | None = None


@final
class IndexedDocument(msgspec.Struct, frozen=True, kw_only=True):
    """What is stored about a document, to tell whether it changed."""

    path: str
    content_hash: str
    embedding_model: str
    """The model its chunks were embedded with; '' if they were not."""


@final
class ChunkHit(msgspec.Struct, frozen=True, kw_only=True):
    """A chunk found by the full-text search."""

    chunk_id: int
    path: str
    ordinal: int
    text: str
    score: float
    """The negated BM25 score: higher is a better match; only comparable within one search."""


@final
class EmbeddedChunk(msgspec.Struct, frozen=True, kw_only=True):
    chunk_id: int
    path: str
    ordinal: int
    text: str
    embedding: bytes


def fts_query(text: str, *, max_terms: int = MAX_QUERY_TERMS) -> str:
    """An FTS5 query matching any of the words of `text`, or '' if it has none.

    Each word becomes a quoted string (FTS5 doubles quotes inside one; ``\\w+`` words hold none),
    so no character of `text` is ever FTS5 syntax. Repeated words are kept once, in order.
    """
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))
    # Words like "the" match nearly every chunk; searching by them pulls unrelated passages
    # into the prompt. A query of nothing else keeps them.
    content = [word for word in words if word not in _STOPWORDS] or words
    return " OR ".join(f'"{word}"' for word in content[:max_terms])


# Common English function words, left out of searches when the query has other words.
_STOPWORDS: Final = frozenset(
    [
        "a",
        "about",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "some",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


@final
class DocumentsRepository:
    """The ``documents`` and ``chunks`` tables and the ``chunks_fts`` index.

    Every method is one transaction; writes return after COMMIT. Errors and cancellation as in
    `Database.write` / `Database.read`.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def indexed(self) -> dict[str, IndexedDocument]:
        """Every stored document, by path."""

        def select(conn: sqlite3.Connection) -> dict[str, IndexedDocument]:
            return {
                path: IndexedDocument(path=path, content_hash=digest, embedding_model=model)
                for path, digest, model in conn.execute(_HASHES)
            }

        return await self._db.read(select)

    async def replace(
        self,
        path: str,
        content_hash: str,
        chunks: Sequence[NewChunk],
        *,
        embedding_model: str = "",
        indexed_at: float | None = None,
    ) -> int:
        """Store `path` with exactly `chunks` (its old chunks deleted), in one transaction.

        Adds the document if it is new. Returns the document's id.
        """
        when = time.time() if indexed_at is None else indexed_at
        rows = list(chunks)

        def write(conn: sqlite3.Connection) -> int:
            found = conn.execute(_FIND, (path,)).fetchone()
            if found is None:
                cursor = conn.execute(_INSERT_DOCUMENT, (path, content_hash, embedding_model, when))
                if cursor.lastrowid is None:  # pragma: no cover - SQLite sets it after INSERT
                    raise AssertionError("INSERT did not set lastrowid")
                document_id = cursor.lastrowid
            else:
                document_id = int(found[0])
                conn.execute(_UPDATE_DOCUMENT, (content_hash, embedding_model, when, document_id))
                conn.execute(_DELETE_CHUNKS, (document_id,))
            conn.executemany(
                _INSERT_CHUNK,
                (
                    (document_id, ordinal, chunk.text, chunk.embedding)
                    for ordinal, chunk in enumerate(rows)
                ),
            )
            return document_id

        return await self._db.write(write)

    async def remove(self, paths: Sequence[str]) -> int:
        """Delete the documents at `paths` with their chunks; return how many existed."""
        targets = list(paths)

        def delete(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(_DELETE_DOCUMENT, (path,)).rowcount for path in targets)

        if not targets:
            return 0
        return await self._db.write(delete)

    async def search_fts(self, query: str, limit: int) -> list[ChunkHit]:
        """The up to `limit` chunks best matching the words of `query` (BM25), best first.

        `query` is what a user typed: see `fts_query`. A query without words finds nothing.
        """
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        match = fts_query(query)
        if not match or limit == 0:
            return []

        def select(conn: sqlite3.Connection) -> list[ChunkHit]:
            return [
                ChunkHit(chunk_id=row_id, path=path, ordinal=ordinal, text=text, score=score)
                for row_id, path, ordinal, text, score in conn.execute(_SEARCH, (match, limit))
            ]

        return await self._db.read(select)

    async def embedded_chunks(self, embedding_model: str) -> list[EmbeddedChunk]:
        """Every chunk embedded with `embedding_model`, in id order."""

        def select(conn: sqlite3.Connection) -> list[EmbeddedChunk]:
            return [
                EmbeddedChunk(
                    chunk_id=row_id, path=path, ordinal=ordinal, text=text, embedding=blob
                )
                for row_id, path, ordinal, text, blob in conn.execute(_EMBEDDED, (embedding_model,))
            ]

        return await self._db.read(select)

    async def counts(self) -> tuple[int, int]:
        """How many documents and chunks are stored."""

        def select(conn: sqlite3.Connection) -> tuple[int, int]:
            documents, chunks = conn.execute(_COUNTS).fetchone()
            return int(documents), int(chunks)

        return await self._db.read(select)
