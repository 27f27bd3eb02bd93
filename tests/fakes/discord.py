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
from trio_companion.config import Config, DiscordConfig

__all__ = ["FakeDiscord", "fake_discord", "open_fake_discord"]

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

    async def wait_answered(self, interaction: FakeInteraction) -> None:
        """Wait until the bot's answer is visible: a reply, an edited defer, or a followup."""
        await self.rest.wait_until(lambda: answered(interaction))


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
