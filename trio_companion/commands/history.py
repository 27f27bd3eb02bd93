"""``/clear_history``, ``/export_chat``, ``/import_chat``: a channel's stored conversation.

The document and its checks are `trio_companion.services.chat.transcript`; this module reads and
writes the store, uploads the export and downloads the import.

Who may do what
---------------
* ``/export_chat``: anyone, in servers and DMs, once per 10 s. The history is what the channel
  already showed its members. The answer and its files are visible only to the caller.
* ``/clear_history``: in a server, members with Manage Server (or the configured admin users).
  In a DM with the bot, the user, because that channel and its history are theirs. So it is not
  declared ``admin=True``, which would make the router refuse every DM. The check is here instead,
  and Discord shows the command to every member (the handler refuses those without the right).
* ``/import_chat``: Manage Server, in servers only (``admin=True, guild_only=True``). An import
  can put words in anyone's mouth, system turns included, which the model treats as
  instructions.

An import changes nothing on any error. Every check (declared size, file type, download size,
JSON, shape, limits) comes before the one write, and that write is one transaction
(`HistoryRepository.append_many` or `HistoryRepository.replace`). One lock serializes these
commands' writes, so two merges of the same file cannot both insert it. A merge appends the
missing turns after the channel's own: history is used in stored order, so they are what the
model sees as the latest.

This module does not use ``from __future__ import annotations``. The handlers are closures made
in `register`, like the other command modules', and the registry reads their option annotations
when they are registered. Evaluated annotations need no lookup in the module's globals.
"""

import time
from functools import partial
from typing import TYPE_CHECKING, Annotated, Final, Literal

import httpx
import trio

from trio_companion.errors import CompanionError
from trio_companion.gateway.commands import (
    AttachmentOption,
    CommandRegistry,
    Param,
)
from trio_companion.gateway.interactions import Interaction
from trio_companion.gateway.rest_models import File
from trio_companion.services.chat.transcript import (
    MAX_FILE_BYTES,
    MAX_TURNS,
    OverLimit,
    TranscriptError,
    import_turns,
    only_new,
    parse_export,
    render_export,
)

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["DOWNLOAD_DEADLINE", "EXPORT_COOLDOWN", "register"]

# The hardening pass: /export_chat at most once per 10 s per user.
EXPORT_COOLDOWN: Final = 10.0
# The whole download of an import, from the request to the last byte. This matches the HTTP
# client's read timeout, which applies to each read separately.
DOWNLOAD_DEADLINE: Final = 30.0
# What Discord says a .json upload is; text/plain when a browser did not know the extension.
_JSON_TYPES: Final = frozenset({"application/json", "text/json", "text/plain"})


class _DownloadFailed(CompanionError):
    """The attachment could not be fetched from Discord's CDN; ``str()`` is for the user."""


def register(registry: CommandRegistry, app: "App") -> None:
    # Imports and clears are rare and admin-only: one lock for all channels is enough.
    writes = trio.Lock()

    @registry.command(
        "clear_history",
        description="Forget this channel's conversation (needs Manage Server in a server)",
        ephemeral=True,
    )
    async def clear_history(ctx: Interaction) -> None:
        if not _may_clear(ctx):
            await ctx.error("`/clear_history` needs the Manage Server permission.")
            return
        channel = ctx.channel_id
        if channel is None:
            await ctx.error("`/clear_history` works in channels only.")
            return
        async with writes:
            cleared = await app.store.history.clear(channel)
        app.sessions.end(channel)
        await ctx.respond(f"Cleared {_messages(cleared)} of history in this channel.")

    @registry.command(
        "export_chat",
        description="Download this channel's conversation as JSON and Markdown",
        cooldown=EXPORT_COOLDOWN,
        ephemeral=True,
    )
    async def export_chat(ctx: Interaction) -> None:
        channel = ctx.channel_id
        if channel is None:
            await ctx.error("`/export_chat` works in channels only.")
            return
        total = await app.store.history.count(channel)
        turns = await app.store.history.recent(channel, MAX_TURNS)
        if not turns:
            await ctx.respond("There is no stored conversation in this channel to export.")
            return
        persona = await app.personas.for_guild(ctx.guild_id)
        rendered = await trio.to_thread.run_sync(
            partial(render_export, channel, turns, persona=persona.name, exported_at=time.time())
        )
        kept = len(rendered.document.turns)
        if kept == 0:
            await ctx.error(
                f"The newest message here is too large to export (over {MAX_FILE_BYTES >> 20} MiB)."
            )
            return
        files = [
            File(f"chat-{channel}.json", rendered.json, "application/json"),
            File(f"chat-{channel}.md", rendered.markdown, "text/markdown"),
        ]
        await ctx.respond(_export_summary(kept, max(total, len(turns))), files=files)

    @registry.command(
        "import_chat",
        description="Load a /export_chat file into this channel's history",
        admin=True,
        guild_only=True,
        ephemeral=True,
    )
    async def import_chat(
        ctx: Interaction,
        file: Annotated[AttachmentOption, Param("The .json file that /export_chat made")],
        mode: Annotated[
            Literal["merge", "replace"],
            Param("merge: add the messages not here yet; replace: delete this history first"),
        ],
    ) -> None:
        channel = ctx.channel_id
        if channel is None:
            await ctx.error("`/import_chat` works in channels only.")
            return
        try:
            _check_attachment(file)
            data = await _download(app.http, file.url, max_bytes=MAX_FILE_BYTES)
            document = await trio.to_thread.run_sync(parse_export, data)
        except (TranscriptError, _DownloadFailed) as exc:
            await ctx.error(str(exc))
            return
        incoming = import_turns(document, channel)
        if not incoming:
            await ctx.error("That chat export has no messages; nothing was changed.")
            return
        history = app.store.history
        async with writes:
            if mode == "replace":
                removed = await history.replace(channel, incoming)
                await ctx.respond(
                    f"Replaced this channel's history: imported {_messages(len(incoming))}, "
                    f"removed {_messages(removed)}."
                )
                return
            existing = await history.recent(channel, await history.count(channel))
            fresh, already = await trio.to_thread.run_sync(only_new, existing, incoming)
            await history.append_many(fresh)
        await ctx.respond(_merge_summary(len(fresh), already))


def _may_clear(ctx: Interaction) -> bool:
    """Manage Server in a server, as the router checks ``admin=True``; anyone in their DM."""
    return ctx.guild_id is None or ctx.is_manager()


def _check_attachment(file: AttachmentOption) -> None:
    """Refuse, before downloading, what cannot be an export: too large or not JSON."""
    if file.size > MAX_FILE_BYTES:
        raise OverLimit.file_size(file.size)
    media_type = (file.content_type or "").partition(";")[0].strip().lower()
    if not file.filename.lower().endswith(".json") or (
        media_type and media_type not in _JSON_TYPES
    ):
        name = file.filename.replace("`", "'")
        kind = f" ({media_type})" if media_type else ""
        raise TranscriptError(
            f"That is not a JSON file: `{name}`{kind}. Choose the `.json` file that "
            "`/export_chat` made."
        )


async def _download(http: httpx.AsyncClient, url: str, *, max_bytes: int) -> bytes:
    """The body at ``url`` (an attachment on Discord's CDN), at most ``max_bytes`` of it.

    Raises `OverLimit` as soon as the Content-Length or the bytes received pass the limit, and
    `_DownloadFailed` on any other failure, including `DOWNLOAD_DEADLINE` passing.
    """
    if not url.startswith("https://"):
        raise _DownloadFailed("That attachment has no https address; upload it again.")
    try:
        with trio.fail_after(DOWNLOAD_DEADLINE):
            # identity: the limit then counts the bytes that cross the wire, and no small
            # compressed body can expand into a large one.
            async with http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as got:
                if got.status_code != 200:
                    raise _DownloadFailed(
                        f"Could not download that file (HTTP {got.status_code}); try uploading "
                        "it again."
                    )
                declared = got.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise OverLimit.file_size(int(declared))
                body = bytearray()
                async for chunk in got.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise OverLimit.file_size(None)
                return bytes(body)
    except trio.TooSlowError:
        raise _DownloadFailed(
            f"Downloading that file took more than {DOWNLOAD_DEADLINE:.0f} s; try again."
        ) from None
    except httpx.HTTPError as exc:
        raise _DownloadFailed(
            f"Could not download that file ({type(exc).__name__}); try again."
        ) from None


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


def _export_summary(kept: int, total: int) -> str:
    if kept >= total:
        return f"Exported {_messages(kept)} of this channel's history."
    return (
        f"Exported the newest {kept} of {_messages(total)} of this channel's history (an export "
        f"holds at most {MAX_TURNS} messages and {MAX_FILE_BYTES >> 20} MiB)."
    )


def _merge_summary(imported: int, already: int) -> str:
    if imported == 0:
        if already == 1:
            return "Nothing to import: that message was already there."
        return f"Nothing to import: all {already} messages were already there."
    if already == 0:
        return f"Imported {_messages(imported)}."
    were = "was" if already == 1 else "were"
    return f"Imported {_messages(imported)} ({already} {were} already there)."
