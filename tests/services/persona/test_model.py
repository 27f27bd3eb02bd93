"""What the chat model gets from a persona, and the persona errors' messages."""

from __future__ import annotations

import msgspec
import pytest

from trio_companion.errors import CompanionError
from trio_companion.services.persona import (
    Example,
    Persona,
    PersonaError,
    PersonaFileError,
    UnknownPersona,
)

ARIA = Persona(
    id="aria",
    name="Aria",
    system_prompt="You are Aria.",
    style="Short and upbeat.",
    examples=(
        Example(user="tips for the boss?", assistant="dodge left!"),
        Example(user="hi", assistant="hey hey\nwhat's up"),
    ),
)


def test_system_message_has_prompt_style_and_examples_delimited() -> None:
    assert ARIA.system_message() == (
        "You are Aria.\n"
        "\n"
        "## How Aria talks\n"
        "Short and upbeat.\n"
        "\n"
        "## Example exchanges (they show Aria's voice; they are not part of this conversation)\n"
        "User: tips for the boss?\n"
        "Aria: dodge left!\n"
        "\n"
        "User: hi\n"
        "Aria: hey hey\nwhat's up"
    )


def test_system_message_of_a_bare_persona_is_the_prompt() -> None:
    bare = msgspec.structs.replace(ARIA, style="", examples=())
    assert bare.system_message() == "You are Aria."


def test_system_message_without_style_keeps_examples() -> None:
    message = msgspec.structs.replace(ARIA, style=" ").system_message()
    assert "How Aria talks" not in message
    assert message.startswith("You are Aria.\n\n## Example exchanges")


def test_persona_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ARIA.name = "Bob"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("suggestions", "message"),
    [
        ((), "There is no persona called `zed`."),
        (("zara",), "There is no persona called `zed`. Did you mean `zara`?"),
        (
            ("zara", "zoe", "ed"),
            "There is no persona called `zed`. Did you mean `zara`, `zoe` or `ed`?",
        ),
    ],
)
def test_unknown_persona_message(suggestions: tuple[str, ...], message: str) -> None:
    error = UnknownPersona("zed", suggestions)
    assert str(error) == message
    assert error.suggestions == suggestions
    assert isinstance(error, PersonaError)
    assert isinstance(error, CompanionError)


def test_file_error_names_the_file() -> None:
    error = PersonaFileError("personas/aria.toml", "system_prompt is missing")
    assert str(error) == "personas/aria.toml: system_prompt is missing"
    assert isinstance(error, PersonaError)
