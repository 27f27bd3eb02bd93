"""Command declarations: signature reading, the sync payload and its hash, option parsing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest

from trio_companion.gateway.commands import (
    MANAGE_GUILD,
    AttachmentOption,
    ChannelOption,
    CommandRegistry,
    InvalidOption,
    OptionType,
    Param,
    UserOption,
)


async def complete_voices(ctx: Any, prefix: str) -> list[str]:
    return [v for v in ("alto", "bass") if v.startswith(prefix)]


def build() -> CommandRegistry:
    registry = CommandRegistry()

    @registry.command(description="Talk to the companion", cooldown=3.0)
    async def chat(
        ctx: Any, message: Annotated[str, Param("What to say", max_length=4000)]
    ) -> None: ...

    @registry.command("speak_as", description="Speak with a voice")
    async def _speak_as(
        ctx: Any,
        voice: Annotated[str, Param("Voice model", autocomplete=complete_voices)],
        text: Annotated[str, Param("What to say", min_length=1, max_length=1000)],
        speed: Annotated[float, Param("Speed", min_value=0.5, max_value=2.0)] = 1.0,
        loud: bool = False,
    ) -> None: ...

    @registry.command(description="Settings", admin=True, guild_only=True)
    async def configure(
        ctx: Any,
        mode: Literal["on", "off"],
        count: Annotated[int, Param("How many", min_value=1, max_value=10)],
        who: UserOption | None = None,
        where: ChannelOption | None = None,
        file: AttachmentOption | None = None,
    ) -> None: ...

    persona = registry.group("persona", description="Personas", admin=True)

    @persona.command("set", description="Choose the persona")
    async def persona_set(ctx: Any, name: Annotated[str, Param("Persona name")]) -> None: ...

    @persona.command("list", description="List personas")
    async def persona_list(ctx: Any) -> None: ...

    return registry


def test_payload_matches_discords_shape() -> None:
    payload = {c["name"]: c for c in build().to_payload()}
    assert payload["chat"] == {
        "type": 1,
        "name": "chat",
        "description": "Talk to the companion",
        "options": [
            {
                "type": 3,
                "name": "message",
                "description": "What to say",
                "required": True,
                "max_length": 4000,
            }
        ],
        "default_member_permissions": None,
        "contexts": [0, 1],
        "integration_types": [0],
    }
    speak = payload["speak_as"]["options"]
    assert speak[0]["autocomplete"] is True
    assert speak[2] == {
        "type": 10,
        "name": "speed",
        "description": "Speed",
        "required": False,
        "min_value": 0.5,
        "max_value": 2.0,
    }
    assert speak[3]["type"] == OptionType.BOOLEAN
    configure = payload["configure"]
    assert configure["default_member_permissions"] == str(MANAGE_GUILD)
    assert configure["contexts"] == [0]
    assert configure["options"][0]["choices"] == [
        {"name": "on", "value": "on"},
        {"name": "off", "value": "off"},
    ]
    assert [o["type"] for o in configure["options"][2:]] == [6, 7, 11]
    assert all(not o["required"] for o in configure["options"][2:])
    persona = payload["persona"]
    assert [o["name"] for o in persona["options"]] == ["set", "list"]
    assert persona["options"][0]["type"] == OptionType.SUB_COMMAND
    assert persona["options"][0]["options"][0]["name"] == "name"


def test_hash_is_stable_and_changes_with_definitions() -> None:
    assert build().payload_hash() == build().payload_hash()
    changed = build()

    @changed.command(description="One more")
    async def extra(ctx: Any) -> None: ...

    assert changed.payload_hash() != build().payload_hash()


def test_parse_options_converts_and_fills_defaults() -> None:
    spec = build().find("speak_as")
    assert spec is not None
    received: list[dict[str, Any]] = [
        {"name": "voice", "type": 3, "value": "alto"},
        {"name": "text", "value": "hi"},
    ]
    values = spec.parse_options(received, {})
    assert values == {"voice": "alto", "text": "hi", "speed": 1.0, "loud": False}


def test_resolved_users_channels_and_attachments() -> None:
    spec = build().find("configure")
    assert spec is not None
    resolved = {
        "users": {"42": {"id": "42", "username": "ann", "global_name": "Ann"}},
        "members": {"42": {"nick": "Annie"}},
        "channels": {"7": {"id": "7", "name": "general", "type": 0}},
        "attachments": {
            "9": {"id": "9", "filename": "a.json", "size": 10, "url": "https://cdn/a.json"}
        },
    }
    received: list[dict[str, Any]] = [
        {"name": "mode", "value": "on"},
        {"name": "count", "value": 3},
        {"name": "who", "value": "42"},
        {"name": "where", "value": "7"},
        {"name": "file", "value": "9"},
    ]
    values = spec.parse_options(received, resolved)
    assert values["who"] == UserOption(id=42, username="ann", global_name="Ann", nick="Annie")
    assert values["who"].display_name == "Annie"
    assert values["where"] == ChannelOption(id=7, name="general", type=0)
    assert values["file"].filename == "a.json"


@pytest.mark.parametrize(
    ("command", "received", "message"),
    [
        ("chat", [{"name": "message", "value": "x" * 4001}], "the limit is 4000"),
        ("chat", [], "`message` is required."),
        (
            "speak_as",
            [{"name": "voice", "value": "a"}, {"name": "text", "value": ""}],
            "at least 1",
        ),
        (
            "configure",
            [{"name": "mode", "value": "maybe"}, {"name": "count", "value": 1}],
            "one of",
        ),
        ("configure", [{"name": "mode", "value": "on"}, {"name": "count", "value": 11}], "between"),
        ("configure", [{"name": "mode", "value": "on"}, {"name": "count", "value": "x"}], "type"),
        (
            "configure",
            [{"name": "mode", "value": "on"}, {"name": "count", "value": 1}, {"name": "who"}],
            "could not be resolved",
        ),
    ],
)
def test_invalid_options_are_named(command: str, received: list[Any], message: str) -> None:
    spec = build().find(command)
    assert spec is not None
    with pytest.raises(InvalidOption, match=message):
        spec.parse_options(received, {})


def test_group_subcommands_are_found() -> None:
    registry = build()
    assert registry.find("persona", "set") is not None
    assert registry.find("persona", "nope") is None
    assert registry.find("nope") is None


def test_malformed_declarations_fail_at_registration() -> None:
    registry = CommandRegistry()

    async def one(ctx: Any) -> None: ...

    with pytest.raises(ValueError, match="not a valid command"):
        registry.command("Bad Name", description="x")(one)

    registry.command("one", description="x")(one)
    with pytest.raises(ValueError, match="registered twice"):
        registry.command("one", description="x")(one)
    with pytest.raises(ValueError, match="description must be"):
        registry.command("two", description="")(one)

    async def wrong_order(ctx: Any, a: int = 1, b: str = "x", *, c: int) -> None: ...

    with pytest.raises(ValueError, match="required options must come before"):
        registry.command(description="x")(wrong_order)

    async def unsupported(ctx: Any, a: list[int]) -> None: ...

    with pytest.raises(ValueError, match="unsupported option type"):
        registry.command(description="x")(unsupported)
