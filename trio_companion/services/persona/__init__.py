"""Personas: the characters the companion plays, loaded from files and chosen per guild.

`PersonaLibrary` loads ``NAME.toml`` and ``NAME.md`` files from ``chat.personas_dir`` (see
`trio_companion.services.persona.loader` for both formats) beside the shipped ``default.toml``,
follows edits to the folder while the bot runs, and remembers each guild's choice. The chat
service asks ``await library.for_guild(guild_id)`` and sends ``persona.system_message()``.

Errors: `PersonaError` (a `trio_companion.errors.CompanionError`) with `PersonaFileError` for a
file that cannot be used and `UnknownPersona` for an id that is not loaded.
"""

from trio_companion.services.persona.library import (
    RELOAD_EVERY,
    BadFile,
    PersonaLibrary,
    PersonaLibraryStatistics,
    Settings,
)
from trio_companion.services.persona.loader import (
    load_persona,
    load_shipped_default,
    parse_markdown,
    parse_toml,
)
from trio_companion.services.persona.model import (
    Example,
    Persona,
    PersonaError,
    PersonaFileError,
    UnknownPersona,
)

__all__ = [
    "RELOAD_EVERY",
    "BadFile",
    "Example",
    "Persona",
    "PersonaError",
    "PersonaFileError",
    "PersonaLibrary",
    "PersonaLibraryStatistics",
    "Settings",
    "UnknownPersona",
    "load_persona",
    "load_shipped_default",
    "parse_markdown",
    "parse_toml",
]
