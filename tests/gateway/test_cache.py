"""The state cache, fed with decoded gateway events."""

from __future__ import annotations

from typing import Any

import msgspec

from trio_companion.gateway.cache import StateCache
from trio_companion.gateway.events import Event, decode_event

BOT = {"id": "10", "username": "companion", "bot": True}


def event(name: str, data: dict[str, Any]) -> Event:
    return decode_event(name, msgspec.json.encode(data))


def ready() -> Event:
    return event(
        "READY",
        {
            "v": 10,
            "user": BOT,
            "guilds": [{"id": "1", "unavailable": True}],
            "session_id": "s",
            "resume_gateway_url": "wss://x",
            "application": {"id": "99", "flags": 0},
        },
    )


def guild_create() -> Event:
    return event(
        "GUILD_CREATE",
        {
            "id": "1",
            "name": "Home",
            "channels": [{"id": "5", "type": 0, "name": "general"}, {"id": "6", "type": 2}],
            "voice_states": [{"user_id": "20", "channel_id": "6", "session_id": "x"}],
            "members": [{"user": {"id": "20", "username": "ann", "global_name": "Ann"}}],
        },
    )


def test_ready_and_guild_create() -> None:
    cache = StateCache()
    cache.apply(ready())
    cache.apply(guild_create())
    assert cache.user is not None
    assert cache.user.id == 10
    assert cache.application_id == 99
    guild = cache.guild(1)
    assert guild is not None
    assert guild.name == "Home"
    channel = cache.channel(5)
    assert channel is not None
    assert (channel.name, channel.guild_id) == ("general", 1)
    assert cache.voice_channel_of(1, 20) == 6
    assert cache.display_name(20) == "Ann"
    assert cache.statistics().channels == 2


def test_voice_states_including_the_bots_own_session() -> None:
    cache = StateCache()
    cache.apply(ready())
    cache.apply(guild_create())
    cache.apply(
        event(
            "VOICE_STATE_UPDATE",
            {"guild_id": "1", "channel_id": "6", "user_id": "10", "session_id": "voice-sess"},
        )
    )
    guild = cache.guild(1)
    assert guild is not None
    assert guild.own_voice_session == "voice-sess"
    assert cache.voice_channel_of(1, 10) == 6
    cache.apply(
        event(
            "VOICE_STATE_UPDATE",
            {"guild_id": "1", "channel_id": None, "user_id": "20", "session_id": "x"},
        )
    )
    assert cache.voice_channel_of(1, 20) is None
    cache.apply(
        event(
            "VOICE_STATE_UPDATE",
            {"guild_id": "1", "channel_id": None, "user_id": "10", "session_id": "voice-sess"},
        )
    )
    assert guild.own_voice_session is None


def test_channels_come_and_go_and_guilds_leave() -> None:
    cache = StateCache()
    cache.apply(guild_create())
    cache.apply(event("CHANNEL_CREATE", {"id": "7", "type": 0, "guild_id": "1", "name": "new"}))
    cache.apply(event("CHANNEL_UPDATE", {"id": "5", "type": 0, "guild_id": "1", "name": "chat"}))
    channel = cache.channel(5)
    assert channel is not None
    assert channel.name == "chat"
    cache.apply(event("CHANNEL_DELETE", {"id": "7", "type": 0, "guild_id": "1"}))
    assert cache.channel(7) is None
    cache.apply(event("GUILD_DELETE", {"id": "1"}))
    assert cache.guild(1) is None
    assert cache.channel(5) is None


def test_names_prefer_the_guild_nickname_and_stay_bounded() -> None:
    cache = StateCache(max_names=3)
    message = {
        "id": "1",
        "channel_id": "5",
        "guild_id": "1",
        "author": {"id": "30", "username": "bob", "global_name": None},
        "member": {"nick": "Bobby"},
        "content": "hi",
        "timestamp": "2026-11-28T12:00:00+00:00",
    }
    cache.apply(event("MESSAGE_CREATE", message))
    assert cache.display_name(30, guild_id=1) == "Bobby"
    assert cache.display_name(30) == "bob"
    assert cache.display_name(30, guild_id=2) == "bob"
    for user in range(40, 44):
        cache.apply(
            event(
                "MESSAGE_CREATE",
                {**message, "author": {"id": str(user), "username": "u"}, "member": None},
            )
        )
    assert cache.statistics().names == 3
    assert cache.display_name(30, guild_id=1) is None
