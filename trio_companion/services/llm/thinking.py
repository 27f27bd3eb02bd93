"""Remove the ``<think>…</think>`` reasoning of reasoning models from a streamed reply (sans-IO).

Theory of operation
-------------------
A reasoning model streams its reasoning between ``<think>`` and ``</think>`` (some use
``<thinking>``), then the answer. The pieces of a stream are cut anywhere, so a tag may arrive
split (``"<thi"`` + ``"nk>"``). `ThinkingFilter` keeps two bits of state: whether it is inside a
block, and a *pending* tail of the input that could still become a tag. ``feed`` scans the pending
tail plus the new piece for ``<``; a complete tag switches state, a tail that is a proper prefix
of a tag waits for the next piece, anything else is text: shown outside a block, dropped inside.

Rules, all independent of how the input is split:

- Text inside a block is never shown, even when the block is never closed (a reply cut off by
  ``num_predict`` in the middle of its reasoning shows nothing of it).
- A closing tag without an opening one is dropped. (Some chat templates put ``<think>`` in the
  prompt, so the model's output starts with reasoning and an orphan ``</think>``; that reasoning
  has already been streamed when the tag arrives and cannot be taken back, but the tag itself is
  never shown.)
- Whitespace at the very start of the visible text is dropped: models put blank lines after
  ``</think>``, and a reply should not start with them.
- Tags match case-insensitively; nothing else about them is lenient (no attributes, no spaces).

Reasoning that a server sends in a separate field (``thinking``, ``reasoning_content``) never
reaches this filter: the backends ignore those fields.
"""

from __future__ import annotations

from typing import Final, final

__all__ = ["ThinkingFilter", "strip_thinking"]

_OPEN_TAGS: Final = ("<think>", "<thinking>")
_CLOSE_TAGS: Final = ("</think>", "</thinking>")
_ALL_TAGS: Final = _OPEN_TAGS + _CLOSE_TAGS


@final
class ThinkingFilter:
    """Incremental remover of thinking blocks: ``feed`` each piece, then ``finish`` once."""

    def __init__(self) -> None:
        self._inside = False
        self._pending = ""
        self._started = False  # some visible non-whitespace text has been returned

    @property
    def inside(self) -> bool:
        """True while the input so far ends inside a thinking block."""
        return self._inside

    def feed(self, piece: str) -> str:
        """Consume ``piece``; return the text that became visible (often ``""``)."""
        text = self._pending + piece
        self._pending = ""
        out: list[str] = []
        start = 0  # beginning of the text not yet classified
        search = 0
        while (lt := text.find("<", search)) != -1:
            tag = _tag_at(text, lt)
            if tag is None:
                if _could_become_tag(text, lt):
                    self._pending = text[lt:]
                    break
                search = lt + 1
                continue
            if not self._inside:
                out.append(text[start:lt])
            if tag in _OPEN_TAGS:
                self._inside = True
            elif self._inside:
                self._inside = False
            start = search = lt + len(tag)
        else:
            lt = len(text)
        if not self._inside:
            out.append(text[start:lt])
        return self._visible("".join(out))

    def finish(self) -> str:
        """End of input: return what was held back (a ``<…`` that never became a tag)."""
        pending, self._pending = self._pending, ""
        if self._inside:
            return ""
        return self._visible(pending)

    def _visible(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text


def strip_thinking(text: str) -> str:
    """The visible part of a whole reply (the one-shot form of `ThinkingFilter`)."""
    thinking = ThinkingFilter()
    return thinking.feed(text) + thinking.finish()


def _tag_at(text: str, index: int) -> str | None:
    for tag in _ALL_TAGS:
        if text[index : index + len(tag)].lower() == tag:
            return tag
    return None


def _could_become_tag(text: str, index: int) -> bool:
    """Whether ``text[index:]`` (shorter than a tag) is the start of one."""
    tail = text[index:].lower()
    return any(len(tail) < len(tag) and tag.startswith(tail) for tag in _ALL_TAGS)
