"""Retrieval-augmented generation: the documents folder, searchable by words and by meaning.

`DocumentIndex` (``index``) keeps the folder's ``.md`` and ``.txt`` files chunked
(``chunking``) and indexed in the store, and searches them; ``retrieve`` holds the pure parts:
rank fusion, cosine ranking and `format_context`, which renders passages for a prompt. The chat
service puts ``format_context(await index.search(question, k=...), budget)`` into its system
context.
"""

from trio_companion.services.rag.chunking import CHUNK_OVERLAP, CHUNK_SIZE, chunk_text
from trio_companion.services.rag.index import (
    DOCUMENT_SUFFIXES,
    DocumentIndex,
    IndexStatistics,
    ReindexReport,
)
from trio_companion.services.rag.retrieve import Passage, format_context, reciprocal_rank_fusion

__all__ = [
    "CHUNK_OVERLAP",
    "CHUNK_SIZE",
    "DOCUMENT_SUFFIXES",
    "DocumentIndex",
    "IndexStatistics",
    "Passage",
    "ReindexReport",
    "chunk_text",
    "format_context",
    "reciprocal_rank_fusion",
]
