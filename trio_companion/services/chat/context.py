"""Extra context for the system message: what the companion knows beyond the conversation.

A `ContextSource` turns a request into a few lines for the system message (retrieved document
passages, what the companion knows about the speaker…). The chat service asks each source under
its own small deadline: knowledge makes replies better, but never late — a slow or failing
source is skipped (and logged), and the reply goes on without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol, final

from trio_companion.services.profiles.summary import profile_summary
from trio_companion.services.rag.retrieve import format_context
from trio_companion.services.search.auto import looks_time_sensitive

if TYPE_CHECKING:
    from trio_companion.services.chat.service import ChatRequest
    from trio_companion.services.rag.index import DocumentIndex
    from trio_companion.services.search.base import SearchProvider
    from trio_companion.storage import Store

__all__ = [
    "CONTEXT_DEADLINE",
    "ContextSource",
    "DocumentContext",
    "ProfileContext",
    "SearchContext",
]

# Seconds each source may take; retrieval is a local index (and maybe one embedding request).
CONTEXT_DEADLINE: Final = 3.0
# Characters of retrieved passages in the prompt (about 600 tokens).
DOCUMENT_BUDGET: Final = 1800
# Characters of what is known about the speaker (about 500 tokens).
PROFILE_BUDGET: Final = 1500


class ContextSource(Protocol):
    async def context_for(self, request: ChatRequest) -> str:
        """Lines for the system message ('' for nothing); may raise `CompanionError`."""
        ...


@final
class DocumentContext:
    """Passages from the documents folder (and stored summaries) that match the message."""

    def __init__(self, index: DocumentIndex, *, k: int, budget_chars: int = DOCUMENT_BUDGET):
        self._index = index
        self._k = k
        self._budget = budget_chars

    async def context_for(self, request: ChatRequest) -> str:
        passages = await self._index.search(request.content, k=self._k)
        text = format_context(passages, self._budget)
        if not text:
            return ""
        return (
            "Passages from your documents that may be relevant (use them only if they help, "
            "and say which source you used):\n" + text
        )


@final
class ProfileContext:
    """What the companion learned about the person it is answering (facts, relationship, their
    own `/remember` wishes, clearly delimited)."""

    def __init__(self, store: Store, *, budget_chars: int = PROFILE_BUDGET) -> None:
        self._store = store
        self._budget = budget_chars

    async def context_for(self, request: ChatRequest) -> str:
        text = await profile_summary(self._store, request.author_id, max_chars=self._budget)
        if not text:
            return ""
        return f"What you know about {request.author_name}, who wrote the last message:\n{text}"


@final
class SearchContext:
    """Web results for questions about the here and now (`looks_time_sensitive`), when
    automatic search is on. The model is asked to cite them with their links, since an ordinary
    reply has no list of sources under it."""

    def __init__(self, provider: SearchProvider, *, limit: int = 3) -> None:
        self._provider = provider
        self._limit = limit

    async def context_for(self, request: ChatRequest) -> str:
        if not looks_time_sensitive(request.content):
            return ""
        results = await self._provider.search(request.content, limit=self._limit)
        if not results:
            return ""
        lines = ["Fresh web search results for the last message:"]
        for number, result in enumerate(results, 1):
            lines.append(f"[{number}] {result.title} <{result.url}>")
            if result.snippet:
                lines.append(f"    {result.snippet}")
        lines.append(
            "If you use them, say which ones, with their links in angle brackets like "
            "<https://example.com>; if they do not answer the question, say so."
        )
        return "\n".join(lines)
