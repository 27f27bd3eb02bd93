"""Conversation in Discord: channel messages that call for an answer, /chat, /ask, sessions.

No ``from __future__ import annotations`` here: option limits come from the configuration, so
the commands are declared inside `register`, and the registry must see their annotations
evaluated (a string would name a local it cannot find).
"""

import logging
import random
import re
from typing import TYPE_CHECKING, Annotated, Final

import trio

from trio_companion.commands.reminders import remind_from_text
from trio_companion.commands.voice import spoken_reply
from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.errors import GatewayError
from trio_companion.gateway.events import MessageCreate
from trio_companion.gateway.interactions import Interaction
from trio_companion.lifecycle import ShuttingDown
from trio_companion.services.chat.errors import PromptTooLong
from trio_companion.services.chat.service import ChatRequest
from trio_companion.services.chat.sinks import ChannelSink, InteractionSink
from trio_companion.services.chat.triggers import IncomingMessage, name_pattern, why_reply

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["register"]

log = logging.getLogger(__name__)

# Hardening pass: /chat 4000 characters and 3 s per user, /ask 2000 and 3 s.
ASK_LIMIT: Final = 2000
CHAT_COOLDOWN: Final = 3.0
# What the model sees when someone only mentioned the bot.
_ONLY_MENTIONED: Final = "(mentions you without saying anything else)"


def register(registry: CommandRegistry, app: "App") -> None:
    limit = app.config.chat.max_message_chars
    handler = MessageHandler(app)
    app.dispatcher.add_listener(MessageCreate, handler.on_message)

    @registry.command(description="Talk with the companion", cooldown=CHAT_COOLDOWN)
    async def chat(
        ctx: Interaction,
        message: Annotated[str, Param("What you want to say", max_length=limit)],
    ) -> None:
        await _answer(app, ctx, message, use_history=True)

    @registry.command(
        description="Ask one question, without the conversation's history", cooldown=CHAT_COOLDOWN
    )
    async def ask(
        ctx: Interaction,
        question: Annotated[str, Param("Your question", max_length=ASK_LIMIT)],
    ) -> None:
        await _answer(app, ctx, question, use_history=False)

    @registry.command(
        "end_session", description="Stop answering here until someone mentions me", ephemeral=True
    )
    async def end_session(ctx: Interaction) -> None:
        channel = ctx.channel_id or 0
        if app.sessions.end(channel):
            await ctx.respond("Okay — I'll only answer here when someone mentions me.")
        else:
            await ctx.respond("There was no open conversation with me in this channel.")


async def _answer(app: "App", ctx: Interaction, text: str, *, use_history: bool) -> None:
    await ctx.defer()
    user = ctx.user
    name = "someone"
    if user is not None:
        name = app.cache.display_name(user.id, ctx.guild_id) or user.display_name
    request = ChatRequest(
        channel_id=ctx.channel_id or 0,
        guild_id=ctx.guild_id,
        author_id=ctx.user_id,
        author_name=name,
        content=text,
        use_history=use_history,
    )
    if use_history and request.channel_id:
        app.sessions.touch(request.channel_id)
    feed = await spoken_reply(app, ctx.guild_id)
    try:
        await app.chat.reply(request, InteractionSink(ctx), on_text=feed.append if feed else None)
    finally:
        if feed is not None:
            feed.close()
    if use_history and request.channel_id:
        app.sessions.renew(request.channel_id)


class MessageHandler:
    """The MESSAGE_CREATE listener: decide, then answer in the channel."""

    def __init__(self, app: "App") -> None:
        self._app = app
        self._ignored = frozenset(app.config.chat.ignored_user_ids)
        self._limit = app.config.chat.max_message_chars

    async def on_message(self, event: MessageCreate) -> None:
        app = self._app
        bot = app.cache.user
        if bot is None:
            return
        persona = await app.personas.for_guild(event.guild_id)
        referenced = event.referenced_message
        incoming = IncomingMessage(
            author_id=event.author.id,
            author_is_bot=event.author.bot or event.webhook_id is not None,
            content=event.content,
            is_dm=event.guild_id is None,
            mentions_bot=any(m.id == bot.id for m in event.mentions),
            replies_to_bot=(
                referenced is not None
                and referenced.author is not None
                and referenced.author.id == bot.id
            ),
        )
        trigger = why_reply(
            incoming,
            bot_id=bot.id,
            names=name_pattern([persona.name, bot.username, bot.global_name or ""]),
            ignored_user_ids=self._ignored,
            session_open=app.sessions.is_open(event.channel_id),
        )
        if trigger is None:
            return
        content = re.sub(rf"<@!?{bot.id}>", "", event.content).strip() or _ONLY_MENTIONED
        try:
            with app.lifecycle.work(f"reply to message {event.id}"):
                await self._answer(event, content)
        except ShuttingDown:
            log.info("not answering message %d: shutting down", event.id)
        except GatewayError as exc:
            log.warning("could not answer in channel %d: %s", event.channel_id, exc)

    async def _answer(self, event: MessageCreate, content: str) -> None:
        app = self._app
        if len(content) > self._limit:
            await app.rest.create_message(
                event.channel_id,
                f"That message is too long for me ({len(content)} characters; the limit is "
                f"{self._limit}).",
                reply_to=event.id,
            )
            return
        author = event.author
        # "remind me …" goes through the same parser as /remind, not to the model.
        reminder = await remind_from_text(app, author.id, event.channel_id, event.guild_id, content)
        if reminder is not None:
            await app.rest.create_message(event.channel_id, reminder, reply_to=event.id)
            return
        request = ChatRequest(
            channel_id=event.channel_id,
            guild_id=event.guild_id,
            author_id=author.id,
            author_name=app.cache.display_name(author.id, event.guild_id) or author.display_name,
            content=content,
            message_id=event.id,
        )
        low, high = app.config.chat.reply_delay_min, app.config.chat.reply_delay_max
        if high > 0:
            # A natural pause before answering (chat.reply_delay_min/max).
            await trio.sleep(random.uniform(low, high))
        sink = ChannelSink(app.rest, event.channel_id, reply_to=event.id)
        # The window opens as the bot starts answering (a quick "thanks!" right after its reply
        # must count) and is renewed when the answer is complete.
        app.sessions.touch(event.channel_id)
        # Spoken too (voice.speak_chat_replies), sentence by sentence as the text streams.
        feed = await spoken_reply(app, event.guild_id)
        try:
            await app.chat.reply(request, sink, on_text=feed.append if feed else None)
        except PromptTooLong as exc:
            await app.rest.create_message(event.channel_id, str(exc), reply_to=event.id)
            return
        finally:
            if feed is not None:
                feed.close()
        app.sessions.renew(event.channel_id)
