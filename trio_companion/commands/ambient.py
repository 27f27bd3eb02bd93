"""``/ambient enable|disable|status``, the lull remark, and interest jump-ins.

The decisions are `trio_companion.services.ambient`'s; this module is the Discord glue:

* the command group, guild only. Discord sets permissions per top-level command, so
  ``enable`` and ``disable`` check Manage Server (or ``discord.admin_user_ids``) themselves, as
  ``/persona set`` does;
* `speak_ambient`, the runner's ``speak``: one short in-character remark through the chat
  service, with the channel's history so it fits the conversation, posted as a plain message;
* a MESSAGE_CREATE listener that tells the runner about activity and, for a message nobody
  else answers (no mention, no reply to the bot, no open session, not a DM), asks whether the
  persona's interests call for a jump-in, answered like a normal reply.

This module does not use ``from __future__ import annotations``, like the other command modules:
the registry reads the handlers' annotations when they are registered.
"""

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from trio_companion.gateway.commands import CommandRegistry
from trio_companion.gateway.errors import GatewayError
from trio_companion.gateway.events import MessageCreate
from trio_companion.gateway.interactions import Interaction
from trio_companion.lifecycle import ShuttingDown
from trio_companion.services.chat.errors import PromptTooLong
from trio_companion.services.chat.service import ChatRequest
from trio_companion.services.chat.sinks import ChannelSink
from trio_companion.services.chat.triggers import IncomingMessage, name_pattern, why_reply

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["JUMP_IN_CONTEXT", "LULL_CONTEXT", "register", "speak_ambient"]

log = logging.getLogger(__name__)

# What the model is told for a lull remark (system-message context) and what stands in the
# history as the turn it answers.
LULL_CONTEXT: Final = (
    "The channel has been quiet for a while; say one short, natural thing to restart the "
    "conversation, in character. Do not greet everyone formally."
)
_LULL_TURN: Final = "(the channel has been quiet for a while)"
JUMP_IN_CONTEXT: Final = (
    "Nobody addressed you, but this message touches on something you care about; join in "
    "naturally and briefly, in character."
)


def register(registry: CommandRegistry, app: "App") -> None:
    ambient = app.ambient
    app.dispatcher.add_listener(MessageCreate, JumpIns(app).on_message)
    group = registry.group(
        "ambient", description="Whether the companion chimes in when it is quiet", guild_only=True
    )

    @group.command("enable", description="Chime in here during lulls (needs Manage Server)")
    async def enable(ctx: Interaction) -> None:
        if not await _allowed(ctx, app, "enable"):
            return
        channel = ctx.channel_id or 0
        _remember_guild(app, channel, ctx.guild_id)
        if ambient.is_enabled(channel):
            await ctx.respond("Ambient mode is already on in this channel.")
            return
        await ambient.enable(channel)
        await ctx.respond(f"Ambient mode is on here: {_describe(app)}")

    @group.command("disable", description="Stop chiming in here (needs Manage Server)")
    async def disable(ctx: Interaction) -> None:
        if not await _allowed(ctx, app, "disable"):
            return
        channel = ctx.channel_id or 0
        if not ambient.is_enabled(channel):
            await ctx.respond("Ambient mode was not on in this channel.")
            return
        await ambient.disable(channel)
        await ctx.respond("Ambient mode is off here.")

    @group.command("status", description="Is ambient mode on in this channel?")
    async def status(ctx: Interaction) -> None:
        if ambient.is_enabled(ctx.channel_id or 0):
            await ctx.respond(f"Ambient mode is **on** in this channel: {_describe(app)}")
        else:
            await ctx.respond(
                "Ambient mode is **off** in this channel. Server managers turn it on with "
                "`/ambient enable`."
            )


async def speak_ambient(app: "App", channel_id: int) -> None:
    """One lull remark in ``channel_id``: in character, fitting the history, not a reply."""
    bot = app.cache.user
    guild_id = _guild_of(app, channel_id)
    persona = await app.personas.for_guild(guild_id)
    request = ChatRequest(
        channel_id=channel_id,
        guild_id=guild_id,
        author_id=bot.id if bot is not None else 0,
        author_name=persona.name,
        content=_LULL_TURN,
        use_history=True,
        context=LULL_CONTEXT,
    )
    try:
        with app.lifecycle.work(f"ambient remark in channel {channel_id}"):
            await app.chat.reply(request, ChannelSink(app.rest, channel_id))
    except ShuttingDown:
        log.info("no ambient remark in channel %d: shutting down", channel_id)


class JumpIns:
    """The MESSAGE_CREATE listener: activity for the runner, and interest jump-ins."""

    def __init__(self, app: "App") -> None:
        self._app = app
        self._ignored = frozenset(app.config.chat.ignored_user_ids)

    async def on_message(self, event: MessageCreate) -> None:
        app = self._app
        is_bot = event.author.bot or event.webhook_id is not None
        app.ambient.on_message(event.channel_id, is_bot)
        bot = app.cache.user
        if (
            is_bot
            or bot is None
            or event.guild_id is None
            or event.author.id in self._ignored
            or not app.ambient.is_enabled(event.channel_id)
        ):
            return
        _remember_guild(app, event.channel_id, event.guild_id)
        persona = await app.personas.for_guild(event.guild_id)
        if self._chat_answers(event, bot.id, [persona.name, bot.username, bot.global_name or ""]):
            return
        if not app.ambient.should_jump_in(event.channel_id, event.content, persona.interests):
            return
        try:
            with app.lifecycle.work(f"jump in on message {event.id}"):
                await self._answer(event)
        except ShuttingDown:
            log.info("not jumping in on message %d: shutting down", event.id)
        except GatewayError as exc:
            log.warning("could not jump in in channel %d: %s", event.channel_id, exc)

    def _chat_answers(self, event: MessageCreate, bot_id: int, names: Sequence[str]) -> bool:
        """Whether the chat listener answers this message anyway (then we do not)."""
        referenced = event.referenced_message
        incoming = IncomingMessage(
            author_id=event.author.id,
            author_is_bot=False,
            content=event.content,
            is_dm=False,
            mentions_bot=any(m.id == bot_id for m in event.mentions),
            replies_to_bot=(
                referenced is not None
                and referenced.author is not None
                and referenced.author.id == bot_id
            ),
        )
        trigger = why_reply(
            incoming,
            bot_id=bot_id,
            names=name_pattern(names),
            ignored_user_ids=self._ignored,
            session_open=self._app.sessions.is_open(event.channel_id),
        )
        return trigger is not None

    async def _answer(self, event: MessageCreate) -> None:
        app = self._app
        content = re.sub(r"\s+", " ", event.content).strip()
        if not content or len(content) > app.config.chat.max_message_chars:
            return
        author = event.author
        request = ChatRequest(
            channel_id=event.channel_id,
            guild_id=event.guild_id,
            author_id=author.id,
            author_name=app.cache.display_name(author.id, event.guild_id) or author.display_name,
            content=content,
            message_id=event.id,
            context=JUMP_IN_CONTEXT,
        )
        # Like a normal reply: a follow-up right after it is answered too.
        app.sessions.touch(event.channel_id)
        try:
            await app.chat.reply(
                request, ChannelSink(app.rest, event.channel_id, reply_to=event.id)
            )
        except PromptTooLong:
            return  # nobody asked; staying quiet is the right answer
        app.sessions.renew(event.channel_id)


def _remember_guild(app: "App", channel_id: int, guild_id: int | None) -> None:
    """Channel -> guild for the remark's persona, learned from /ambient enable and messages in
    enabled channels: a fallback for channels the gateway cache does not list."""
    if guild_id is not None:
        app.ambient_guilds[channel_id] = guild_id


def _guild_of(app: "App", channel_id: int) -> int | None:
    info = app.cache.channel(channel_id)
    if info is not None and info.guild_id is not None:
        return info.guild_id
    return app.ambient_guilds.get(channel_id)


async def _allowed(ctx: Interaction, app: "App", sub: str) -> bool:
    if ctx.is_manager():
        return True
    await ctx.error(f"`/ambient {sub}` needs the Manage Server permission.")
    return False


def _describe(app: "App") -> str:
    config = app.config.ambient
    return (
        f"after {_duration(config.lull_seconds)} of quiet I may say something "
        f"({config.chance:.0%} of the time, at most once per lull and once every "
        f"{_duration(config.min_interval)})."
    )


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    return f"{seconds:g} s"
