"""``/note``, ``/notes``, ``/delnote``, ``/clearnotes``: private notes, per user.

Notes belong to the user who wrote them, wherever they wrote them (a server or a DM): every
query is by the caller's id, so nobody sees, deletes or clears anyone else's, and every answer is
ephemeral. A note id that is not the caller's gets the same answer as one that does not exist,
which says nothing about other users' notes.

Categories are normalised so that "Work", " work " and "WORK" are one: whitespace collapsed,
lowercase, "general" when none is given. They are shown between backticks, so a backtick is one
of the characters refused.

This module does not use ``from __future__ import annotations``, like the other command modules:
the registry reads the handlers' option annotations when they are registered.
"""

from typing import TYPE_CHECKING, Annotated, Final

from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.interactions import Interaction
from trio_companion.storage import Note, NoteLimitReached

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = [
    "DEFAULT_CATEGORY",
    "MAX_CATEGORY",
    "MAX_CONTENT",
    "MAX_NOTES_PER_USER",
    "NOTE_COOLDOWN",
    "PAGE_SIZE",
    "normalize_category",
    "register",
    "render_page",
]

# The predecessor capped notes at 50 and their length not at all (its known bug 14); a note is
# a short reminder to oneself, and 200 of 1000 characters are 200 KB per user at most.
MAX_NOTES_PER_USER: Final = 200
MAX_CONTENT: Final = 1000
MAX_CATEGORY: Final = 32
DEFAULT_CATEGORY: Final = "general"
# Each /note is a write transaction on the one write connection: one per second per user keeps
# one user from queueing everybody else's writes.
NOTE_COOLDOWN: Final = 1.0
# /notes fits one 2000-character Discord message: 10 notes of at most `PREVIEW` characters each
# plus id, category and date stay under it with the header and footer (a test checks the worst
# case).
PAGE_SIZE: Final = 10
PREVIEW: Final = 100
_MAX_PAGE: Final = -(-MAX_NOTES_PER_USER // PAGE_SIZE)
# Discord integer options are limited to ±2**53 (docs: application commands, option types).
_MAX_ID: Final = 2**53
# Besides letters and digits; no backtick or other markdown that would break the display.
_CATEGORY_PUNCTUATION: Final = frozenset(" -_.'&+/#")


class _BadCategory(ValueError):
    """A category the user typed cannot be used; ``str()`` is for the user."""


def register(registry: CommandRegistry, app: "App") -> None:
    notes = app.store.notes

    @registry.command(description="Save a private note", cooldown=NOTE_COOLDOWN, ephemeral=True)
    async def note(
        ctx: Interaction,
        content: Annotated[str, Param("What to note", min_length=1, max_length=MAX_CONTENT)],
        category: Annotated[
            str, Param(f"A category (default: {DEFAULT_CATEGORY})", max_length=MAX_CATEGORY)
        ] = "",
    ) -> None:
        text = content.strip()
        if not text:
            await ctx.error("A note needs some text.")
            return
        try:
            where = normalize_category(category) or DEFAULT_CATEGORY
        except _BadCategory as exc:
            await ctx.error(str(exc))
            return
        try:
            saved = await notes.add(ctx.user_id, where, text, cap=MAX_NOTES_PER_USER)
        except NoteLimitReached as exc:
            await ctx.error(str(exc))
            return
        await ctx.respond(f"Saved note `#{saved.id}` in `{saved.category}`.")

    @registry.command("notes", description="List your notes, newest first", ephemeral=True)
    async def list_notes(
        ctx: Interaction,
        category: Annotated[str, Param("Only this category's notes", max_length=MAX_CATEGORY)] = "",
        page: Annotated[int, Param("Which page", min_value=1, max_value=_MAX_PAGE)] = 1,
    ) -> None:
        try:
            where = normalize_category(category)
        except _BadCategory as exc:
            await ctx.error(str(exc))
            return
        total = await notes.count(ctx.user_id, where)
        if total == 0:
            await ctx.respond(f"You have no notes{_in(where)}. Save one with `/note`.")
            return
        pages = -(-total // PAGE_SIZE)
        if page > pages:
            await ctx.error(
                f"There is no page {page}: your notes{_in(where)} fill {_count(pages, 'page')}."
            )
            return
        shown = await notes.list(ctx.user_id, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        await ctx.respond(render_page(shown, total=total, page=page, category=where))

    @registry.command(description="Delete one of your notes", ephemeral=True)
    async def delnote(
        ctx: Interaction,
        id: Annotated[
            int, Param("The note's number, as /notes shows it", min_value=1, max_value=_MAX_ID)
        ],
    ) -> None:
        if not await notes.delete(ctx.user_id, id):
            await ctx.error(f"You have no note `#{id}`; `/notes` lists yours with their numbers.")
            return
        await ctx.respond(f"Deleted note `#{id}`.")

    @registry.command(description="Delete all your notes, or those of one category", ephemeral=True)
    async def clearnotes(
        ctx: Interaction,
        category: Annotated[str, Param("Only this category's notes", max_length=MAX_CATEGORY)] = "",
    ) -> None:
        try:
            where = normalize_category(category)
        except _BadCategory as exc:
            await ctx.error(str(exc))
            return
        deleted = await notes.clear(ctx.user_id, where)
        if deleted == 0:
            await ctx.respond(f"You had no notes{_in(where)} to delete.")
            return
        await ctx.respond(f"Deleted {_count(deleted, 'note')}{_in(where)}.")


def normalize_category(typed: str) -> str | None:
    """The category `typed` names: whitespace collapsed, lowercase; None if it is blank.

    Raises `_BadCategory` for a character other than letters, digits and ``_CATEGORY_PUNCTUATION``
    or for one longer than `MAX_CATEGORY` after lowercasing (a few letters lengthen).
    """
    category = " ".join(typed.split()).lower()
    if not category:
        return None
    if not all(c.isalnum() or c in _CATEGORY_PUNCTUATION for c in category):
        allowed = " ".join(sorted(_CATEGORY_PUNCTUATION - {" "}))
        raise _BadCategory(f"A category may use letters, digits, spaces and {allowed} only.")
    if len(category) > MAX_CATEGORY:
        raise _BadCategory(f"A category may have at most {MAX_CATEGORY} characters.")
    return category


def render_page(shown: list[Note], *, total: int, page: int, category: str | None) -> str:
    """One page of `/notes`: a header, one line per note, and how many more there are."""
    first = (page - 1) * PAGE_SIZE
    header = f"**Your notes{_in(category)}** ({total}, newest first):"
    lines = [header, *(_line(note) for note in shown)]
    more = total - first - len(shown)
    if more > 0:
        option = f"category:{category} " if category is not None else ""
        lines.append(f"…and {more} more: `/notes {option}page:{page + 1}`")
    return "\n".join(lines)


def _line(note: Note) -> str:
    text = " ".join(note.content.split())
    if len(text) > PREVIEW:
        text = text[: PREVIEW - 1].rstrip() + "…"
    return f"`#{note.id}` `{note.category}` <t:{int(note.created_at)}:d> {text}"


def _in(category: str | None) -> str:
    return "" if category is None else f" in `{category}`"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
