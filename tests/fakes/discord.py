"""The whole fake Discord: the REST fake and the gateway fake, wired as Discord is.

``GET /gateway/bot`` on the REST fake returns the gateway fake's URL, so the bot finds the
gateway exactly as it finds Discord's: from ``COMPANION_DISCORD_API_URL`` (here
`FakeDiscord.config`) and ``SSL_CERT_FILE`` (the `trust_fake_ca` fixture). `FakeDiscord.interact`
plays a user running a slash command: Discord creates the interaction (its 3-second clock starts)
and delivers INTERACTION_CREATE over the gateway.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, final

import pytest
import trio

from tests.fakes.discord_gateway import DEFAULT_SNOWFLAKE, FakeGateway
from tests.fakes.discord_rest import FAKE_TOKEN, FakeDiscordRest, FakeInteraction
from tests.fakes.voice_server import FakeVoiceServer
from trio_companion.config import Config, DiscordConfig

__all__ = ["FakeDiscord", "fake_discord", "last_message", "open_fake_discord"]

GUILD_ID: Final = 1_200_000_000_000_000_001
CHANNEL_ID: Final = 1_200_000_000_000_000_002
USER_ID: Final = 1_200_000_000_000_000_003
# Permission bits of an ordinary member and of a server manager (docs: topics/permissions).
MEMBER: Final = 1 << 10 | 1 << 11
MANAGER: Final = MEMBER | 1 << 5


@final
class FakeDiscord:
    def __init__(self, rest: FakeDiscordRest, gateway: FakeGateway) -> None:
        self.rest = rest
        self.gateway = gateway
        self._ids = itertools.count(1_300_000_000_000_000_000)
        rest.add_channel(CHANNEL_ID)

    def serve_voice(self, voice: FakeVoiceServer, *, respond: bool = True) -> None:
        """Answer the bot's op 4 as Discord does: VOICE_STATE_UPDATE with a new voice session
        id, then VOICE_SERVER_UPDATE with a new token and ``voice``'s endpoint (a channel of
        None: only the state update). ``respond=False`` plays a full channel: no answer."""
        self.voice_requests: list[Any] = []

        async def on_op4(d: Any) -> None:
            self.voice_requests.append(d)
            if not respond:
                return
            guild_id = int(d["guild_id"])
            channel = d.get("channel_id")
            number = next(self._ids)
            session_id, token = f"voice-session-{number}", f"voice-token-{number}"
            await self.voice_state(
                guild_id,
                self.rest.bot_user_id,
                None if channel is None else int(channel),
                session_id=session_id,
            )
            if channel is None:
                return
            voice.allow(
                server_id=guild_id,
                user_id=self.rest.bot_user_id,
                session_id=session_id,
                token=token,
                channel_id=int(channel),
            )
            self._voice_sessions[guild_id] = session_id
            await self.gateway.dispatch(
                "VOICE_SERVER_UPDATE",
                {"token": token, "guild_id": str(guild_id), "endpoint": voice.endpoint},
            )

        self._voice_sessions: dict[int, str] = {}
        self.gateway.on_voice_state_update = on_op4

    async def voice_state(
        self, guild_id: int, user_id: int, channel_id: int | None, *, session_id: str = ""
    ) -> None:
        """Dispatch VOICE_STATE_UPDATE: ``user_id`` is now in ``channel_id`` (None: left)."""
        if user_id == self.rest.bot_user_id and not session_id:
            session_id = f"voice-session-{next(self._ids)}"
            self._voice_sessions[guild_id] = session_id
        await self.gateway.dispatch(
            "VOICE_STATE_UPDATE",
            {
                "guild_id": str(guild_id),
                "channel_id": None if channel_id is None else str(channel_id),
                "user_id": str(user_id),
                "session_id": session_id or f"user-session-{user_id}",
                "deaf": False,
                "mute": False,
                "self_deaf": False,
                "self_mute": False,
            },
        )

    def allow_concurrent_identifies(self, count: int) -> None:
        """Discord's ``max_concurrency`` (bots in many servers get more than 1)."""
        self.rest.max_concurrency = count
        self.gateway.max_concurrency = count

    def config(self, data_dir: Path, **discord: Any) -> Config:
        """A configuration that points the bot at this fake."""
        return Config(
            data_dir=str(data_dir),
            discord=DiscordConfig(token=FAKE_TOKEN, api_url=self.rest.url, **discord),
        )

    async def interact(
        self,
        name: str,
        options: Sequence[dict[str, Any]] = (),
        *,
        user_id: int = USER_ID,
        username: str = "ann",
        permissions: int = MEMBER,
        guild_id: int | None = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        resolved: dict[str, Any] | None = None,
        kind: int = 2,
    ) -> FakeInteraction:
        """A user runs ``/name``: register the interaction, then dispatch it to the bot."""
        interaction_id = next(self._ids)
        token = f"interaction-token-{interaction_id}"
        interaction = self.rest.register_interaction(interaction_id, token, channel_id=channel_id)
        user = {"id": str(user_id), "username": username, "global_name": username.title()}
        body: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.rest.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "data": {
                "id": "1",
                "name": name,
                "type": 1,
                "options": list(options),
                "resolved": resolved or {},
            },
            "locale": "en-US",
        }
        if guild_id is not None:
            body["guild_id"] = str(guild_id)
            body["member"] = {
                "user": user,
                "nick": None,
                "roles": [],
                "permissions": str(permissions),
            }
        else:
            body["user"] = user
        await self.gateway.dispatch("INTERACTION_CREATE", body)
        return interaction

    async def say(
        self,
        content: str,
        *,
        user_id: int = USER_ID,
        username: str = "ann",
        guild_id: int | None = GUILD_ID,
        channel_id: int = CHANNEL_ID,
        mention_bot: bool = False,
        reply_to_bot: int | None = None,
        bot: bool = False,
    ) -> int:
        """A user posts a message: it lands in the REST fake's channel, and MESSAGE_CREATE is
        dispatched over the gateway. Returns the message id."""
        message_id = next(self._ids)
        bot_id = self.rest.bot_user_id
        author: dict[str, Any] = {
            "id": str(user_id),
            "username": username,
            "global_name": username.title(),
            "bot": bot,
        }
        if mention_bot:
            content = f"<@{bot_id}> {content}"
        body: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": "2026-11-28T12:00:00+00:00",
            "type": 0,
            "mentions": [{"id": str(bot_id), "username": "companion", "bot": True}]
            if mention_bot
            else [],
            "attachments": [],
        }
        if guild_id is not None:
            body["guild_id"] = str(guild_id)
            body["member"] = {"nick": None, "roles": []}
        if reply_to_bot is not None:
            body["type"] = 19
            body["message_reference"] = {"message_id": str(reply_to_bot)}
            body["referenced_message"] = {
                "id": str(reply_to_bot),
                "author": {"id": str(bot_id), "username": "companion", "bot": True},
                "content": "",
            }
        self.rest.add_channel(channel_id)
        self.rest.channels[channel_id][message_id] = {**body, "edited_timestamp": None}
        await self.gateway.dispatch("MESSAGE_CREATE", body)
        return message_id

    def attach(
        self, filename: str, data: bytes, content_type: str | None = "application/json"
    ) -> dict[str, Any]:
        """Put a user's upload on the fake CDN; return its ``resolved.attachments`` entry (pass
        it as ``resolved={"attachments": {entry["id"]: entry}}`` and the id as the value)."""
        attachment_id = str(next(self._ids))
        name = f"{attachment_id}/{filename}"
        self.rest.cdn[name] = data
        entry: dict[str, Any] = {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": self.rest.cdn_url(name),
        }
        if content_type is not None:
            entry["content_type"] = content_type
        return entry

    def bot_messages(self, channel_id: int = CHANNEL_ID) -> list[dict[str, Any]]:
        """The bot's messages in a channel, oldest first."""
        bot_id = str(self.rest.bot_user_id)
        return [m for m in self.rest.messages(channel_id) if m["author"]["id"] == bot_id]

    async def wait_bot_messages(self, count: int, channel_id: int = CHANNEL_ID) -> None:
        await self.rest.wait_until(lambda: len(self.bot_messages(channel_id)) >= count)

    async def wait_answered(self, interaction: FakeInteraction) -> None:
        """Wait until the bot's answer is visible: a reply, an edited defer, or a followup."""
        await self.rest.wait_until(lambda: answered(interaction))


def last_message(interaction: FakeInteraction) -> dict[str, Any]:
    """The message the user sees last: the newest followup, else the original response."""
    if interaction.followups:
        return list(interaction.followups.values())[-1]
    assert interaction.original is not None
    return interaction.original


def answered(interaction: FakeInteraction) -> bool:
    original = interaction.original
    return (
        interaction.callback_type == 4
        or bool(interaction.followups)
        or (
            original is not None
            and original.get("edited_timestamp") is not None
            and not original["content"].startswith("Still working")
        )
    )


@asynccontextmanager
async def open_fake_discord(server_ssl_context: ssl.SSLContext) -> AsyncIterator[FakeDiscord]:
    """Run both fakes for the body of the ``async with``."""
    async with trio.open_nursery() as nursery:
        gateway = FakeGateway(token=FAKE_TOKEN, application_id=DEFAULT_SNOWFLAKE)
        await nursery.start(gateway.run, server_ssl_context)
        rest = FakeDiscordRest(ssl_context=server_ssl_context, gateway_url=gateway.url)
        await nursery.start(rest.run)
        yield FakeDiscord(rest, gateway)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def fake_discord(
    server_ssl_context: ssl.SSLContext, trust_fake_ca: Path
) -> AsyncIterator[FakeDiscord]:
    """A running fake Discord that the bot trusts, for the test's lifetime."""
    async with open_fake_discord(server_ssl_context) as fake:
        yield fake
