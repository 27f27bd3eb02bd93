"""What a persona is, its limits, and the errors about persona files.

::

    CompanionError                 (trio_companion.errors)
    └── PersonaError               (this module: the root of the persona service's errors)
        ├── PersonaFileError       (loader: a persona file cannot be used; names file and problem)
        └── UnknownPersona         (library: a persona id that is not loaded)
"""

from __future__ import annotations

from typing import Final

import msgspec

from trio_companion.errors import CompanionError

__all__ = [
    "MAX_EXAMPLES",
    "MAX_EXAMPLE_CHARS",
    "MAX_FILE_BYTES",
    "MAX_SYSTEM_PROMPT_CHARS",
    "Example",
    "Persona",
    "PersonaError",
    "PersonaFileError",
    "UnknownPersona",
]

# Limits, so that one persona file cannot fill the model's context window (LLMConfig.num_ctx is
# 8192 tokens by default, about 30 000 characters): the file, then each field that reaches the
# system message.
MAX_FILE_BYTES: Final = 64 * 1024
MAX_SYSTEM_PROMPT_CHARS: Final = 16_000
MAX_STYLE_CHARS: Final = 4_000
MAX_EXAMPLES: Final = 20
MAX_EXAMPLE_CHARS: Final = 1_000  # each side of one exchange
# The name is matched in chat messages and shown everywhere: short and on one line.
MAX_NAME_CHARS: Final = 64
MAX_DESCRIPTION_CHARS: Final = 200
MAX_INTERESTS: Final = 50
MAX_INTEREST_CHARS: Final = 64
MAX_GREETING_CHARS: Final = 1_000
MAX_VOICE_CHARS: Final = 200


class PersonaError(CompanionError):
    """Root of the persona service's errors."""


class PersonaFileError(PersonaError):
    """A persona file cannot be used. Raised by the loader; the library logs it and keeps the
    last good version of that persona. ``str()`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class UnknownPersona(PersonaError):
    """Raised by `PersonaLibrary.set_for_guild` for an id that is not loaded; ``suggestions``
    are the closest loaded ids."""

    def __init__(self, persona_id: str, suggestions: tuple[str, ...] = ()) -> None:
        self.persona_id = persona_id
        self.suggestions = suggestions
        hint = f" Did you mean {_or_list(suggestions)}?" if suggestions else ""
        super().__init__(f"There is no persona called `{persona_id}`.{hint}")


def _or_list(items: tuple[str, ...]) -> str:
    quoted = [f"`{item}`" for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class Example(msgspec.Struct, frozen=True, kw_only=True):
    """One example exchange: what a user says and how the persona answers."""

    user: str
    assistant: str


class Persona(msgspec.Struct, frozen=True, kw_only=True):
    """A character the companion plays. Built by the loader, which enforces the limits above."""

    id: str
    """The file's stem, lower-cased; what ``/persona set`` and the settings store use."""
    name: str
    """Display name, also the word that makes the bot answer in chat."""
    description: str = ""
    """One line for ``/persona list``."""
    system_prompt: str
    style: str = ""
    """How the persona talks (tone, length, quirks)."""
    examples: tuple[Example, ...] = ()
    interests: tuple[str, ...] = ()
    """Words and topics the persona cares about (for proactive jump-ins)."""
    tts_voice: str | None = None
    """A voice of the configured TTS engine; None: the engine's configured voice."""
    rvc_model: str | None = None
    """An RVC model name; None: the configured model."""
    greeting: str | None = None
    source: str = ""
    """Where it was loaded from, e.g. ``personas/aria.toml`` (for messages only)."""

    def system_message(self) -> str:
        """The system message for the chat model: the prompt, then the style, then the examples,
        each under its own heading so the model can tell them apart."""
        parts = [self.system_prompt.strip()]
        if self.style.strip():
            parts.append(f"## How {self.name} talks\n{self.style.strip()}")
        if self.examples:
            exchanges = "\n\n".join(
                f"User: {example.user}\n{self.name}: {example.assistant}"
                for example in self.examples
            )
            parts.append(
                f"## Example exchanges (they show {self.name}'s voice; they are not part of "
                f"this conversation)\n{exchanges}"
            )
        return "\n\n".join(parts)
