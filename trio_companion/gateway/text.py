"""Splitting long text into Discord messages without breaking paragraphs or code blocks."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MESSAGE_LIMIT", "split_message"]

# Discord's limit on message content (docs: resources/message.mdx "Create Message").
MESSAGE_LIMIT: Final = 2000

_FENCE: Final = re.compile(r"^```([^\s`]*)", re.MULTILINE)
# Cut preferences, best first: a paragraph break, a line break, a sentence end, a space.
_BREAKS: Final = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?…])\s+"),
    re.compile(r"\s+"),
)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters.

    Cuts at the last paragraph break that fits, else a line break, a sentence end, a space, and
    only as a last resort mid-word. A cut never falls inside a code block when the block can be
    kept whole; a block longer than a message is cut at a line break, closed with a fence and
    reopened (same language) in the next chunk. Whitespace at the cuts is dropped; empty text
    gives no chunks.
    """
    if limit < 16:
        raise ValueError("limit is too small to split code blocks")
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        head, rest = _cut(rest, limit)
        if head.strip():
            chunks.append(head.rstrip())
        rest = rest.lstrip("\n ")
    if rest.strip():
        chunks.append(rest)
    return chunks


def _cut(text: str, limit: int) -> tuple[str, str]:
    blocks = _code_blocks(text)
    window = text[: limit + 1]
    for pattern in _BREAKS:
        cuts = [m for m in pattern.finditer(window) if 0 < m.start() <= limit]
        cuts = [m for m in cuts if not _inside(m.start(), blocks)]
        if cuts:
            best = cuts[-1]
            return text[: best.start()], text[best.end() :]
    inside = next(((s, e, lang) for s, e, lang in blocks if s < limit < e), None)
    if inside is not None:
        return _cut_code(text, limit, inside)
    return text[:limit], text[limit:]


def _cut_code(text: str, limit: int, block: tuple[int, int, str]) -> tuple[str, str]:
    start, _, lang = block
    closing = "\n```"
    budget = limit - len(closing)
    newline = text.rfind("\n", start + 1, budget)
    at = newline if newline > start + 3 + len(lang) else budget
    if at <= start:  # the block starts too late to hold even a line: cut before it
        return text[:start], text[start:]
    return text[:at] + closing, f"```{lang}\n" + text[at:].lstrip("\n")


def _code_blocks(text: str) -> list[tuple[int, int, str]]:
    """Spans (start, end, language) of fenced code blocks; an unclosed one runs to the end."""
    fences = list(_FENCE.finditer(text))
    spans = []
    for i in range(0, len(fences), 2):
        opening = fences[i]
        end = fences[i + 1].end() if i + 1 < len(fences) else len(text)
        spans.append((opening.start(), end, opening.group(1)))
    return spans


def _inside(position: int, blocks: list[tuple[int, int, str]]) -> bool:
    return any(start < position < end for start, end, _ in blocks)
