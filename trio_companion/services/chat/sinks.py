"""Message sinks for the reply writer: a Discord channel, or an interaction's messages."""

from __future__ import annotations

from typing import final

from trio_companion.gateway.interactions import Interaction
from trio_companion.gateway.rest import RestClient

__all__ = ["ChannelSink", "InteractionSink"]


@final
class ChannelSink:
    """Messages in a channel; the first one replies to ``reply_to`` (without pinging)."""

    def __init__(self, rest: RestClient, channel_id: int, *, reply_to: int | None = None) -> None:
        self._rest = rest
        self._channel_id = channel_id
        self._reply_to = reply_to

    async def typing(self) -> None:
        await self._rest.trigger_typing(self._channel_id)

    async def send(self, content: str) -> object:
        reply_to, self._reply_to = self._reply_to, None
        message = await self._rest.create_message(self._channel_id, content, reply_to=reply_to)
        return message.id

    async def edit(self, handle: object, content: str) -> None:
        assert isinstance(handle, int)
        await self._rest.edit_message(self._channel_id, handle, content)


@final
class InteractionSink:
    """The answer to a slash command: the original response first, then followups."""

    def __init__(self, ctx: Interaction) -> None:
        self._ctx = ctx

    async def typing(self) -> None:
        await self._ctx.defer()  # Discord shows "… is thinking" for a deferred interaction

    async def send(self, content: str) -> object:
        return await self._ctx.send_message(content)

    async def edit(self, handle: object, content: str) -> None:
        await self._ctx.edit_message(handle, content)
