"""Registering slash commands with Discord only when their definitions changed.

Discord allows 200 command creates per day per guild, and a bulk overwrite of unchanged
commands still counts against Discord's patience; so the hash of the last payload that Discord
accepted is stored, and a restart with the same commands sends nothing.
"""

from __future__ import annotations

import logging
from typing import Protocol

from trio_companion.gateway.commands import CommandRegistry
from trio_companion.gateway.rest import RestClient

__all__ = ["KeyValue", "sync_commands"]

log = logging.getLogger(__name__)


class KeyValue(Protocol):
    """Where the last synced hash is kept (the storage package's meta repository)."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


async def sync_commands(
    rest: RestClient,
    registry: CommandRegistry,
    memory: KeyValue,
    *,
    application_id: int,
    guild_id: int | None = None,
) -> bool:
    """Overwrite the commands of the application (or of one guild) if they changed.

    Returns whether a request was sent. Raises the REST client's errors.
    """
    scope = "global" if guild_id is None else f"guild:{guild_id}"
    key = f"commands.hash:{application_id}:{scope}"
    digest = registry.payload_hash()
    if await memory.get(key) == digest:
        log.info("slash commands unchanged (%s); not syncing", scope)
        return False
    payload = registry.to_payload()
    if guild_id is None:
        await rest.bulk_overwrite_global_commands(application_id, payload)
    else:
        await rest.bulk_overwrite_guild_commands(application_id, guild_id, payload)
    await memory.set(key, digest)
    log.info("synced %d slash commands (%s)", len(payload), scope)
    return True
