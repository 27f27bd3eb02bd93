"""``/summarize_now`` and ``/recall``: the channel's long-term memory, and what triggers it.

* Every MESSAGE_CREATE asks the summarizer to check its channel (`Summarizer.request`: no I/O,
  never blocks; the counting happens in the summarizer's own task). This module registers that
  listener, so the chat code needs no change.
* ``/summarize_now`` (30 s cooldown per user) summarises this channel's turns since the last
  summary now, whatever the threshold, if there are at least `MIN_NEW_TURNS`; it shows the
  summary in the channel.
* ``/recall query:`` (5 s cooldown; at most 200 characters) shows, privately, this channel's
  summaries that best match the query, with their dates: found through the document index when
  retrieval is on, else (or when that finds none) by the words they share with the query.

No ``from __future__ import annotations`` here: the registry evaluates the annotations of the
commands declared inside `register` (see ``commands/chat.py``).
"""

import logging
import re
from typing import TYPE_CHECKING, Annotated, Final

import trio

from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.events import MessageCreate
from trio_companion.gateway.interactions import Interaction
from trio_companion.gateway.text import MESSAGE_LIMIT
from trio_companion.services.memory import SummaryFailed, summary_document_path
from trio_companion.storage import Summary

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = [
    "MIN_NEW_TURNS",
    "QUERY_LIMIT",
    "RECALL_COOLDOWN",
    "SUMMARIZE_COOLDOWN",
    "register",
    "render_matches",
    "word_matches",
]

log = logging.getLogger(__name__)

# The numbers: a summary costs a model call, so twice a minute per user at most.
SUMMARIZE_COOLDOWN: Final = 30.0
# /recall costs a search: the pace of /docs and /search.
RECALL_COOLDOWN: Final = 5.0
QUERY_LIMIT: Final = 200
# Fewer new messages than this make a summary that says nothing.
MIN_NEW_TURNS: Final = 4
# /summarize_now end to end: waiting for a background summary in progress, then its own (whose
# model call has its own, shorter deadline). Interaction tokens last 15 minutes.
SUMMARIZE_DEADLINE: Final = 420.0
RECALL_DEADLINE: Final = 20.0
# Matches shown by /recall, and how many passages and stored summaries it looks through.
RECALL_RESULTS: Final = 3
RECALL_CANDIDATES: Final = 20
RECALL_SCAN: Final = 500
PREVIEW: Final = 500
NO_CHANNEL: Final = "This works in a channel only."
_WORD: Final = re.compile(r"\w+", re.UNICODE)


def register(registry: CommandRegistry, app: "App") -> None:
    memory = app.memory

    async def on_message(event: MessageCreate) -> None:
        memory.request(event.channel_id)

    app.dispatcher.add_listener(MessageCreate, on_message)

    @registry.command(
        "summarize_now",
        description="Summarise this channel's conversation since the last summary",
        cooldown=SUMMARIZE_COOLDOWN,
    )
    async def summarize_now(ctx: Interaction) -> None:
        channel_id = ctx.channel_id
        if channel_id is None:
            await ctx.error(NO_CHANNEL)
            return
        await ctx.defer()
        try:
            with trio.fail_after(SUMMARIZE_DEADLINE):
                summary = await memory.summarize(channel_id, min_turns=MIN_NEW_TURNS)
        except SummaryFailed as exc:
            await ctx.error(f"I could not summarise this conversation: {exc}.")
            return
        except trio.TooSlowError:
            await ctx.error("Summarising is taking too long; try again later.")
            return
        if summary is None:
            await ctx.respond(
                f"Nothing to summarise yet: this channel has fewer than {MIN_NEW_TURNS} new "
                "messages since its last summary."
            )
            return
        turns = summary.last_turn_id - summary.first_turn_id + 1
        await ctx.respond(
            f"**Summary of this conversation** (up to {turns} messages):\n{summary.text}"
        )

    @registry.command(
        description="Search this channel's conversation summaries",
        cooldown=RECALL_COOLDOWN,
        ephemeral=True,
    )
    async def recall(
        ctx: Interaction,
        query: Annotated[str, Param("What to remember", max_length=QUERY_LIMIT)],
    ) -> None:
        text = query.strip()
        channel_id = ctx.channel_id
        if channel_id is None:
            await ctx.error(NO_CHANNEL)
            return
        if not text:
            await ctx.error("Tell me what to look for.")
            return
        try:
            with trio.fail_after(RECALL_DEADLINE):
                found = await _search(app, channel_id, text)
        except trio.TooSlowError:
            await ctx.error("Searching the memories took too long; try again later.")
            return
        if not found:
            await ctx.respond(f"I remember nothing in this channel about “{text}”.")
            return
        await ctx.respond(render_matches(text, found))


async def _search(app: "App", channel_id: int, query: str) -> list[Summary]:
    found: list[Summary] = []
    if app.rag is not None:
        prefix = summary_document_path(channel_id, 0).removesuffix("0")
        passages = await app.rag.search(query, k=RECALL_CANDIDATES)
        seen: set[int] = set()
        for passage in passages:
            if not passage.source.startswith(prefix):
                continue
            tail = passage.source.removeprefix(prefix)
            if not tail.isdigit() or int(tail) in seen:
                continue
            seen.add(int(tail))
            summary = await app.store.summaries.get(int(tail))
            if summary is not None and summary.channel_id == channel_id:
                found.append(summary)
            if len(found) == RECALL_RESULTS:
                break
    if found:
        return found
    stored = await app.store.summaries.list(channel_id, limit=RECALL_SCAN)
    return word_matches(query, stored)[:RECALL_RESULTS]


def word_matches(query: str, summaries: list[Summary]) -> list[Summary]:
    """The `summaries` sharing a word with `query` (case-insensitive), most shared words first,
    newer first among equals."""
    wanted = {word.lower() for word in _WORD.findall(query)}
    scored = []
    for summary in summaries:
        words = {word.lower() for word in _WORD.findall(summary.text)}
        if shared := len(wanted & words):
            scored.append((shared, summary.last_turn_id, summary))
    scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [summary for _, _, summary in scored]


def render_matches(query: str, summaries: list[Summary]) -> str:
    """The /recall answer: each summary's date and a preview, within one message."""
    lines = [f"**Memories of this channel about “{query}”:**"]
    for summary in summaries:
        preview = " ".join(summary.text.split())
        if len(preview) > PREVIEW:
            preview = preview[: PREVIEW - 1].rstrip() + "…"
        entry = f"• <t:{int(summary.created_at)}:d> — {preview}"
        if len("\n".join([*lines, entry])) > MESSAGE_LIMIT:
            break
        lines.append(entry)
    return "\n".join(lines)
