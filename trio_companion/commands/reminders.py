"""``/remind``, ``/reminders``, ``/cancel_reminder``, ``/clear_reminders``, ``/timezone``.

``/remind when_and_what:`` reads the phrase with `parse_reminder` in the caller's time zone
(``/timezone``, else ``reminders.default_timezone``), stores the reminder and echoes the time
it understood, in that zone and relative to now, so a misreading is seen at once. Phrases the
parser cannot read get its message; there is no LLM fallback (not built yet). Every answer is
ephemeral: the echo contains the user's text, and nobody else needs to see it.

Reminders belong to the user who set them: every query is by the caller's id, and an id that is
not theirs gets the same answer as one that does not exist. They are delivered by
`trio_companion.services.reminders.scheduler.ReminderScheduler` through `deliver_reminder`: in
the channel where they were set, pinging only that user; in a DM when that channel is gone or
closed to the bot.

`remind_from_text` is the same flow for a chat message ("remind me in 10 minutes to stretch"),
for the chat module to call.

This module does not use ``from __future__ import annotations``, like the other command modules:
the registry reads the handlers' option annotations, and ``/timezone``'s autocomplete is a
closure it could not find by name.
"""

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final
from zoneinfo import ZoneInfo

import trio

from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.interactions import Interaction
from trio_companion.gateway.rest import RestClient
from trio_companion.gateway.rest_errors import Forbidden, NotFound
from trio_companion.gateway.rest_models import AllowedMentions
from trio_companion.services.reminders import ReminderError, parse_reminder
from trio_companion.services.reminders.errors import UnparsableTime
from trio_companion.services.reminders.fallback import MATCHED_BY_MODEL, read_with_model
from trio_companion.services.reminders.timezones import (
    find_zone,
    get_user_zone,
    set_user_zone,
    suggest_zones,
)
from trio_companion.storage import Reminder, ReminderLimitReached

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = [
    "MAX_WHEN_AND_WHAT",
    "REMIND_COOLDOWN",
    "deliver_reminder",
    "register",
    "remind_from_text",
    "reminder_text",
]

# A reminder is a line, not a letter: 300 characters keep /reminders readable and the delivered
# message far below Discord's 2000.
MAX_WHEN_AND_WHAT: Final = 300
# Each /remind is a write transaction; 3 s per user, like /chat.
REMIND_COOLDOWN: Final = 3.0
# /reminders shows each reminder's text up to this many characters.
PREVIEW: Final = 100
# Discord integer options are limited to ±2**53 (docs: application commands, option types).
_MAX_ID: Final = 2**53
# Seconds the model may take to read a phrase the parser could not; past it, the parser's
# message is shown.
MODEL_READING_DEADLINE: Final = 15.0
# Discord shows at most 25 autocomplete choices.
_MAX_CHOICES: Final = 25
_MAX_ZONE_NAME: Final = 64
# What makes a chat message a reminder request for `remind_from_text`.
_REMIND_ME_RE: Final = re.compile(
    r"^\s*(?:(?:hey|ok|okay|please)[\s,]+)*(?:(?:can|could|would|will)\s+you\s+)?"
    r"(?:please\s+)?remind\s+me\b",
    re.IGNORECASE,
)
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def register(registry: CommandRegistry, app: "App") -> None:
    reminders = app.store.reminders

    async def complete_zone(ctx: Interaction, typed: str) -> list[str]:
        return await suggest_zones(typed, _MAX_CHOICES)

    @registry.command(
        description="Set a reminder, like: in 10 minutes to stretch",
        cooldown=REMIND_COOLDOWN,
        ephemeral=True,
    )
    async def remind(
        ctx: Interaction,
        when_and_what: Annotated[
            str,
            Param(
                "When and what, like: tomorrow at 9am to water the plants",
                min_length=1,
                max_length=MAX_WHEN_AND_WHAT,
            ),
        ],
    ) -> None:
        ok, message = await _schedule(
            app, ctx.user_id, ctx.channel_id or 0, ctx.guild_id, when_and_what
        )
        if ok:
            await ctx.respond(message)
        else:
            await ctx.error(message)

    @registry.command("reminders", description="List your reminders", ephemeral=True)
    async def list_reminders(ctx: Interaction) -> None:
        zone, _ = await _zone(app, ctx.user_id)
        pending = await reminders.list_for_user(ctx.user_id)
        if not pending:
            await ctx.respond("You have no reminders. Set one with `/remind`.")
            return
        now = datetime.now(UTC)
        header = f"**Your reminders** ({len(pending)}, times in {zone.key}):"
        lines = [header, *(_line(r, zone, now) for r in pending)]
        await ctx.respond("\n".join(lines))

    @registry.command(description="Cancel one of your reminders", ephemeral=True)
    async def cancel_reminder(
        ctx: Interaction,
        id: Annotated[
            int,
            Param("The reminder's number, as /reminders shows it", min_value=1, max_value=_MAX_ID),
        ],
    ) -> None:
        cancelled = await reminders.cancel(ctx.user_id, id)
        if cancelled is None:
            await ctx.error(
                f"You have no pending reminder `#{id}`; `/reminders` lists yours with their "
                "numbers."
            )
            return
        await ctx.respond(f"Cancelled reminder `#{id}`: {_preview(cancelled.what)}")

    @registry.command(description="Cancel all your reminders", ephemeral=True)
    async def clear_reminders(ctx: Interaction) -> None:
        count = await reminders.clear(ctx.user_id)
        if count == 0:
            await ctx.respond("You had no reminders to cancel.")
            return
        await ctx.respond(f"Cancelled {count} reminder{'' if count == 1 else 's'}.")

    @registry.command(
        "timezone", description="Show or set your time zone for reminders", ephemeral=True
    )
    async def timezone(
        ctx: Interaction,
        name: Annotated[
            str,
            Param(
                "An IANA time zone, like Europe/Paris",
                max_length=_MAX_ZONE_NAME,
                autocomplete=complete_zone,
            ),
        ] = "",
    ) -> None:
        if not name.strip():
            zone, chosen = await _zone(app, ctx.user_id)
            where = "" if chosen else " (the default; set yours with `/timezone name:`)"
            await ctx.respond(f"Your time zone is `{zone.key}`{where}. {_clock(zone)}")
            return
        found = await find_zone(name)
        if found is None:
            await ctx.error(
                f"`{name.strip()}` is not a time zone I know. Use an IANA name like "
                "`Europe/Paris` or `America/New_York`: start typing and pick one from the list."
            )
            return
        await set_user_zone(app.store.meta, ctx.user_id, found)
        zone, _ = await _zone(app, ctx.user_id)
        await ctx.respond(f"Your time zone is now `{found}`. {_clock(zone)}")


async def remind_from_text(
    app: "App", user_id: int, channel_id: int, guild_id: int | None, text: str
) -> str | None:
    """Handle a chat message that asks for a reminder; return the reply to post.

    None when `text` does not start with "remind me" (or "can you remind me", "please remind
    me"…): the caller then treats it as ordinary chat. Otherwise the reply is the confirmation,
    or the parser's or the cap's message when the reminder could not be set.
    """
    if _REMIND_ME_RE.match(text) is None:
        return None
    if len(text) > MAX_WHEN_AND_WHAT:
        return (
            f"That reminder is too long ({len(text)} characters; the limit is {MAX_WHEN_AND_WHAT})."
        )
    _, message = await _schedule(app, user_id, channel_id, guild_id, text)
    return message


def reminder_text(reminder: Reminder) -> str:
    """The message a reminder is delivered as."""
    return f"⏰ <@{reminder.user_id}> reminder: {reminder.what}"


async def deliver_reminder(rest: RestClient, reminder: Reminder) -> None:
    """Post `reminder` in its channel, pinging only its user; in a DM if that channel is gone
    (404) or closed to the bot (403). Raises the REST errors of the last attempt."""
    text = reminder_text(reminder)
    mentions = AllowedMentions(users=(reminder.user_id,), replied_user=False)
    try:
        await rest.create_message(reminder.channel_id, text, allowed_mentions=mentions)
    except (NotFound, Forbidden):
        dm = await rest.create_dm(reminder.user_id)
        await rest.create_message(dm.id, text, allowed_mentions=mentions)


async def _schedule(
    app: "App", user_id: int, channel_id: int, guild_id: int | None, text: str
) -> tuple[bool, str]:
    """Parse, store and wake the scheduler; return (stored, the message for the user)."""
    zone, _ = await _zone(app, user_id)
    now = datetime.now(UTC)
    try:
        parsed = parse_reminder(text, now=now, tz=zone)
    except UnparsableTime as exc:
        # Only a phrase the parser cannot read goes to the model; its reading is echoed below.
        reading = None
        with trio.move_on_after(MODEL_READING_DEADLINE):
            reading = await read_with_model(app.llm, text, now=now, tz=zone)
        if reading is None:
            return False, str(exc)
        parsed = reading
    except ReminderError as exc:
        return False, str(exc)
    due_at = parsed.when.timestamp()
    try:
        saved = await app.store.reminders.add(
            user_id,
            channel_id,
            guild_id,
            parsed.what,
            due_at,
            cap=app.config.reminders.max_per_user,
            created_at=time.time(),
        )
    except ReminderLimitReached as exc:
        return False, str(exc)
    app.reminders.notify(due_at)
    guessed = parsed.matched == MATCHED_BY_MODEL
    return True, (
        f"I'll remind you on {_when(parsed.when, zone, now)} ({zone.key}) — "
        f"{_until(parsed.when, now)}: {parsed.what} (reminder #{saved.id})"
        + (
            f" — that is how I understood it; `/cancel_reminder id:{saved.id}` if not."
            if guessed
            else ""
        )
    )


async def _zone(app: "App", user_id: int) -> tuple[ZoneInfo, bool]:
    return await get_user_zone(app.store.meta, user_id, app.config.reminders.default_timezone)


def _when(when: datetime, zone: ZoneInfo, now: datetime) -> str:
    """ "Fri 28 Nov at 17:00" in `zone`, with the year when it is not this year there."""
    local = when.astimezone(zone)
    year = "" if local.year == now.astimezone(zone).year else f" {local.year}"
    return (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}{year} "
        f"at {local:%H:%M}"
    )


def _until(when: datetime, now: datetime) -> str:
    """ "in 2 h 5 min": the time left, to the minute (to the second under a minute)."""
    seconds = (when - now).total_seconds()
    if seconds < 60:
        return f"in {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return "in " + " ".join(parts or ["1 min"])


def _line(reminder: Reminder, zone: ZoneInfo, now: datetime) -> str:
    when = datetime.fromtimestamp(reminder.due_at, UTC)
    return f"`#{reminder.id}` {_when(when, zone, now)} — {_preview(reminder.what)}"


def _preview(what: str) -> str:
    text = " ".join(what.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1].rstrip() + "…"


def _clock(zone: ZoneInfo) -> str:
    return f"It is {datetime.now(zone):%H:%M} there."
