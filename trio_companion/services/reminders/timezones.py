"""Each user's time zone, kept in the store's ``meta`` table under ``user:{id}:timezone``.

Names are IANA names ("Europe/Paris"). Loading a zone reads a small file the first time
(`zoneinfo` caches it afterwards), so lookups run in a worker thread like other file I/O.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import trio

if TYPE_CHECKING:
    from trio_companion.storage import MetaRepository

__all__ = [
    "COMMON_ZONES",
    "find_zone",
    "get_user_zone",
    "known_zones",
    "load_zone",
    "set_user_zone",
    "suggest_zones",
    "zone_key",
]

# What /timezone suggests before the user has typed anything: one or two per region.
COMMON_ZONES: Final = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Dubai",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Africa/Johannesburg",
)


def zone_key(user_id: int) -> str:
    return f"user:{user_id}:timezone"


@cache
def _known_zones() -> dict[str, str]:
    """Every IANA name this system knows, by its lowercase form. Blocking (reads the tz
    database's directory), cached after the first call."""
    return {name.lower(): name for name in available_timezones()}


async def known_zones() -> dict[str, str]:
    return await trio.to_thread.run_sync(_known_zones)


async def find_zone(typed: str) -> str | None:
    """The IANA name `typed` names, matched without regard to case; None if there is none."""
    return (await known_zones()).get(typed.strip().lower())


async def load_zone(name: str) -> ZoneInfo:
    """The zone `name`; raises `ZoneInfoNotFoundError` (a `KeyError`) or `ValueError`."""
    return await trio.to_thread.run_sync(ZoneInfo, name)


async def get_user_zone(meta: MetaRepository, user_id: int, default: str) -> tuple[ZoneInfo, bool]:
    """The user's zone and whether they chose it (False: `default`, from the configuration).

    A stored name this system no longer knows falls back to `default`.
    """
    stored = await meta.get(zone_key(user_id))
    if stored is not None:
        try:
            return await load_zone(stored), True
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return await load_zone(default), False


async def set_user_zone(meta: MetaRepository, user_id: int, name: str) -> None:
    """Store `name` (already checked with `find_zone`) as the user's zone."""
    await meta.set(zone_key(user_id), name)


async def suggest_zones(typed: str, limit: int) -> list[str]:
    """Up to `limit` zone names for autocomplete: `COMMON_ZONES` for nothing typed, else the
    names containing it (those starting with it, or with a part starting with it, first)."""
    needle = typed.strip().lower().replace(" ", "_")
    if not needle:
        return list(COMMON_ZONES[:limit])
    names = sorted((await known_zones()).values())
    hits = [n for n in names if needle in n.lower()]

    def rank(name: str) -> int:
        low = name.lower()
        if low.startswith(needle):
            return 0
        return 1 if any(part.startswith(needle) for part in low.split("/")) else 2

    return sorted(hits, key=rank)[:limit]
