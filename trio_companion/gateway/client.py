"""The gateway as the app sees it: ask REST where to connect, run the shards, route sends.

``GatewayClient.run`` fetches ``GET /gateway/bot`` once (the URL, the recommended shard count and
the session start limit), starts the shards in order in its own nursery (identify buckets start
in order, PROTOCOL.md 1.9) and reports itself started once every shard is READY. The shards feed
the `Dispatcher`, which the app runs beside it.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Literal, final

import trio

from trio_companion.gateway.compression import available_compressions
from trio_companion.gateway.errors import GatewayError
from trio_companion.gateway.identify import IdentifyGate
from trio_companion.gateway.protocol import (
    Activity,
    Intents,
    Presence,
    encode_voice_state_update,
)
from trio_companion.gateway.rest import RestClient
from trio_companion.gateway.rest_errors import Unauthorized
from trio_companion.gateway.shard import Shard, ShardEvent, ShardStatistics

__all__ = ["GatewayClient", "GatewayStatistics", "presence_for", "shard_id_for"]

log = logging.getLogger(__name__)

# Custom status (PROTOCOL.md 1.3 op 3): type 4 shows ``state`` as the text.
_CUSTOM_STATUS = 4


class TokenRejected(GatewayError):
    """Discord answered ``GET /gateway/bot`` with 401: the token is wrong or was reset."""

    def __init__(self) -> None:
        super().__init__("Discord rejected the token (401): check DISCORD_TOKEN")


@dataclass(frozen=True, slots=True)
class GatewayStatistics:
    shards: tuple[ShardStatistics, ...]

    @property
    def latency(self) -> float | None:
        known = [s.latency for s in self.shards if s.latency is not None]
        return sum(known) / len(known) if known else None


def shard_id_for(guild_id: int, shard_count: int) -> int:
    """The shard that carries a guild's events (PROTOCOL.md 1.9)."""
    return (guild_id >> 22) % shard_count


def presence_for(activity: str) -> Presence | None:
    """The Identify presence for the configured activity text (None: Discord's default)."""
    if not activity:
        return None
    return Presence(
        activities=(Activity(name="Custom Status", type=_CUSTOM_STATUS, state=activity),)
    )


@final
class GatewayClient:
    def __init__(
        self,
        *,
        rest: RestClient,
        token: str,
        intents: Intents,
        shard_count: int | Literal["auto"],
        events: trio.MemorySendChannel[ShardEvent],
        ssl_context: ssl.SSLContext,
        presence: Presence | None = None,
    ) -> None:
        self._rest = rest
        self._token = token
        self._intents = intents
        self._shard_count = shard_count
        self._events = events
        self._ssl = ssl_context
        self._presence = presence
        self._shards: list[Shard] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every shard; ``started()`` once all are READY. Raises `FatalGatewayClose`."""
        try:
            info = await self._rest.get_gateway_bot()
        except Unauthorized:
            raise TokenRejected() from None
        count = info.shards if self._shard_count == "auto" else self._shard_count
        limit = info.session_start_limit
        gate = IdentifyGate(
            limit.max_concurrency,
            total=limit.total,
            remaining=limit.remaining,
            reset_after=limit.reset_after / 1000,
        )
        # zstd-stream when `zstandard` is installed (smaller, faster), else zlib-stream.
        compress = next(iter(available_compressions()), None)
        log.info("gateway: %d shard(s), %d session starts left", count, limit.remaining)
        async with self._events, trio.open_nursery() as nursery:
            for shard_id in range(count):
                shard = Shard(
                    token=self._token,
                    intents=self._intents,
                    shard_id=shard_id,
                    shard_count=count,
                    gateway_url=info.url,
                    identify_gate=gate,
                    events=self._events.clone(),
                    ssl_context=self._ssl,
                    compress=compress,
                    presence=self._presence,
                )
                self._shards.append(shard)
                await nursery.start(shard.run)
            task_status.started()

    async def update_voice_state(
        self,
        guild_id: int,
        channel_id: int | None,
        *,
        self_mute: bool = False,
        self_deaf: bool = False,
    ) -> None:
        """Op 4 on the guild's shard: join, move (a channel id) or leave (None) voice."""
        payload = encode_voice_state_update(
            guild_id, channel_id, self_mute=self_mute, self_deaf=self_deaf
        )
        await self._shards[shard_id_for(guild_id, len(self._shards))].send(payload)

    def statistics(self) -> GatewayStatistics:
        return GatewayStatistics(tuple(s.statistics() for s in self._shards))
