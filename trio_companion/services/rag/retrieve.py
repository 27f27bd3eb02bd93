"""The pure parts of retrieval: vectors, cosine ranking, rank fusion, and the prompt's context.

Theory of operation
-------------------
A search ranks chunks twice: by BM25 in SQLite's FTS5 index (always) and, when an embedding
model is configured, by the cosine similarity of their stored embeddings to the query's. The two
rankings are fused by reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): a chunk
scores ``sum(1 / (RRF_K + rank))`` over the rankings it appears in. Only ranks count, so BM25
scores and cosines, which live on different scales, need no calibration, and a chunk both
rankings agree on rises above one that only one of them found.

Everything here is synchronous. `VectorTable.top` is CPU work on a matrix and runs in a worker
thread (`trio_companion.services.rag.index`); the rest is cheap.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Final, TypeVar, final

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "RRF_K",
    "Passage",
    "VectorTable",
    "decode_vector",
    "encode_vector",
    "format_context",
    "reciprocal_rank_fusion",
]

_K = TypeVar("_K", bound=Hashable)

# The constant of reciprocal rank fusion; 60 is the value of the paper, used by most systems.
RRF_K: Final = 60
# Little-endian float32: what ``chunks.embedding`` holds (migration 4).
_VECTOR_DTYPE: Final = np.dtype("<f4")
_ELLIPSIS: Final = "…"
# Less than this much of a passage is not worth its header.
_MIN_CUT: Final = 80

Matrix = npt.NDArray[np.float32]


@final
class Passage(msgspec.Struct, frozen=True, kw_only=True):
    """A retrieved piece of a document."""

    source: str
    """The document's path, relative to the documents folder."""
    text: str
    score: float
    """Its fused score: higher is better; only comparable within one search."""


def encode_vector(vector: Sequence[float]) -> bytes:
    """`vector` as stored: little-endian float32 bytes."""
    return np.asarray(vector, dtype=_VECTOR_DTYPE).tobytes()


def decode_vector(blob: bytes) -> Matrix:
    """A stored vector back as a float32 array."""
    return np.frombuffer(blob, dtype=_VECTOR_DTYPE).astype(np.float32)


@final
class VectorTable:
    """Unit-length row vectors with an integer key (a chunk id) each, for cosine ranking.

    Immutable once built.

    Rows whose length differs from the most common one (left by another model) are dropped, as
    are zero vectors, which have no direction.
    """

    def __init__(self, keys: Sequence[int], vectors: Sequence[Matrix]) -> None:
        dims = [len(vector) for vector in vectors]
        dim = max(set(dims), key=dims.count) if dims else 0
        kept = [(key, v) for key, v in zip(keys, vectors, strict=True) if len(v) == dim]
        matrix = np.array([v for _, v in kept], dtype=np.float32).reshape(len(kept), dim)
        norms = np.linalg.norm(matrix, axis=1)
        nonzero = norms > 0
        self._keys: list[int] = [key for (key, _), ok in zip(kept, nonzero, strict=True) if ok]
        self._matrix: Matrix = matrix[nonzero] / norms[nonzero, None]
        self.dim = dim

    def __len__(self) -> int:
        return len(self._keys)

    def top(self, query: Sequence[float], n: int) -> list[tuple[int, float]]:
        """The `n` keys whose vectors are most similar to `query` (cosine), best first.

        Empty when `query` has another length than the rows or no direction.
        """
        vector = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if vector.shape != (self.dim,) or norm == 0 or n <= 0 or not self._keys:
            return []
        similarities = self._matrix @ (vector / norm)
        count = min(n, len(self._keys))
        best = np.argpartition(-similarities, count - 1)[:count]
        # Ties by row order, so equal vectors rank the same way every time.
        order = sorted(best.tolist(), key=lambda row: (-float(similarities[row]), row))
        return [(self._keys[row], float(similarities[row])) for row in order]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[_K]], *, k: int = RRF_K
) -> list[tuple[_K, float]]:
    """Fuse `rankings` (keys, best first) into one: keys by ``sum(1 / (k + rank))``, best first.

    Ranks start at 1. A key repeated within one ranking counts at its best rank. Ties keep the
    order in which the keys first appear (the first ranking first).
    """
    scores: dict[_K, float] = {}
    for ranking in rankings:
        seen: set[_K] = set()
        for rank, key in enumerate(ranking, 1):
            if key in seen:
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def format_context(passages: Sequence[Passage], budget_chars: int) -> str:
    """`passages` for the prompt, each under a ``[source: path]`` header, in at most
    `budget_chars` characters.

    Passages are taken in order while they fit; the first one that does not is cut (with "…")
    if at least a line of it fits, and the rest are left out. '' when nothing fits.
    """
    parts: list[str] = []
    used = 0
    for passage in passages:
        header = f"[source: {passage.source}]\n"
        separator = "\n\n" if parts else ""
        block = f"{separator}{header}{passage.text.strip()}"
        if used + len(block) <= budget_chars:
            parts.append(block)
            used += len(block)
            continue
        room = budget_chars - used - len(separator) - len(header) - len(_ELLIPSIS)
        if room >= _MIN_CUT:
            parts.append(f"{separator}{header}{passage.text.strip()[:room].rstrip()}{_ELLIPSIS}")
        break
    return "".join(parts)
