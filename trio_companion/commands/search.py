"""/search: look something up on the web and let the companion answer with sources.

The search runs under `SEARCH_DEADLINE`; its results go to the chat service as extra system
context (numbered, with their URLs, the model asked to cite them as [1], [2]), the question as a
one-shot message (no history, like /ask). When the streamed answer is complete, a "Sources:"
line of Markdown links is added to its last message (or sent after it when it would not fit).
Failures (search off, search failed, nothing found) are told only to the caller.

No ``from __future__ import annotations`` here: the registry evaluates the annotations of the
commands declared inside `register` (see ``commands/chat.py``).
"""

import logging
from typing import TYPE_CHECKING, Annotated, Final, final

import trio

from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.interactions import Interaction
from trio_companion.gateway.text import MESSAGE_LIMIT, split_message
from trio_companion.services.chat.service import ChatRequest
from trio_companion.services.chat.sinks import InteractionSink
from trio_companion.services.chat.writer import MessageSink
from trio_companion.services.search.base import DEFAULT_LIMIT, SearchResult
from trio_companion.services.search.errors import SearchError, SearchTimeout

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["format_context", "format_sources", "register"]

log = logging.getLogger(__name__)

# The predecessor's /search: 5 s per user. Queries are search-box sized.
SEARCH_COOLDOWN: Final = 5.0
QUERY_LIMIT: Final = 200
# The whole search, connect to parsed results; the model's answer has its own budget after.
SEARCH_DEADLINE: Final = 15.0
SEARCH_OFF: Final = "Web search is off: set memory.search_provider in the configuration."


def register(registry: CommandRegistry, app: "App") -> None:
    @registry.command(
        description="Search the web and get an answer with sources", cooldown=SEARCH_COOLDOWN
    )
    async def search(
        ctx: Interaction,
        query: Annotated[str, Param("What to look up", max_length=QUERY_LIMIT)],
    ) -> None:
        await _search(app, ctx, query.strip())


async def _search(app: "App", ctx: Interaction, query: str) -> None:
    provider = app.search
    if provider is None:
        await ctx.error(SEARCH_OFF)
        return
    if not query:
        await ctx.error("Tell me what to search for.")
        return
    await ctx.defer()
    try:
        with trio.fail_after(SEARCH_DEADLINE):
            results = await provider.search(query, limit=DEFAULT_LIMIT)
    except trio.TooSlowError:
        log.warning("/search: %s took over %.0f s", provider.name, SEARCH_DEADLINE)
        await ctx.error(str(SearchTimeout(provider.name)))
        return
    except SearchError as exc:
        log.warning("/search failed: %s", exc)
        await ctx.error(str(exc))
        return
    if not results:
        await ctx.error(f"{provider.name} found nothing for “{query}”.")
        return
    user = ctx.user
    name = "someone"
    if user is not None:
        name = app.cache.display_name(user.id, ctx.guild_id) or user.display_name
    request = ChatRequest(
        channel_id=ctx.channel_id or 0,
        guild_id=ctx.guild_id,
        author_id=ctx.user_id,
        author_name=name,
        content=query,
        use_history=False,
        context=format_context(query, results),
    )
    sink = _FooterSink(InteractionSink(ctx))
    await app.chat.reply(request, sink)
    await sink.add_footer(format_sources(results))


def format_context(query: str, results: list[SearchResult]) -> str:
    """The system-message addition: the numbered results and how to use them."""
    lines = [f"Web search results for “{query}”:", ""]
    for number, result in enumerate(results, 1):
        lines.append(f"[{number}] {result.title}")
        lines.append(f"URL: {result.url}")
        if result.snippet:
            lines.append(result.snippet)
        lines.append("")
    lines.append(
        "Answer the user's question with these results. Cite the results you use by their "
        "number, as [1] or [2]. If they do not answer the question, say so. Do not write URLs: "
        "the links are listed under your answer."
    )
    return "\n".join(lines)


def format_sources(results: list[SearchResult]) -> str:
    """``Sources: [1](<url>) · [2](<url>)``; angle brackets keep Discord from embedding them."""
    links = " · ".join(f"[{n}](<{r.url}>)" for n, r in enumerate(results, 1))
    return f"Sources: {links}"


@final
class _FooterSink:
    """A `MessageSink` that remembers its last message, so a footer can be added to it."""

    def __init__(self, sink: MessageSink) -> None:
        self._sink = sink
        self._last: object | None = None
        self._last_content = ""

    async def typing(self) -> None:
        await self._sink.typing()

    async def send(self, content: str) -> object:
        handle = await self._sink.send(content)
        self._last, self._last_content = handle, content
        return handle

    async def edit(self, handle: object, content: str) -> None:
        await self._sink.edit(handle, content)
        if handle is self._last:
            self._last_content = content

    async def add_footer(self, footer: str) -> None:
        """Append ``footer`` to the last message, or send it after when it does not fit."""
        combined = f"{self._last_content.rstrip()}\n\n{footer}"
        if self._last is not None and len(combined) <= MESSAGE_LIMIT:
            await self.edit(self._last, combined)
            return
        for chunk in split_message(footer):
            await self.send(chunk)
