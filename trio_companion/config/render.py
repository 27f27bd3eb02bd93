"""``check-config``'s view: the effective configuration as TOML, secrets redacted."""

from __future__ import annotations

import msgspec

from trio_companion.config.load import LoadedConfig
from trio_companion.config.schema import SCHEMA


def render_effective(loaded: LoadedConfig) -> str:
    """The effective configuration as TOML, secrets redacted, each set value's source noted."""
    lines: list[str] = []
    if loaded.config_file is not None:
        lines.append(f"# configuration file: {loaded.config_file}")
    current: str | None = None
    raw = msgspec.to_builtins(loaded.config)
    for key, field in SCHEMA.items():
        if field.section != current:
            current = field.section
            lines.append(f"\n[{current}]")
        value = raw[field.name] if field.section is None else raw[field.section][field.name]
        source = loaded.sources.get(key)
        comment = f"  # {source}" if source else ""
        if value is None:
            lines.append(f"# {field.name} is unset{comment}")
        else:
            lines.append(f"{field.name} = {_toml_value(value, secret=field.secret)}{comment}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: object, *, secret: bool) -> str:
    if secret:
        return '"<redacted>"' if value else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, secret=False) for v in value) + "]"
    return str(value)
