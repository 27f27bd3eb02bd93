"""Typed bodies of the gateway events the bot uses, and `decode_event` to get them.

Theory of operation. `protocol.decode_frame` leaves a dispatch's ``d`` as raw JSON; the shell calls
`decode_event(t, d)`, which looks the event name up in `EVENT_TYPES` and decodes the body straight
into a frozen msgspec Struct. Discord adds fields all the time, so unknown fields are ignored
(``forbid_unknown_fields=False``), and fields the bot does not read are not declared at all.

`decode_event` never raises. An event missing from the table, or a known event whose body fails
validation, comes back as `UnknownEvent` holding the body as a dict; in the second case its
``error`` says what failed, so the shell can log it and carry on.

Snowflakes arrive as JSON strings. The decoders run in msgspec's lax mode (``strict=False``), which
converts a numeric string to ``int`` for a field typed `Snowflake` or `PermissionBits`, whatever
its size (snowflakes are unsigned 64-bit, so 2**63 and above occur); negative values are refused.
There is no upper bound because msgspec cannot express one past int64. Lax mode also accepts
"true"/"false" strings for bools; Discord sends real booleans, so that loosening costs nothing.
"""

import datetime
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final, TypeAlias

import msgspec

Snowflake: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]
"""A Discord id: a JSON string on the wire, an `int` here."""

PermissionBits: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]
"""A permission bitset: a decimal JSON string on the wire, an `int` here."""


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Base of every decoded body: immutable, keyword-only, tolerant of new fields."""


class Hello(_Body, frozen=True, kw_only=True):
    """Body of op 10. ``heartbeat_interval`` is in milliseconds."""

    heartbeat_interval: Annotated[int, msgspec.Meta(gt=0)]


# --- Shared objects -----------------------------------------------------------------------------


class User(_Body, frozen=True, kw_only=True):
    id: Snowflake
    username: str
    global_name: str | None = None
    bot: bool = False

    @property
    def display_name(self) -> str:
        return self.global_name or self.username


class PartialUser(_Body, frozen=True, kw_only=True):
    """A user as mentioned or as the author of a referenced message: only ``id`` is certain."""

    id: Snowflake
    username: str | None = None
    global_name: str | None = None
    bot: bool = False


class Member(_Body, frozen=True, kw_only=True):
    """A guild member. ``user`` is absent in MESSAGE_CREATE (the author is the user);
    ``permissions`` is present only in interactions."""

    user: User | None = None
    nick: str | None = None
    roles: tuple[Snowflake, ...] = ()
    permissions: PermissionBits | None = None


class Channel(_Body, frozen=True, kw_only=True):
    """A channel. ``type``: 0 text, 1 DM, 2 voice, 4 category, 5 announcement, 13 stage,
    10-12 threads, 15 forum."""

    id: Snowflake
    type: int
    guild_id: Snowflake | None = None
    name: str | None = None
    parent_id: Snowflake | None = None
    position: int | None = None


class VoiceState(_Body, frozen=True, kw_only=True):
    """A user's voice state; ``channel_id`` None means not in voice. In GUILD_CREATE the voice
    states have no ``guild_id``."""

    guild_id: Snowflake | None = None
    channel_id: Snowflake | None
    user_id: Snowflake
    session_id: str
    member: Member | None = None
    deaf: bool = False
    mute: bool = False
    self_deaf: bool = False
    self_mute: bool = False
    suppress: bool = False


# --- Session events -----------------------------------------------------------------------------


class Application(_Body, frozen=True, kw_only=True):
    id: Snowflake
    flags: int = 0


class UnavailableGuild(_Body, frozen=True, kw_only=True):
    id: Snowflake
    unavailable: bool = True


class Ready(_Body, frozen=True, kw_only=True):
    """READY: keep ``session_id`` and ``resume_gateway_url`` to resume."""

    v: int = 10
    user: User
    guilds: tuple[UnavailableGuild, ...] = ()
    session_id: str
    resume_gateway_url: str
    application: Application
    shard: tuple[int, int] | None = None


class Resumed(_Body, frozen=True, kw_only=True):
    """RESUMED: the missed events were replayed."""


# --- Messages and interactions ------------------------------------------------------------------


class Attachment(_Body, frozen=True, kw_only=True):
    id: Snowflake
    filename: str
    size: int
    url: str
    proxy_url: str | None = None
    content_type: str | None = None


class MessageReference(_Body, frozen=True, kw_only=True):
    message_id: Snowflake | None = None
    channel_id: Snowflake | None = None
    guild_id: Snowflake | None = None
    type: int = 0


class ReferencedMessage(_Body, frozen=True, kw_only=True):
    """The message a reply answers, read only as far as the bot needs."""

    id: Snowflake
    channel_id: Snowflake | None = None
    author: PartialUser | None = None
    content: str = ""


class MessageCreate(_Body, frozen=True, kw_only=True):
    """MESSAGE_CREATE. ``content`` is empty without the MESSAGE_CONTENT intent, except in DMs and
    messages that mention the bot. ``guild_id`` is None in DMs."""

    id: Snowflake
    channel_id: Snowflake
    guild_id: Snowflake | None = None
    author: User
    member: Member | None = None
    content: str = ""
    timestamp: datetime.datetime
    type: int = 0
    mentions: tuple[PartialUser, ...] = ()
    referenced_message: ReferencedMessage | None = None
    message_reference: MessageReference | None = None
    attachments: tuple[Attachment, ...] = ()
    webhook_id: Snowflake | None = None


class CommandOption(_Body, frozen=True, kw_only=True):
    """An option of a command: a ``value`` or, for sub-commands, nested ``options``."""

    name: str
    type: int
    value: str | int | float | bool | None = None
    options: tuple["CommandOption", ...] = ()
    focused: bool = False


class InteractionData(_Body, frozen=True, kw_only=True):
    """``data`` of an interaction: command fields (id, name, type, options, resolved, target_id)
    or component/modal fields (custom_id, component_type, values, components)."""

    id: Snowflake | None = None
    name: str | None = None
    type: int | None = None
    options: tuple["CommandOption", ...] = ()
    resolved: dict[str, Any] | None = None
    target_id: Snowflake | None = None
    custom_id: str | None = None
    component_type: int | None = None
    values: tuple[str, ...] = ()
    components: tuple[dict[str, Any], ...] = ()


class InteractionCreate(_Body, frozen=True, kw_only=True):
    """INTERACTION_CREATE. Answer within 3 s using ``id`` and ``token`` (PROTOCOL.md 4)."""

    id: Snowflake
    application_id: Snowflake
    type: int
    token: str
    version: int = 1
    data: InteractionData | None = None
    guild_id: Snowflake | None = None
    channel_id: Snowflake | None = None
    member: Member | None = None
    user: User | None = None
    locale: str | None = None
    guild_locale: str | None = None
    app_permissions: PermissionBits | None = None
    context: int | None = None

    @property
    def invoker(self) -> User | None:
        """Who triggered it: ``member.user`` in a guild, ``user`` in a DM."""
        return self.member.user if self.member is not None else self.user


# --- Guilds, channels, voice --------------------------------------------------------------------


class GuildCreate(_Body, frozen=True, kw_only=True):
    """GUILD_CREATE: a guild became available, or the bot joined one. ``members`` is partial."""

    id: Snowflake
    name: str = ""
    unavailable: bool = False
    owner_id: Snowflake | None = None
    member_count: int = 0
    channels: tuple[Channel, ...] = ()
    voice_states: tuple[VoiceState, ...] = ()
    members: tuple[Member, ...] = ()


class GuildDelete(_Body, frozen=True, kw_only=True):
    """GUILD_DELETE: an outage when ``unavailable``, else the bot was removed from the guild."""

    id: Snowflake
    unavailable: bool = False


class ChannelCreate(Channel, frozen=True, kw_only=True):
    pass


class ChannelUpdate(Channel, frozen=True, kw_only=True):
    pass


class ChannelDelete(Channel, frozen=True, kw_only=True):
    pass


class VoiceStateUpdate(VoiceState, frozen=True, kw_only=True):
    """VOICE_STATE_UPDATE. The bot's own carries the voice ``session_id``."""


class VoiceServerUpdate(_Body, frozen=True, kw_only=True):
    """VOICE_SERVER_UPDATE. ``endpoint`` None: the voice server is gone, wait for another one.
    Use it verbatim, port included (PROTOCOL.md P8)."""

    token: str
    guild_id: Snowflake
    endpoint: str | None


class GuildMemberEvent(_Body, frozen=True, kw_only=True):
    """The body shared by GUILD_MEMBER_ADD and GUILD_MEMBER_UPDATE (needs GUILD_MEMBERS)."""

    guild_id: Snowflake
    user: User
    nick: str | None = None
    roles: tuple[Snowflake, ...] = ()


class GuildMemberAdd(GuildMemberEvent, frozen=True, kw_only=True):
    pass


class GuildMemberUpdate(GuildMemberEvent, frozen=True, kw_only=True):
    pass


class GuildMemberRemove(_Body, frozen=True, kw_only=True):
    guild_id: Snowflake
    user: User


class UnknownEvent(msgspec.Struct, frozen=True):
    """A dispatch without a typed body: not in `EVENT_TYPES` (``error`` None), or one whose body
    failed to decode (``error`` says why; ``data`` is the body if it was a JSON object)."""

    name: str
    data: dict[str, Any]
    error: str | None = None


Event: TypeAlias = (
    Ready
    | Resumed
    | MessageCreate
    | InteractionCreate
    | GuildCreate
    | GuildDelete
    | ChannelCreate
    | ChannelUpdate
    | ChannelDelete
    | VoiceStateUpdate
    | VoiceServerUpdate
    | GuildMemberAdd
    | GuildMemberUpdate
    | GuildMemberRemove
    | UnknownEvent
)

EVENT_TYPES: Final[Mapping[str, type[_Body]]] = MappingProxyType(
    {
        "READY": Ready,
        "RESUMED": Resumed,
        "MESSAGE_CREATE": MessageCreate,
        "INTERACTION_CREATE": InteractionCreate,
        "GUILD_CREATE": GuildCreate,
        "GUILD_DELETE": GuildDelete,
        "CHANNEL_CREATE": ChannelCreate,
        "CHANNEL_UPDATE": ChannelUpdate,
        "CHANNEL_DELETE": ChannelDelete,
        "VOICE_STATE_UPDATE": VoiceStateUpdate,
        "VOICE_SERVER_UPDATE": VoiceServerUpdate,
        "GUILD_MEMBER_ADD": GuildMemberAdd,
        "GUILD_MEMBER_UPDATE": GuildMemberUpdate,
        "GUILD_MEMBER_REMOVE": GuildMemberRemove,
    }
)

# One decoder per event type, built once: building a Decoder is the expensive part.
_DECODERS: Final[Mapping[str, msgspec.json.Decoder[Any]]] = {
    name: msgspec.json.Decoder(body_type, strict=False) for name, body_type in EVENT_TYPES.items()
}
_any_decoder: Final = msgspec.json.Decoder()


def decode_event(name: str, data: msgspec.Raw | bytes | str) -> Event:
    """Decode the body ``data`` of dispatch ``name``. Never raises: see `UnknownEvent`."""
    decoder = _DECODERS.get(name)
    error = None
    if decoder is not None:
        try:
            event: Event = decoder.decode(data)
        except msgspec.DecodeError as exc:
            error = f"{name}: {exc}"
        else:
            return event
    try:
        body = _any_decoder.decode(data)
    except msgspec.DecodeError as exc:
        return UnknownEvent(name, {}, error or f"{name}: {exc}")
    if not isinstance(body, dict):
        return UnknownEvent(name, {}, error or f"{name}: the body is not a JSON object")
    return UnknownEvent(name, body, error)
