"""Slash commands declared as typed async functions, and the JSON Discord wants for them.

Theory of operation
-------------------
A command is an ``async def`` whose first parameter receives the interaction context and whose
other parameters are its options, typed with plain Python types (``str``, ``int``, ``float``,
``bool``, `UserOption`, `ChannelOption`, `AttachmentOption`, a ``Literal`` of choices) and
optionally ``Annotated[..., Param(...)]`` for a description, lengths, ranges and autocomplete.
A parameter with a default is optional. ``CommandRegistry.command`` reads the signature once, at
import time, so a malformed declaration fails at start, not when a user runs it.

The registry renders the JSON body of ``PUT /applications/{id}/commands`` (`to_payload`) and a
stable hash of it (`payload_hash`) so the bot re-syncs only when a definition changed: Discord
allows 200 command creates per day per guild.

Received options are parsed back (`CommandSpec.parse_options`) and validated again on our side —
lengths and ranges are enforced by Discord's clients, but an interaction is only data, and a
limit named in an error is better than a handler surprised.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Any, Final, Literal, final, get_args, get_origin

import msgspec

from trio_companion.gateway.errors import GatewayError

__all__ = [
    "AttachmentOption",
    "ChannelOption",
    "CommandGroup",
    "CommandRegistry",
    "CommandSpec",
    "InvalidOption",
    "OptionSpec",
    "OptionType",
    "Param",
    "UserOption",
]

# Discord's limits on command definitions (docs: interactions/application-commands.mdx).
NAME_PATTERN: Final = re.compile(r"^[-_'\w]{1,32}$")
MAX_DESCRIPTION: Final = 100
MAX_OPTIONS: Final = 25
MAX_CHOICES: Final = 25
MAX_STRING_LENGTH: Final = 6000
# Permission bits (docs: topics/permissions.mdx): admin commands need Manage Server.
ADMINISTRATOR: Final = 1 << 3
MANAGE_GUILD: Final = 1 << 5
# Interaction contexts (docs: interactions/application-commands.mdx "Interaction Context Types").
CONTEXT_GUILD: Final = 0
CONTEXT_BOT_DM: Final = 1


class OptionType(IntEnum):
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class InvalidOption(GatewayError):
    """An option value broke its declared limits; ``str()`` is the message shown to the user."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


class UserOption(msgspec.Struct, frozen=True, kw_only=True):
    """A user option, resolved from the interaction's ``resolved`` data."""

    id: int
    username: str = ""
    global_name: str | None = None
    nick: str | None = None
    bot: bool = False

    @property
    def display_name(self) -> str:
        return self.nick or self.global_name or self.username or str(self.id)


class ChannelOption(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str = ""
    type: int = 0


class AttachmentOption(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    filename: str
    size: int
    url: str
    content_type: str | None = None


_RESOLVED_KIND: Final[dict[type[Any], tuple[OptionType, str]]] = {
    UserOption: (OptionType.USER, "users"),
    ChannelOption: (OptionType.CHANNEL, "channels"),
    AttachmentOption: (OptionType.ATTACHMENT, "attachments"),
}
_SCALAR_KIND: Final[dict[type[Any], OptionType]] = {
    str: OptionType.STRING,
    int: OptionType.INTEGER,
    float: OptionType.NUMBER,
    bool: OptionType.BOOLEAN,
}

Autocomplete = Callable[[Any, str], Awaitable[Sequence[str]]]


@dataclass(frozen=True, slots=True)
class Param:
    """Details of one option, given as ``Annotated[str, Param("what it is", max_length=100)]``."""

    description: str
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    autocomplete: Autocomplete | None = None


@dataclass(frozen=True, slots=True)
class OptionSpec:
    name: str
    type: OptionType
    description: str
    required: bool
    default: Any = None
    choices: tuple[str | int | float, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    autocomplete: Autocomplete | None = None

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": int(self.type),
            "name": self.name,
            "description": self.description,
            "required": self.required,
        }
        if self.choices:
            out["choices"] = [{"name": str(c), "value": c} for c in self.choices]
        for key in ("min_length", "max_length", "min_value", "max_value"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        if self.autocomplete is not None:
            out["autocomplete"] = True
        return out

    def convert(self, raw: Any, resolved: Mapping[str, Any]) -> Any:
        """Turn a received option value into the declared Python value, checking its limits."""
        if self.type in (OptionType.USER, OptionType.CHANNEL, OptionType.ATTACHMENT):
            return _resolve(self, raw, resolved)
        kind = {
            OptionType.STRING: str,
            OptionType.INTEGER: int,
            OptionType.NUMBER: float,
            OptionType.BOOLEAN: bool,
        }[self.type]
        try:
            value: Any = msgspec.convert(raw, kind)
        except msgspec.ValidationError:
            raise InvalidOption(self.name, f"`{self.name}` has the wrong type.") from None
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise InvalidOption(self.name, f"`{self.name}` must be one of: {allowed}.")
        if isinstance(value, str):
            if self.max_length is not None and len(value) > self.max_length:
                raise InvalidOption(
                    self.name,
                    f"`{self.name}` is too long: {len(value)} characters, "
                    f"the limit is {self.max_length}.",
                )
            if self.min_length is not None and len(value) < self.min_length:
                raise InvalidOption(
                    self.name, f"`{self.name}` needs at least {self.min_length} characters."
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            low, high = self.min_value, self.max_value
            if (low is not None and value < low) or (high is not None and value > high):
                raise InvalidOption(
                    self.name, f"`{self.name}` must be between {_num(low)} and {_num(high)}."
                )
        return value


def _num(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else str(value)


def _resolve(spec: OptionSpec, raw: Any, resolved: Mapping[str, Any]) -> Any:
    cls = next(c for c, (t, _) in _RESOLVED_KIND.items() if t == spec.type)
    table = resolved.get(_RESOLVED_KIND[cls][1], {})
    data = table.get(str(raw))
    if data is None:
        raise InvalidOption(spec.name, f"`{spec.name}` could not be resolved.")
    if cls is UserOption:
        member = resolved.get("members", {}).get(str(raw), {})
        data = {**data, "nick": member.get("nick")}
    return msgspec.convert(data, cls, strict=False)


Handler = Callable[..., Awaitable[None]]


@final
@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command (or one subcommand of a group), read off a handler's signature."""

    name: str
    description: str
    handler: Handler
    options: tuple[OptionSpec, ...]
    cooldown: float | None = None
    admin: bool = False
    guild_only: bool = False
    ephemeral: bool = False
    """Answers are private to the caller (also the automatic "thinking…" defer)."""

    @property
    def option_by_name(self) -> dict[str, OptionSpec]:
        return {o.name: o for o in self.options}

    def parse_options(
        self, received: Sequence[Mapping[str, Any]], resolved: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments for the handler from the interaction's ``options`` list."""
        by_name = self.option_by_name
        values: dict[str, Any] = {}
        for item in received:
            spec = by_name.get(str(item.get("name")))
            if spec is not None:
                values[spec.name] = spec.convert(item.get("value"), resolved)
        for spec in self.options:
            if spec.name not in values:
                if spec.required:
                    raise InvalidOption(spec.name, f"`{spec.name}` is required.")
                values[spec.name] = spec.default
        return values

    def to_payload(self) -> dict[str, Any]:
        return {
            "type": 1,
            "name": self.name,
            "description": self.description,
            "options": [o.to_payload() for o in self.options],
            **_access_payload(admin=self.admin, guild_only=self.guild_only),
        }

    def subcommand_payload(self) -> dict[str, Any]:
        return {
            "type": int(OptionType.SUB_COMMAND),
            "name": self.name,
            "description": self.description,
            "options": [o.to_payload() for o in self.options],
        }


def _access_payload(*, admin: bool, guild_only: bool) -> dict[str, Any]:
    return {
        "default_member_permissions": str(MANAGE_GUILD) if admin else None,
        "contexts": [CONTEXT_GUILD] if guild_only else [CONTEXT_GUILD, CONTEXT_BOT_DM],
        "integration_types": [0],
    }


@final
@dataclass(slots=True)
class CommandGroup:
    """A command with subcommands, e.g. ``/persona set|list|show``."""

    name: str
    description: str
    admin: bool = False
    guild_only: bool = False
    subcommands: dict[str, CommandSpec] = field(default_factory=dict)

    def command(
        self,
        name: str | None = None,
        *,
        description: str,
        cooldown: float | None = None,
        ephemeral: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler`` as ``/group name``."""
        return _registrar(
            self.subcommands,
            name,
            description=description,
            cooldown=cooldown,
            admin=self.admin,
            guild_only=self.guild_only,
            ephemeral=ephemeral,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "type": 1,
            "name": self.name,
            "description": self.description,
            "options": [s.subcommand_payload() for s in self.subcommands.values()],
            **_access_payload(admin=self.admin, guild_only=self.guild_only),
        }


@final
class CommandRegistry:
    """Every slash command of the bot; renders the sync payload and finds handlers."""

    def __init__(self) -> None:
        self._entries: dict[str, CommandSpec | CommandGroup] = {}

    def command(
        self,
        name: str | None = None,
        *,
        description: str,
        cooldown: float | None = None,
        admin: bool = False,
        guild_only: bool = False,
        ephemeral: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler`` as ``/name`` (default: the function's name)."""
        return _registrar(
            self._entries,
            name,
            description=description,
            cooldown=cooldown,
            admin=admin,
            guild_only=guild_only,
            ephemeral=ephemeral,
        )

    def group(
        self, name: str, *, description: str, admin: bool = False, guild_only: bool = False
    ) -> CommandGroup:
        _check_name(name)
        _check_description(name, description)
        _check_unique(self._entries, name)
        group = CommandGroup(name, description, admin=admin, guild_only=guild_only)
        self._entries[name] = group
        return group

    def find(self, name: str, subcommand: str | None = None) -> CommandSpec | None:
        entry = self._entries.get(name)
        if isinstance(entry, CommandGroup):
            return entry.subcommands.get(subcommand or "")
        return entry

    def to_payload(self) -> list[dict[str, Any]]:
        return [entry.to_payload() for entry in self._entries.values()]

    def payload_hash(self) -> str:
        """A stable digest of `to_payload`: equal iff Discord would store the same commands."""
        canonical = msgspec.json.encode(self.to_payload(), order="sorted")
        return hashlib.sha256(canonical).hexdigest()


def _registrar(
    entries: dict[str, Any],
    name: str | None,
    *,
    description: str,
    cooldown: float | None,
    admin: bool,
    guild_only: bool,
    ephemeral: bool,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        spec = read_spec(
            handler,
            name,
            description=description,
            cooldown=cooldown,
            admin=admin,
            guild_only=guild_only,
            ephemeral=ephemeral,
        )
        _check_unique(entries, spec.name)
        entries[spec.name] = spec
        return handler

    return register


def read_spec(
    handler: Handler,
    name: str | None,
    *,
    description: str,
    cooldown: float | None,
    admin: bool,
    guild_only: bool,
    ephemeral: bool = False,
) -> CommandSpec:
    """Read a command's options off ``handler``'s signature; raise ValueError if malformed."""
    command_name = name or handler.__name__.strip("_")
    _check_name(command_name)
    _check_description(command_name, description)
    params = list(inspect.signature(handler).parameters.values())[1:]  # the first is the context
    options = tuple(_option(p, _hint(handler, p.name), command_name) for p in params)
    if len(options) > MAX_OPTIONS:
        raise ValueError(f"/{command_name}: more than {MAX_OPTIONS} options")
    required_after_optional = any(
        a.required and not all(b.required for b in options[:i]) for i, a in enumerate(options)
    )
    if required_after_optional:
        raise ValueError(f"/{command_name}: required options must come before optional ones")
    return CommandSpec(
        command_name, description, handler, options, cooldown, admin, guild_only, ephemeral
    )


def _hint(handler: Handler, name: str) -> Any:
    """The evaluated annotation of one parameter (only the options', not the context's, which
    modules often import for type checking only)."""
    hint = inspect.get_annotations(handler).get(name, str)
    if isinstance(hint, str):
        return eval(hint, getattr(handler, "__globals__", {}))  # our own annotation, not input
    return hint


def _option(param: inspect.Parameter, hint: Any, command: str) -> OptionSpec:
    _check_name(param.name)
    meta = Param(description=param.name.replace("_", " "))
    if get_origin(hint) is Annotated:
        hint, *extras = get_args(hint)
        meta = next((e for e in extras if isinstance(e, Param)), meta)
    _check_description(f"/{command} {param.name}", meta.description)
    required = param.default is inspect.Parameter.empty
    default = None if required else param.default
    args = get_args(hint)
    if get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        hint = next(a for a in args if a is not type(None))
        required = False
    choices: tuple[Any, ...] = ()
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if len(choices) > MAX_CHOICES:
            raise ValueError(f"/{command} {param.name}: more than {MAX_CHOICES} choices")
        hint = type(choices[0])
    if hint in _RESOLVED_KIND:
        kind = _RESOLVED_KIND[hint][0]
    elif hint in _SCALAR_KIND:
        kind = _SCALAR_KIND[hint]
    else:
        raise ValueError(f"/{command} {param.name}: unsupported option type {hint!r}")
    if meta.max_length is not None and not 1 <= meta.max_length <= MAX_STRING_LENGTH:
        raise ValueError(f"/{command} {param.name}: max_length must be 1..{MAX_STRING_LENGTH}")
    return OptionSpec(
        name=param.name,
        type=kind,
        description=meta.description,
        required=required,
        default=default,
        choices=choices,
        min_length=meta.min_length,
        max_length=meta.max_length,
        min_value=meta.min_value,
        max_value=meta.max_value,
        autocomplete=meta.autocomplete,
    )


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name) or name != name.lower():
        raise ValueError(f"{name!r} is not a valid command or option name (1-32 lowercase chars)")


def _check_description(what: str, description: str) -> None:
    if not 1 <= len(description) <= MAX_DESCRIPTION:
        raise ValueError(f"{what}: the description must be 1-{MAX_DESCRIPTION} characters")


def _check_unique(entries: Mapping[str, object], name: str) -> None:
    if name in entries:
        raise ValueError(f"/{name} is registered twice")
