"""``/my_profile``, ``/relationship``, ``/remember``, ``/forget_me``, and the profile listener.

* The MESSAGE_CREATE listener registered here (beside the chat module's, which it does not
  touch) feeds every message of a human user, in servers and DMs, to `ProfileLearner.observe`
  and moves their affection score — except messages with ``#ignore``, bots', webhooks' and the
  configured ignored users'.
* ``/my_profile`` and ``/relationship`` show the caller what is stored about them, privately.
* ``/remember instruction:`` stores an instruction (at most `MAX_INSTRUCTION` characters, at
  most `MAX_INSTRUCTIONS` per user: the oldest is dropped) about the caller; with ``user:``,
  about someone else — only for members with Manage Server in a server, or the configured
  admin users (the predecessor let anybody plant instructions about anybody: its known bug 12).
* ``/forget_me confirm:`` deletes everything stored about the caller, in one transaction, once
  ``confirm`` is exactly `CONFIRM_PHRASE` (Discord has no confirmation dialog without message
  components, so the phrase is the confirmation).

`profile_context` is what the prompt gets: the caller's profile as a short, bounded block.

No ``from __future__ import annotations``, like the other command modules: the registry reads
the handlers' option annotations when they are registered.
"""

import logging
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Annotated, Final

import trio

from trio_companion.gateway.commands import (
    CommandRegistry,
    Param,
    UserOption,
)
from trio_companion.gateway.events import MessageCreate
from trio_companion.gateway.interactions import Interaction
from trio_companion.services.chat.triggers import IGNORE_TAG
from trio_companion.services.profiles import next_affection, profile_summary, stage_for
from trio_companion.storage import Affection, ForgetReport, ProfileFact, StorageError

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = [
    "CONFIRM_PHRASE",
    "MAX_INSTRUCTION",
    "MAX_INSTRUCTIONS",
    "PROMPT_SUMMARY_CHARS",
    "ProfileListener",
    "profile_context",
    "register",
    "render_profile",
]

log = logging.getLogger(__name__)

# The hardening pass found /remember without a length limit (known bug 14): an instruction is a
# sentence or two, and ten of them stay a small part of the prompt.
MAX_INSTRUCTION: Final = 300
MAX_INSTRUCTIONS: Final = 10
CONFIRM_PHRASE: Final = "delete everything"
# Room for the profile in the system message: a few facts and instructions, well under 1k
# tokens.
PROMPT_SUMMARY_CHARS: Final = 1500
# Writes per user: one /remember per 3 s; /forget_me is rare and deletes a lot.
REMEMBER_COOLDOWN: Final = 3.0
FORGET_COOLDOWN: Final = 10.0
# /my_profile fits one 2000-character message: lines are cut to `_PREVIEW` and dropped beyond.
_MESSAGE_LIMIT: Final = 1900
_PREVIEW: Final = 120
_PROFILE_READ: Final = 200
# Message types that are something a user wrote: DEFAULT and REPLY (docs: message types).
_USER_MESSAGE_TYPES: Final = frozenset({0, 19})
_KIND_TITLES: Final = (
    ("instruction", "Your instructions (/remember)"),
    ("fact", "Facts"),
    ("interest", "Interests"),
    ("preference", "Preferences"),
)


def register(registry: CommandRegistry, app: "App") -> None:
    if app.config.memory.profiles_enabled:
        # memory.profiles_enabled = false: nothing new is learned (the commands still show,
        # and /forget_me still deletes, what is stored).
        listener = ProfileListener(app)
        app.dispatcher.add_listener(MessageCreate, listener.on_message)
    profiles = app.store.profiles

    @registry.command(description="See what I remember about you", ephemeral=True)
    async def my_profile(ctx: Interaction) -> None:
        facts = await profiles.list_facts(ctx.user_id, limit=_PROFILE_READ)
        affection = await profiles.affection(ctx.user_id)
        await ctx.respond(render_profile(facts, affection))

    @registry.command(description="How close we are", ephemeral=True)
    async def relationship(ctx: Interaction) -> None:
        affection = await profiles.affection(ctx.user_id)
        await ctx.respond(_relationship_line(affection))

    @registry.command(
        description="Tell me something to keep in mind about you",
        cooldown=REMEMBER_COOLDOWN,
        ephemeral=True,
    )
    async def remember(
        ctx: Interaction,
        instruction: Annotated[
            str, Param("What I should keep in mind", min_length=1, max_length=MAX_INSTRUCTION)
        ],
        user: Annotated[
            UserOption | None, Param("About someone else (needs Manage Server)")
        ] = None,
    ) -> None:
        text = " ".join(instruction.split())
        if not text:
            await ctx.error("An instruction needs some text.")
            return
        target = ctx.user_id if user is None else user.id
        if target != ctx.user_id and not ctx.is_manager():
            await ctx.error(
                "Only members with the Manage Server permission can give me instructions about "
                "someone else; use `/remember` without `user` for yourself."
            )
            return
        if user is not None and user.bot:
            await ctx.error("Bots have no profile here.")
            return
        result = await profiles.add_facts(
            target,
            [("instruction", text)],
            source="remember",
            cap=MAX_INSTRUCTIONS,
            channel_id=ctx.channel_id,
        )
        whom = "you" if target == ctx.user_id else f"<@{target}>"
        if not result.added:
            await ctx.respond(f"I already had that instruction about {whom}.")
            return
        dropped = " (the oldest one was dropped to make room)" if result.dropped else ""
        await ctx.respond(f"Okay, I'll keep that in mind about {whom}{dropped}.")

    @registry.command(
        description="Delete everything I have stored about you",
        cooldown=FORGET_COOLDOWN,
        ephemeral=True,
    )
    async def forget_me(
        ctx: Interaction,
        confirm: Annotated[
            str, Param(f"Type exactly: {CONFIRM_PHRASE}", min_length=1, max_length=100)
        ],
    ) -> None:
        if confirm.strip() != CONFIRM_PHRASE:
            await ctx.error(
                f"Nothing was deleted. To delete your profile, notes, reminders and the messages "
                f"of yours I keep, run `/forget_me` with `confirm` set to `{CONFIRM_PHRASE}`."
            )
            return
        app.profiles.forget(ctx.user_id)
        report = await profiles.forget_user(ctx.user_id)
        await ctx.respond(_forgotten(report))


async def profile_context(app: "App", user_id: int) -> str:
    """`user_id`'s profile as a bounded block for the system message ('' when there is none or
    the store failed: a reply never fails for want of a profile)."""
    try:
        return await profile_summary(app.store, user_id, max_chars=PROMPT_SUMMARY_CHARS)
    except (StorageError, trio.ClosedResourceError) as exc:
        log.warning("could not read the profile of user %d: %s", user_id, exc)
        return ""


class ProfileListener:
    """The MESSAGE_CREATE listener that feeds the learner and the affection score."""

    def __init__(self, app: "App") -> None:
        self._app = app
        self._ignored = frozenset(app.config.chat.ignored_user_ids)

    async def on_message(self, event: MessageCreate) -> None:
        app = self._app
        author = event.author
        bot = app.cache.user
        if (
            author.bot
            or event.webhook_id is not None
            or (bot is not None and author.id == bot.id)
            or author.id in self._ignored
            or event.type not in _USER_MESSAGE_TYPES
        ):
            return
        text = event.content.strip()
        if not text or IGNORE_TAG in text.lower():
            return
        name = app.cache.display_name(author.id, event.guild_id) or author.display_name
        app.profiles.observe(author.id, name, event.channel_id, text)
        try:
            await app.store.profiles.update_affection(author.id, partial(next_affection, text=text))
        except (StorageError, trio.ClosedResourceError) as exc:
            log.warning("could not update the affection of user %d: %s", author.id, exc)


def render_profile(facts: Sequence[ProfileFact], affection: Affection | None) -> str:
    """`/my_profile`: every kind with its entries (newest first) and dates, then the
    relationship; at most `_MESSAGE_LIMIT` characters."""
    if not facts and affection is None:
        return "I have nothing stored about you yet."
    lines = [f"**What I remember about you** ({len(facts)} entries, newest first):"]
    for kind, title in _KIND_TITLES:
        mine = [fact for fact in facts if fact.kind == kind]
        if mine:
            lines.append(f"__{title}__")
            lines.extend(_fact_line(fact) for fact in mine)
    footer = [_relationship_line(affection), "`/forget_me` deletes all of it."]
    shown: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        candidate = "\n".join([*shown, line, f"…and {rest} more lines", *footer])
        if len(candidate) > _MESSAGE_LIMIT:
            shown.append(f"…and {rest} more lines")
            break
        shown.append(line)
    return "\n".join([*shown, *footer])


def _fact_line(fact: ProfileFact) -> str:
    text = " ".join(fact.text.split())
    if len(text) > _PREVIEW:
        text = text[: _PREVIEW - 1].rstrip() + "…"
    return f"<t:{int(fact.created_at)}:d> {text} ({fact.source})"


def _relationship_line(affection: Affection | None) -> str:
    if affection is None:
        return "**Relationship:** stranger — we haven't talked yet."
    return (
        f"**Relationship:** {stage_for(affection.score)} (score {affection.score:.1f} of 100, "
        f"{affection.interactions} messages)"
    )


def _forgotten(report: ForgetReport) -> str:
    if report.total == 0:
        return "I had nothing stored about you; nothing was deleted."
    parts = [
        ("profile entries", report.profile),
        ("relationship score", report.affection),
        ("notes", report.notes),
        ("reminders", report.reminders),
        ("messages from the chat history", report.history),
        ("settings", report.meta),
    ]
    listed = ", ".join(f"{count} {what}" for what, count in parts if count)
    return f"Done: I deleted everything I had stored about you ({listed})."
