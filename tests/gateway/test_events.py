"""Tests of typed gateway event decoding, on hand-written samples shaped like Discord's docs.

The samples carry fields the Structs do not declare (and some Discord has not invented yet) to
check that new fields never break decoding.
"""

from __future__ import annotations

import datetime

import msgspec
import pytest

from trio_companion.gateway.events import (
    EVENT_TYPES,
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
    Resumed,
    UnknownEvent,
    VoiceServerUpdate,
    VoiceStateUpdate,
    decode_event,
)
from trio_companion.gateway.protocol import decode_frame

BOT_ID = 1100000000000000001
BIG = 2**63 + 12345  # snowflakes are unsigned 64-bit: ids at and above 2**63 must decode
MAX = 2**64 - 1

READY = """{
  "v": 10,
  "user_settings": {},
  "user": {"id": "1100000000000000001", "username": "companion", "global_name": null,
           "discriminator": "0", "avatar": null, "bot": true, "verified": true,
           "mfa_enabled": false, "flags": 0},
  "guilds": [{"id": "81384788765712384", "unavailable": true},
             {"id": "9223372036854788153", "unavailable": true}],
  "session_type": "normal",
  "session_id": "3f2a6b9c0d1e4f5a6b7c8d9e0f1a2b3c",
  "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg",
  "shard": [0, 1],
  "application": {"id": "1100000000000000001", "flags": 565248},
  "geo_ordered_rtc_regions": ["us-east", "us-central"],
  "_trace": ["[\\"gateway-prd-us-east1-b-abcd\\",{\\"micros\\":123}]"]
}"""

MESSAGE_CREATE = """{
  "type": 19,
  "tts": false,
  "timestamp": "2026-08-01T12:34:56.789000+00:00",
  "referenced_message": {
    "type": 0, "content": "what's the weather?", "channel_id": "222",
    "author": {"username": "alice", "id": "333", "global_name": "Alice"},
    "id": "9223372036854788153", "pinned": false, "embeds": []
  },
  "message_reference": {"type": 0, "message_id": "9223372036854788153", "channel_id": "222",
                        "guild_id": "111"},
  "pinned": false,
  "nonce": "1239872397",
  "mentions": [{"username": "companion", "id": "1100000000000000001", "bot": true,
                "member": {"roles": [], "nick": null}}],
  "mention_roles": [],
  "mention_everyone": false,
  "member": {"roles": ["444", "18446744073709551615"], "nick": "Ally",
             "joined_at": "2025-01-01T00:00:00+00:00", "deaf": false, "mute": false,
             "flags": 0},
  "id": "18446744073709551615",
  "flags": 0,
  "embeds": [],
  "edited_timestamp": null,
  "content": "<@1100000000000000001> and tomorrow?",
  "components": [],
  "channel_id": "222",
  "author": {"username": "alice", "public_flags": 0, "id": "333", "global_name": "Alice",
             "discriminator": "0", "avatar": "a_abc", "clan": null},
  "attachments": [{"id": "555", "filename": "voice-message.ogg", "size": 48213,
                   "url": "https://cdn.discordapp.com/attachments/222/555/voice-message.ogg",
                   "proxy_url": "https://media.discordapp.net/attachments/222/555/v.ogg",
                   "content_type": "audio/ogg", "duration_secs": 3.2, "waveform": "AAAA"}],
  "guild_id": "111",
  "brand_new_field": {"nested": [1, 2, 3]}
}"""

DM_MESSAGE_CREATE = """{
  "id": "777", "channel_id": "888", "type": 0, "content": "hi",
  "timestamp": "2026-08-01T12:00:00.000000+00:00",
  "author": {"id": "333", "username": "alice"},
  "mentions": [], "attachments": [], "embeds": []
}"""

INTERACTION_CREATE = """{
  "version": 1,
  "type": 2,
  "token": "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQ",
  "member": {
    "user": {"id": "333", "username": "alice", "global_name": "Alice", "avatar": null},
    "roles": ["444"], "permissions": "2251799813685247", "nick": null,
    "joined_at": "2025-01-01T00:00:00+00:00", "flags": 0
  },
  "locale": "en-GB",
  "guild_locale": "en-US",
  "id": "9223372036854788153",
  "guild_id": "111",
  "guild": {"id": "111", "locale": "en-US", "features": []},
  "entitlements": [],
  "context": 0,
  "channel_id": "222",
  "channel": {"id": "222", "type": 0, "name": "general"},
  "authorizing_integration_owners": {"0": "111"},
  "attachment_size_limit": 10485760,
  "application_id": "1100000000000000001",
  "app_permissions": "562949953421311",
  "data": {
    "type": 1, "name": "remind", "id": "1200000000000000000", "guild_id": "111",
    "options": [
      {"type": 1, "name": "add", "options": [
        {"type": 3, "name": "text", "value": "stretch"},
        {"type": 4, "name": "minutes", "value": 15},
        {"type": 10, "name": "factor", "value": 1.5},
        {"type": 5, "name": "private", "value": true},
        {"type": 6, "name": "who", "value": "333"}
      ]}
    ],
    "resolved": {"users": {"333": {"id": "333", "username": "alice"}}}
  }
}"""

DM_INTERACTION_CREATE = """{
  "version": 1, "type": 3, "token": "tok", "id": "10", "application_id": "20",
  "user": {"id": "333", "username": "alice"}, "locale": "fr", "context": 1,
  "channel_id": "888",
  "data": {"custom_id": "forget:yes", "component_type": 2, "values": []}
}"""

GUILD_CREATE = """{
  "id": "111", "name": "Cozy Corner", "icon": null, "owner_id": "333",
  "unavailable": false, "large": false, "member_count": 42,
  "joined_at": "2025-01-01T00:00:00+00:00",
  "roles": [{"id": "111", "name": "@everyone", "permissions": "1071698660929"}],
  "emojis": [], "stickers": [], "features": ["COMMUNITY"], "threads": [],
  "presences": [], "stage_instances": [], "guild_scheduled_events": [],
  "soundboard_sounds": [],
  "channels": [
    {"id": "222", "type": 0, "name": "general", "position": 0, "parent_id": "999",
     "topic": null, "nsfw": false, "permission_overwrites": [], "flags": 0},
    {"id": "223", "type": 2, "name": "Lounge", "position": 1, "bitrate": 64000,
     "user_limit": 0, "rtc_region": null, "parent_id": null},
    {"id": "999", "type": 4, "name": "Text Channels", "position": 0}
  ],
  "voice_states": [
    {"user_id": "333", "channel_id": "223", "session_id": "vs-abc", "deaf": false,
     "mute": false, "self_deaf": false, "self_mute": true, "self_video": false,
     "suppress": false, "request_to_speak_timestamp": null}
  ],
  "members": [
    {"user": {"id": "1100000000000000001", "username": "companion", "bot": true},
     "roles": [], "nick": null, "joined_at": "2025-01-01T00:00:00+00:00"},
    {"user": {"id": "333", "username": "alice"}, "roles": ["444"], "nick": "Ally"}
  ]
}"""

VOICE_STATE_UPDATE = """{
  "member": {"user": {"id": "1100000000000000001", "username": "companion", "bot": true},
             "roles": [], "nick": null, "joined_at": "2025-01-01T00:00:00+00:00"},
  "user_id": "1100000000000000001", "suppress": false,
  "session_id": "90326bd25d71d39b9ef95b299e3872ff",
  "self_video": false, "self_mute": false, "self_deaf": true, "request_to_speak_timestamp": null,
  "mute": false, "guild_id": "111", "deaf": false, "channel_id": "223"
}"""

VOICE_STATE_LEFT = """{
  "user_id": "333", "session_id": "vs-abc", "guild_id": "111", "channel_id": null,
  "deaf": false, "mute": false, "self_deaf": false, "self_mute": false, "suppress": false
}"""

VOICE_SERVER_UPDATE = """{
  "token": "my_token", "guild_id": "111", "endpoint": "c-iad09-abcd1234.discord.media:2087"
}"""

CHANNEL = """{
  "id": "224", "type": 0, "guild_id": "111", "name": "new-channel", "position": 3,
  "parent_id": "999", "permission_overwrites": [], "rate_limit_per_user": 0,
  "last_message_id": null, "topic": "chat", "nsfw": false, "flags": 0
}"""

GUILD_MEMBER = """{
  "guild_id": "111", "user": {"id": "333", "username": "alice", "global_name": "Alice"},
  "nick": "Ally", "roles": ["444"], "joined_at": "2025-01-01T00:00:00+00:00",
  "premium_since": null, "deaf": false, "mute": false, "flags": 0, "avatar": null
}"""


def decode(name: str, body: str) -> Event:
    return decode_event(name, body.encode())


def test_ready() -> None:
    event = decode("READY", READY)
    assert isinstance(event, Ready)
    assert event.v == 10
    assert event.session_id == "3f2a6b9c0d1e4f5a6b7c8d9e0f1a2b3c"
    assert event.resume_gateway_url == "wss://gateway-us-east1-b.discord.gg"
    assert event.user.id == BOT_ID
    assert event.user.bot
    assert event.user.display_name == "companion"
    assert event.application.id == BOT_ID
    assert [g.id for g in event.guilds] == [81384788765712384, 9223372036854788153]
    assert all(g.unavailable for g in event.guilds)
    assert event.shard == (0, 1)


def test_ready_from_a_whole_frame() -> None:
    frame = f'{{"op":0,"s":1,"t":"READY","d":{READY}}}'.encode()
    message = decode_frame(frame)
    assert message.t is not None
    assert isinstance(decode_event(message.t, message.d), Ready)


@pytest.mark.parametrize("body", ['{"_trace":["gw"]}', "{}"])
def test_resumed(body: str) -> None:
    assert decode("RESUMED", body) == Resumed()


def test_message_create_in_a_guild() -> None:
    event = decode("MESSAGE_CREATE", MESSAGE_CREATE)
    assert isinstance(event, MessageCreate)
    assert event.id == MAX
    assert (event.channel_id, event.guild_id, event.type) == (222, 111, 19)
    assert event.author.id == 333
    assert event.author.display_name == "Alice"
    assert not event.author.bot
    assert event.member is not None
    assert event.member.nick == "Ally"
    assert event.member.roles == (444, MAX)
    assert event.content == "<@1100000000000000001> and tomorrow?"
    assert [m.id for m in event.mentions] == [BOT_ID]
    assert event.mentions[0].bot
    assert event.timestamp == datetime.datetime(2026, 8, 1, 12, 34, 56, 789000, tzinfo=datetime.UTC)
    assert event.referenced_message is not None
    assert event.referenced_message.id == 9223372036854788153
    assert event.referenced_message.author is not None
    assert event.referenced_message.author.id == 333
    assert event.message_reference is not None
    assert event.message_reference.message_id == 9223372036854788153
    (attachment,) = event.attachments
    assert attachment.id == 555
    assert attachment.filename == "voice-message.ogg"
    assert attachment.size == 48213
    assert attachment.content_type == "audio/ogg"
    assert attachment.url.startswith("https://cdn.discordapp.com/")


def test_message_create_in_a_dm() -> None:
    event = decode("MESSAGE_CREATE", DM_MESSAGE_CREATE)
    assert isinstance(event, MessageCreate)
    assert event.guild_id is None
    assert event.member is None
    assert event.referenced_message is None
    assert event.mentions == ()
    assert event.content == "hi"


def test_interaction_create_command_in_a_guild() -> None:
    event = decode("INTERACTION_CREATE", INTERACTION_CREATE)
    assert isinstance(event, InteractionCreate)
    assert event.id == 9223372036854788153
    assert event.application_id == BOT_ID
    assert event.type == 2
    assert event.token == "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQ"
    assert (event.guild_id, event.channel_id) == (111, 222)
    assert event.locale == "en-GB"
    assert event.app_permissions == 562949953421311
    assert event.member is not None
    assert event.member.permissions == 2251799813685247  # decoded from the string bitset
    assert event.invoker is not None
    assert event.invoker.id == 333
    data = event.data
    assert data is not None
    assert (data.id, data.name, data.type) == (1200000000000000000, "remind", 1)
    assert data.resolved == {"users": {"333": {"id": "333", "username": "alice"}}}
    (sub,) = data.options
    assert (sub.name, sub.type, sub.value) == ("add", 1, None)
    values = {option.name: option.value for option in sub.options}
    # Option values keep their JSON types: "333" (a USER id) stays a string.
    assert values == {
        "text": "stretch",
        "minutes": 15,
        "factor": 1.5,
        "private": True,
        "who": "333",
    }


def test_interaction_create_component_in_a_dm() -> None:
    event = decode("INTERACTION_CREATE", DM_INTERACTION_CREATE)
    assert isinstance(event, InteractionCreate)
    assert event.member is None
    assert event.guild_id is None
    assert event.invoker is not None
    assert event.invoker.id == 333
    assert event.data is not None
    assert (event.data.custom_id, event.data.component_type) == ("forget:yes", 2)


def test_guild_create() -> None:
    event = decode("GUILD_CREATE", GUILD_CREATE)
    assert isinstance(event, GuildCreate)
    assert (event.id, event.name, event.owner_id, event.member_count) == (
        111,
        "Cozy Corner",
        333,
        42,
    )
    assert not event.unavailable
    assert [(c.id, c.type, c.name) for c in event.channels] == [
        (222, 0, "general"),
        (223, 2, "Lounge"),
        (999, 4, "Text Channels"),
    ]
    assert event.channels[0].parent_id == 999
    (state,) = event.voice_states
    assert (state.guild_id, state.channel_id, state.user_id) == (None, 223, 333)
    assert state.session_id == "vs-abc"
    assert state.self_mute
    assert [m.user.id for m in event.members if m.user is not None] == [BOT_ID, 333]


def test_guild_create_unavailable() -> None:
    event = decode("GUILD_CREATE", '{"id": "111", "unavailable": true}')
    assert isinstance(event, GuildCreate)
    assert event.unavailable
    assert event.channels == ()


@pytest.mark.parametrize(
    ("body", "unavailable"),
    [('{"id": "111", "unavailable": true}', True), ('{"id": "111"}', False)],
)
def test_guild_delete(body: str, unavailable: bool) -> None:
    event = decode("GUILD_DELETE", body)
    assert event == GuildDelete(id=111, unavailable=unavailable)


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("CHANNEL_CREATE", ChannelCreate),
        ("CHANNEL_UPDATE", ChannelUpdate),
        ("CHANNEL_DELETE", ChannelDelete),
    ],
)
def test_channel_events(name: str, event_type: type[ChannelCreate]) -> None:
    event = decode(name, CHANNEL)
    assert type(event) is event_type
    assert isinstance(event, event_type)
    assert (event.id, event.type, event.guild_id, event.name) == (224, 0, 111, "new-channel")
    assert (event.parent_id, event.position) == (999, 3)


def test_dm_channel_create_has_no_name_or_guild() -> None:
    event = decode("CHANNEL_CREATE", '{"id": "888", "type": 1, "recipients": [], "flags": 0}')
    assert isinstance(event, ChannelCreate)
    assert (event.guild_id, event.name) == (None, None)


def test_voice_state_update_joined() -> None:
    event = decode("VOICE_STATE_UPDATE", VOICE_STATE_UPDATE)
    assert isinstance(event, VoiceStateUpdate)
    assert (event.guild_id, event.channel_id, event.user_id) == (111, 223, BOT_ID)
    assert event.session_id == "90326bd25d71d39b9ef95b299e3872ff"
    assert event.self_deaf
    assert not event.self_mute
    assert event.member is not None
    assert event.member.user is not None
    assert event.member.user.bot


def test_voice_state_update_left() -> None:
    event = decode("VOICE_STATE_UPDATE", VOICE_STATE_LEFT)
    assert isinstance(event, VoiceStateUpdate)
    assert event.channel_id is None
    assert event.member is None


@pytest.mark.parametrize(
    ("body", "endpoint"),
    [
        (VOICE_SERVER_UPDATE, "c-iad09-abcd1234.discord.media:2087"),  # port kept (P8)
        ('{"token": "t", "guild_id": "111", "endpoint": null}', None),
    ],
)
def test_voice_server_update(body: str, endpoint: str | None) -> None:
    event = decode("VOICE_SERVER_UPDATE", body)
    assert isinstance(event, VoiceServerUpdate)
    assert event.guild_id == 111
    assert event.endpoint == endpoint


@pytest.mark.parametrize(
    ("name", "event_type"),
    [("GUILD_MEMBER_ADD", GuildMemberAdd), ("GUILD_MEMBER_UPDATE", GuildMemberUpdate)],
)
def test_guild_member_events(name: str, event_type: type[GuildMemberAdd]) -> None:
    event = decode(name, GUILD_MEMBER)
    assert type(event) is event_type
    assert isinstance(event, event_type)
    assert (event.guild_id, event.user.id, event.nick, event.roles) == (111, 333, "Ally", (444,))


def test_guild_member_remove() -> None:
    body = '{"guild_id": "111", "user": {"id": "333", "username": "alice", "avatar": null}}'
    event = decode("GUILD_MEMBER_REMOVE", body)
    assert isinstance(event, GuildMemberRemove)
    assert (event.guild_id, event.user.id) == (111, 333)


# --- Snowflakes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "snowflake", [0, 1, 81384788765712384, 2**63 - 1, 2**63, BIG, MAX], ids=repr
)
def test_snowflakes_decode_from_strings_to_int(snowflake: int) -> None:
    body = f'{{"id": "{snowflake}", "unavailable": true}}'
    event = decode("GUILD_DELETE", body)
    assert isinstance(event, GuildDelete)
    assert event.id == snowflake
    assert type(event.id) is int


def test_snowflake_as_a_json_number_is_accepted() -> None:
    event = decode("GUILD_DELETE", f'{{"id": {BIG}}}')
    assert isinstance(event, GuildDelete)
    assert event.id == BIG


@pytest.mark.parametrize("bad_id", ['"-1"', '"12abc"', '""', "1.5", "true", "null"])
def test_bad_snowflake_falls_back_to_unknown(bad_id: str) -> None:
    event = decode("GUILD_DELETE", f'{{"id": {bad_id}}}')
    assert isinstance(event, UnknownEvent)
    assert event.error is not None
    assert "$.id" in event.error


# --- Passthrough --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "data"),
    [
        (
            "TYPING_START",
            '{"user_id": "333", "timestamp": 1722513296, "channel_id": "222"}',
            {"user_id": "333", "timestamp": 1722513296, "channel_id": "222"},
        ),
        (
            "PRESENCE_UPDATE",
            '{"user": {"id": "333"}, "status": "online", "activities": []}',
            {"user": {"id": "333"}, "status": "online", "activities": []},
        ),
        ("SOMETHING_NEW_IN_2027", "{}", {}),
    ],
)
def test_unknown_event_passes_through_as_a_dict(
    name: str, body: str, data: dict[str, object]
) -> None:
    event = decode(name, body)
    assert event == UnknownEvent(name, data, None)
    assert name not in EVENT_TYPES


@pytest.mark.parametrize(
    ("name", "body", "data", "error_fragment"),
    [
        ("MESSAGE_CREATE", '{"id": "1", "channel_id": "2", "timestamp": "2026-08-01T12:00:00Z"}',
         {"id": "1", "channel_id": "2", "timestamp": "2026-08-01T12:00:00Z"}, "`author`"),
        ("MESSAGE_CREATE", '{"id": "1", "channel_id": "2", "author": {"id": "3", "username": "a"},'
         ' "timestamp": "yesterday"}',
         {"id": "1", "channel_id": "2", "author": {"id": "3", "username": "a"},
          "timestamp": "yesterday"}, "$.timestamp"),
        ("READY", '{"v": 10}', {"v": 10}, "READY: Object missing required field"),
        ("VOICE_SERVER_UPDATE", '{"token": 5, "guild_id": "1", "endpoint": null}',
         {"token": 5, "guild_id": "1", "endpoint": None}, "$.token"),
        ("INTERACTION_CREATE", '{"id": "1", "application_id": "2", "type": "x", "token": "t"}',
         {"id": "1", "application_id": "2", "type": "x", "token": "t"}, "$.type"),
        ("GUILD_CREATE", "[1, 2]", {}, "GUILD_CREATE"),
        ("GUILD_CREATE", "null", {}, "GUILD_CREATE"),
        ("GUILD_CREATE", '{"id": "1",', {}, "GUILD_CREATE"),
        ("SOMETHING_NEW", "[1]", {}, "not a JSON object"),
        ("SOMETHING_NEW", "{oops", {}, "SOMETHING_NEW"),
    ],
)  # fmt: skip
def test_malformed_event_falls_back_with_the_error(
    name: str, body: str, data: dict[str, object], error_fragment: str
) -> None:
    event = decode(name, body)
    assert isinstance(event, UnknownEvent)
    assert event.name == name
    assert event.data == data
    assert event.error is not None
    assert error_fragment in event.error


def test_decode_event_accepts_raw_bytes_and_str() -> None:
    raw = msgspec.Raw(b'{"id": "5"}')
    assert decode_event("GUILD_DELETE", raw) == GuildDelete(id=5)
    assert decode_event("GUILD_DELETE", b'{"id": "5"}') == GuildDelete(id=5)
    assert decode_event("GUILD_DELETE", '{"id": "5"}') == GuildDelete(id=5)


def test_events_are_frozen() -> None:
    event = decode_event("GUILD_DELETE", b'{"id": "5"}')
    assert isinstance(event, GuildDelete)
    with pytest.raises(AttributeError):
        event.id = 6  # type: ignore[misc]
