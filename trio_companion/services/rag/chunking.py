"""Splitting a document into overlapping chunks: a pure function, no I/O.

The text is cut into units at the largest boundary that keeps a unit under the chunk size:
paragraphs (blank lines), else sentences, else words, else characters. Units are packed into
chunks of at most `CHUNK_SIZE` characters; each chunk after the first starts with the last units
of the one before, up to `CHUNK_OVERLAP` characters, so a passage cut at a chunk border is still
found whole in one of the two.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CHUNK_OVERLAP", "CHUNK_SIZE", "chunk_text"]

# Around 200 tokens: several chunks fit a prompt's context budget, and each is about one topic.
CHUNK_SIZE: Final = 800
# About two sentences carried into the next chunk.
CHUNK_OVERLAP: Final = 150

_PARAGRAPHS: Final = re.compile(r"\n\s*\n")
_SENTENCE_END: Final = re.compile(r"(?<=[.!?…])\s+")
# Between paragraphs, and between the sentences (or pieces) of one paragraph.
_PARAGRAPH_BREAK: Final = "\n\n"
_SPACE: Final = " "


def chunk_text(text: str, *, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """`text` as chunks of at most `size` characters, overlapping by up to `overlap`.

    Paragraphs are kept apart by a blank line and sentences by a space; other whitespace inside
    a sentence is kept. A blank text has no chunks. Raises `ValueError` unless
    ``0 <= overlap < size``.
    """
    if not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, not overlap={overlap}, size={size}")
    chunks: list[str] = []
    current: list[tuple[str, str]] = []  # (separator before it, unit)
    fresh = False  # whether `current` holds a unit not yet in a chunk
    for unit in _units(text, size):
        if current and _length([*current, unit]) > size:
            chunks.append(_join(current))
            current = _tail(current, overlap)
            while current and _length([*current, unit]) > size:
                current.pop(0)
        current.append(unit)
        fresh = True
    if fresh:
        chunks.append(_join(current))
    return chunks


def _units(text: str, size: int) -> list[tuple[str, str]]:
    """The sentences of `text` (cut further if longer than `size`), each with its separator."""
    units: list[tuple[str, str]] = []
    for paragraph in _PARAGRAPHS.split(text):
        pieces = [
            piece
            for sentence in _SENTENCE_END.split(paragraph.strip())
            for piece in _cut(sentence.strip(), size)
        ]
        units.extend(
            (_PARAGRAPH_BREAK if index == 0 else _SPACE, piece)
            for index, piece in enumerate(pieces)
        )
    return units


def _cut(sentence: str, size: int) -> list[str]:
    """`sentence` as pieces within `size`: whole if it fits, else at spaces, else anywhere."""
    if len(sentence) <= size:
        return [sentence] if sentence else []
    pieces: list[str] = []
    for word in sentence.split():
        # A "word" longer than a chunk (a URL, a hash) is cut where it must be.
        for part in (word[start : start + size] for start in range(0, len(word), size)):
            if pieces and len(pieces[-1]) + 1 + len(part) <= size:
                pieces[-1] += _SPACE + part
            else:
                pieces.append(part)
    return pieces


def _join(units: list[tuple[str, str]]) -> str:
    return "".join(unit if index == 0 else sep + unit for index, (sep, unit) in enumerate(units))


def _length(units: list[tuple[str, str]]) -> int:
    return sum(len(unit) + (len(sep) if index else 0) for index, (sep, unit) in enumerate(units))


def _tail(units: list[tuple[str, str]], overlap: int) -> list[tuple[str, str]]:
    """The last of `units` that together fit in `overlap` characters."""
    kept: list[tuple[str, str]] = []
    for unit in reversed(units):
        if _length([unit, *kept]) > overlap:
            break
        kept.insert(0, unit)
    return kept
