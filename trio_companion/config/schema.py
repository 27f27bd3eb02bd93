"""The schema read off the model: each setting's dotted key, environment name and expectation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from trio_companion.config.model import Config, Section

ENV_PREFIX: Final = "COMPANION_"


@dataclass(frozen=True, slots=True)
class SettingField:
    section: str | None
    name: str
    type: Any
    info: mi.Type
    secret: bool
    expected_override: str | None

    @property
    def key(self) -> str:
        return self.name if self.section is None else f"{self.section}.{self.name}"

    @property
    def env_name(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "_").upper()


def _fields_of(struct: type[msgspec.Struct], section: str | None) -> Iterator[SettingField]:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    hints = msgspec.structs.fields(struct)
    for f_info, f in zip(info.fields, hints, strict=True):
        if section is None and isinstance(f_info.type, mi.StructType):
            continue
        extra: dict[str, Any] = {}
        t = f_info.type
        if isinstance(t, mi.Metadata):
            extra = dict(t.extra or {})
        yield SettingField(
            section=section,
            name=f.name,
            type=f.type,
            info=t,
            secret=bool(extra.get("secret")),
            expected_override=extra.get("expected"),
        )


def _schema() -> dict[str, SettingField]:
    fields = {f.key: f for f in _fields_of(Config, None)}
    for f in msgspec.structs.fields(Config):
        if isinstance(f.type, type) and issubclass(f.type, Section):
            fields.update((x.key, x) for x in _fields_of(f.type, f.name))
    return fields


SCHEMA: Final = _schema()
SECTIONS: Final = tuple(
    f.name
    for f in msgspec.structs.fields(Config)
    if isinstance(f.type, type) and issubclass(f.type, Section)
)
BY_ENV: Final = {f.env_name: f for f in SCHEMA.values()}


def secret_keys() -> frozenset[str]:
    """The dotted keys whose values are secrets."""
    return frozenset(k for k, f in SCHEMA.items() if f.secret)


def describe_expected(info: mi.Type) -> str:
    """A short English description of what a field accepts, from its msgspec type."""
    if isinstance(info, mi.Metadata):
        override = (info.extra or {}).get("expected")
        return str(override) if override else describe_expected(info.type)
    if isinstance(info, mi.BoolType):
        return "true or false"
    if isinstance(info, mi.IntType | mi.FloatType):
        noun = "an integer" if isinstance(info, mi.IntType) else "a number"
        low = info.ge if info.ge is not None else info.gt
        high = info.le if info.le is not None else info.lt
        if info.ge is not None and info.le is not None:
            return f"{noun} from {low} to {high}"
        parts = []
        if low is not None:
            parts.append(f"{'>=' if info.ge is not None else '>'} {low}")
        if high is not None:
            parts.append(f"{'<=' if info.le is not None else '<'} {high}")
        return f"{noun} {' and '.join(parts)}".strip()
    if isinstance(info, mi.StrType):
        if info.max_length is not None:
            return f"text of at most {info.max_length} characters"
        if info.min_length:
            return "non-empty text"
        return "text"
    if isinstance(info, mi.LiteralType):
        shown = [repr(v) for v in info.values]
        return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)
    if isinstance(info, mi.ListType):
        return f"a list of {_plural(describe_expected(info.item_type))}"
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)]
        described = " or ".join(describe_expected(t) for t in options)
        return described + (" (or unset)" if len(options) < len(info.types) else "")
    return type(info).__name__  # pragma: no cover - every field type is handled above


def _plural(description: str) -> str:
    for article in ("an ", "a "):
        if description.startswith(article) and "(" not in description:
            return description.removeprefix(article) + "s"
    return f"values that are each {description}"


def show_value(value: object, *, secret: bool) -> str:
    if secret:
        return "a secret value" if value not in ("", None) else "nothing"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
