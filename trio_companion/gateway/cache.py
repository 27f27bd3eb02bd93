"""The little state the bot keeps from gateway events: guilds, channels, voice states, names.

Updated by the dispatcher, in event order, before any handler sees the event; read by anyone.
Only the trio thread touches it and no method awaits, so there is no lock. Member display names
are kept in a bounded LRU: the bot needs them to attribute chat history, not to mirror Discord.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final, final

from trio_companion.gateway.events import (
    Channel,
    ChannelCreate,
    ChannelDelete,
    ChannelUpdate,
    Event,
    GuildCreate,
    GuildDelete,
    GuildMemberAdd,
    GuildMemberRemove,
    GuildMemberUpdate,
    InteractionCreate,
    MessageCreate,
    Ready,
    User,
    VoiceState,
    VoiceStateUpdate,
)

__all__ = ["CacheStatistics", "ChannelInfo", "GuildInfo", "StateCache"]

# Display names remembered; each entry is a few hundred bytes.
MAX_NAMES: Final = 50_000


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: int
    type: int
    name: str
    guild_id: int | None


@dataclass(slots=True)
class GuildInfo:
    id: int
    name: str
    channels: dict[int, ChannelInfo] = field(default_factory=dict)
    # user id -> voice channel id, for users currently in voice.
    voice_channels: dict[int, int] = field(default_factory=dict)
    # The bot's own voice session id in this guild (from its VOICE_STATE_UPDATE).
    own_voice_session: str | None = None


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    guilds: int
    channels: int
    users_in_voice: int
    names: int


@final
class StateCache:
    def __init__(self, *, max_names: int = MAX_NAMES) -> None:
        self.user: User | None = None
        self.application_id: int | None = None
        self._guilds: dict[int, GuildInfo] = {}
        self._names: OrderedDict[tuple[int | None, int], str] = OrderedDict()
        self._max_names = max_names

    # --- reads ----------------------------------------------------------------------------

    def guild(self, guild_id: int) -> GuildInfo | None:
        return self._guilds.get(guild_id)

    def channel(self, channel_id: int) -> ChannelInfo | None:
        for guild in self._guilds.values():
            if (found := guild.channels.get(channel_id)) is not None:
                return found
        return None

    def voice_channel_of(self, guild_id: int, user_id: int) -> int | None:
        """The voice channel ``user_id`` is in within ``guild_id``, if any."""
        guild = self._guilds.get(guild_id)
        return guild.voice_channels.get(user_id) if guild else None

    def voice_members(self, guild_id: int, channel_id: int) -> list[int]:
        """The users in voice channel ``channel_id`` of ``guild_id``, as far as we know."""
        guild = self._guilds.get(guild_id)
        if guild is None:
            return []
        return [user for user, channel in guild.voice_channels.items() if channel == channel_id]

    def display_name(self, user_id: int, guild_id: int | None = None) -> str | None:
        """The name to show for a user: their guild nickname, else their global name."""
        for key in ((guild_id, user_id), (None, user_id)):
            if (name := self._names.get(key)) is not None:
                self._names.move_to_end(key)
                return name
        return None

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            guilds=len(self._guilds),
            channels=sum(len(g.channels) for g in self._guilds.values()),
            users_in_voice=sum(len(g.voice_channels) for g in self._guilds.values()),
            names=len(self._names),
        )

    # --- updates --------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update from one gateway event (any event; those that carry no state are ignored)."""
        if isinstance(event, Ready):
            self.user = event.user
            self.application_id = event.application.id
        elif isinstance(event, GuildCreate):
            self._guild_create(event)
        elif isinstance(event, GuildDelete):
            self._guilds.pop(event.id, None)
        elif isinstance(event, ChannelCreate | ChannelUpdate):
            self._put_channel(event)
        elif isinstance(event, ChannelDelete):
            if event.guild_id is not None and (guild := self._guilds.get(event.guild_id)):
                guild.channels.pop(event.id, None)
        elif isinstance(event, VoiceStateUpdate):
            self._voice_state(event, event.guild_id)
        elif isinstance(event, GuildMemberAdd | GuildMemberUpdate):
            self._remember(event.guild_id, event.user, event.nick)
        elif isinstance(event, GuildMemberRemove):
            self._names.pop((event.guild_id, event.user.id), None)
        elif isinstance(event, MessageCreate):
            self._remember(
                event.guild_id, event.author, event.member.nick if event.member else None
            )
        elif isinstance(event, InteractionCreate) and (user := event.invoker) is not None:
            self._remember(event.guild_id, user, event.member.nick if event.member else None)

    def _guild_create(self, event: GuildCreate) -> None:
        guild = GuildInfo(event.id, event.name)
        self._guilds[event.id] = guild
        for channel in event.channels:
            self._put_channel(channel, event.id)
        for state in event.voice_states:
            self._voice_state(state, event.id)
        for member in event.members:
            if member.user is not None:
                self._remember(event.id, member.user, member.nick)

    def _put_channel(self, channel: Channel, guild_id: int | None = None) -> None:
        gid = channel.guild_id or guild_id
        guild = self._guilds.get(gid) if gid is not None else None
        if guild is not None:
            guild.channels[channel.id] = ChannelInfo(
                channel.id, channel.type, channel.name or "", gid
            )

    def _voice_state(self, state: VoiceState, guild_id: int | None) -> None:
        guild = self._guilds.get(guild_id) if guild_id is not None else None
        if guild is None:
            return
        if state.channel_id is None:
            guild.voice_channels.pop(state.user_id, None)
        else:
            guild.voice_channels[state.user_id] = state.channel_id
        if self.user is not None and state.user_id == self.user.id:
            guild.own_voice_session = state.session_id if state.channel_id is not None else None
        if state.member is not None and state.member.user is not None:
            self._remember(guild_id, state.member.user, state.member.nick)

    def _remember(self, guild_id: int | None, user: User, nick: str | None) -> None:
        self._put_name((None, user.id), user.display_name)
        if guild_id is not None and nick:
            self._put_name((guild_id, user.id), nick)

    def _put_name(self, key: tuple[int | None, int], name: str) -> None:
        self._names[key] = name
        self._names.move_to_end(key)
        while len(self._names) > self._max_names:
            self._names.popitem(last=False)
