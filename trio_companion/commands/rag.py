"""``/rag_reload`` and ``/docs``: the documents folder the companion retrieves from.

* ``/rag_reload`` (Manage Server or a configured admin user; 60 s cooldown) re-scans the folder:
  only new and changed files are chunked and embedded again (`DocumentIndex.reindex`), and the
  answer counts what changed.
* ``/docs query:`` (5 s cooldown) shows, privately, the passages a question would retrieve, with
  their sources, so people can check what the bot would be told.

Both answer that retrieval is off when ``memory.rag_enabled`` is false.

No ``from __future__ import annotations`` here: the registry evaluates the annotations of the
commands declared inside `register` (see ``commands/chat.py``).
"""

import logging
from typing import TYPE_CHECKING, Annotated, Final

import trio

from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.interactions import Interaction
from trio_companion.gateway.text import MESSAGE_LIMIT
from trio_companion.services.rag import Passage, ReindexReport

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["DOCS_COOLDOWN", "QUERY_LIMIT", "RELOAD_COOLDOWN", "register", "render_passages"]

log = logging.getLogger(__name__)

# The numbers: a re-scan reads and hashes the whole folder, so once a minute per admin.
RELOAD_COOLDOWN: Final = 60.0
# /docs costs a search (and maybe a query embedding): the same pace as /search.
DOCS_COOLDOWN: Final = 5.0
QUERY_LIMIT: Final = 200
# A re-scan that embeds a large folder may take long; past this, the answer says so.
RELOAD_DEADLINE: Final = 600.0
# /docs's search, embedding included (whose own deadline is shorter).
DOCS_DEADLINE: Final = 20.0
# Each passage shown in /docs: enough to recognise it; the list must fit one message.
PREVIEW: Final = 300
RAG_OFF: Final = "Document retrieval is off: set memory.rag_enabled in the configuration."


def register(registry: CommandRegistry, app: "App") -> None:
    @registry.command(
        "rag_reload",
        description="Re-scan the documents folder (changed files only)",
        admin=True,
        cooldown=RELOAD_COOLDOWN,
        ephemeral=True,
    )
    async def rag_reload(ctx: Interaction) -> None:
        index = app.rag
        if index is None:
            await ctx.error(RAG_OFF)
            return
        await ctx.defer()
        try:
            with trio.fail_after(RELOAD_DEADLINE):
                report = await index.reindex()
        except trio.TooSlowError:
            log.warning("/rag_reload took over %.0f s", RELOAD_DEADLINE)
            await ctx.error(
                "The re-scan is taking too long; what it indexed so far is kept. "
                "Try again later to finish it."
            )
            return
        await ctx.respond(render_report(report))

    @registry.command(
        description="Show which document passages the companion would use for a question",
        cooldown=DOCS_COOLDOWN,
        ephemeral=True,
    )
    async def docs(
        ctx: Interaction,
        query: Annotated[str, Param("A question or some words", max_length=QUERY_LIMIT)],
    ) -> None:
        index = app.rag
        if index is None:
            await ctx.error(RAG_OFF)
            return
        text = query.strip()
        if not text:
            await ctx.error("Tell me what to look for.")
            return
        try:
            with trio.fail_after(DOCS_DEADLINE):
                passages = await index.search(text, k=app.config.memory.rag_top_k)
        except trio.TooSlowError:
            await ctx.error("Searching the documents took too long; try again later.")
            return
        if not passages:
            await ctx.respond(f"No document passage matches “{text}”.")
            return
        await ctx.respond(render_passages(text, passages))


def render_report(report: ReindexReport) -> str:
    if report.missing:
        return "The documents folder does not exist; nothing was indexed."
    line = (
        f"Documents re-scanned: {report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.unchanged} unchanged."
    )
    if report.skipped:
        line += f" {report.skipped} skipped (outside the folder, too large or unreadable)."
    return line


def render_passages(query: str, passages: list[Passage]) -> str:
    """The /docs answer: numbered sources with a preview each, within one message."""
    lines = [f"**Passages for “{query}”:**"]
    for number, passage in enumerate(passages, 1):
        preview = " ".join(passage.text.split())
        if len(preview) > PREVIEW:
            preview = preview[: PREVIEW - 1].rstrip() + "…"
        source = passage.source.replace("`", "'")
        entry = f"{number}. `{source}` — {preview}"
        if len("\n".join([*lines, entry])) > MESSAGE_LIMIT:
            break
        lines.append(entry)
    return "\n".join(lines)
