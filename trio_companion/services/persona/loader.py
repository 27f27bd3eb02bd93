"""Reading persona files: ``NAME.toml`` and ``NAME.md``, validated into a `Persona`.

Every function here blocks (file I/O); the library calls them in a worker thread. The parsers
(`parse_toml`, `parse_markdown`) are pure and take the text.

Formats
-------
``aria.toml``: the fields as keys; examples as an array of tables::

    name = "Aria"
    description = "A cheerful gamer friend"
    system_prompt = "You are Aria, ..."
    style = "Short, warm, lots of energy."
    interests = ["games", "speedruns"]
    [[examples]]
    user = "any tips for the last boss?"
    assistant = "dodge left, always left!"

``sage.md``: TOML front matter between ``+++`` lines, then the system prompt as Markdown. A
``## Style`` section and a ``## Examples`` section (``User: …`` / ``Assistant: …`` lines; the
persona's name works in place of ``Assistant``) are taken out of the body; other headings stay
in the prompt.

A file's id is its stem, lower-cased. Files whose names start with ``.`` or ``_``, and
``README.md``, are not personas.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec

from trio_companion.services.persona.model import (
    MAX_DESCRIPTION_CHARS,
    MAX_EXAMPLE_CHARS,
    MAX_EXAMPLES,
    MAX_FILE_BYTES,
    MAX_GREETING_CHARS,
    MAX_INTEREST_CHARS,
    MAX_INTERESTS,
    MAX_NAME_CHARS,
    MAX_STYLE_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    MAX_VOICE_CHARS,
    Example,
    Persona,
    PersonaFileError,
)

__all__ = [
    "SUFFIXES",
    "FileStamp",
    "is_persona_file_name",
    "load_persona",
    "load_shipped_default",
    "parse_markdown",
    "parse_toml",
    "persona_id_for",
    "scan_folder",
]

SUFFIXES: Final = (".toml", ".md")
SHIPPED_DEFAULT_ID: Final = "default"
# Ids are option values, autocomplete choices and parts of settings keys: keep them plain.
_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_KEYS: Final = (
    "name",
    "description",
    "system_prompt",
    "style",
    "examples",
    "interests",
    "tts_voice",
    "rvc_model",
    "greeting",
)
_FENCE: Final = "+++"
# tomllib ends its messages with the position: "... (at line 3, column 5)".
_TOML_POSITION: Final = re.compile(r"^(?P<reason>.*) \(at line (?P<line>\d+), column \d+\)$")
_HEADING: Final = re.compile(r"^(#{1,2})\s+(?P<title>.*?)\s*#*\s*$")
_SECTIONS: Final = ("style", "examples")


class FileStamp(NamedTuple):
    """What `scan_folder` compares to decide that a file changed."""

    mtime_ns: int
    size: int
    inode: int


def persona_id_for(path: Path) -> str:
    return path.stem.lower()


def is_persona_file_name(name: str) -> bool:
    return (
        name.lower().endswith(SUFFIXES)
        and not name.startswith((".", "_"))
        and name.lower() != "readme.md"
    )


def scan_folder(directory: Path) -> dict[Path, FileStamp]:
    """The persona files directly in ``directory`` and their stamps; ``{}`` if it does not exist.

    Raises OSError if the folder exists but cannot be listed (the caller keeps what it has).
    """
    found: dict[Path, FileStamp] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not is_persona_file_name(entry.name):
            continue
        try:
            info = entry.stat()
        except FileNotFoundError:
            continue  # removed while we looked
        if stat.S_ISREG(info.st_mode):
            found[directory / entry.name] = FileStamp(info.st_mtime_ns, info.st_size, info.st_ino)
    return found


def load_persona(path: Path) -> Persona:
    """Read and validate one persona file. Raises `PersonaFileError`."""
    source = str(path)
    persona_id = persona_id_for(path)
    if not _ID_PATTERN.match(persona_id):
        raise PersonaFileError(
            source,
            "the file name is the persona's id and must be 1-32 letters, digits, '-' or '_' "
            "(starting with a letter or digit)",
        )
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PersonaFileError(source, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise PersonaFileError(
            source, f"is larger than {MAX_FILE_BYTES // 1024} KiB, the limit for a persona file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PersonaFileError(source, f"is not UTF-8 text (bad byte at {exc.start})") from None
    if path.suffix.lower() == ".md":
        return parse_markdown(text, persona_id=persona_id, source=source)
    return parse_toml(text, persona_id=persona_id, source=source)


def load_shipped_default() -> Persona:
    """The default persona shipped inside the package (``default.toml``)."""
    resource = importlib.resources.files("trio_companion.services.persona") / "default.toml"
    text = resource.read_text(encoding="utf-8")
    return parse_toml(text, persona_id=SHIPPED_DEFAULT_ID, source="(built-in default.toml)")


def parse_toml(text: str, *, persona_id: str, source: str) -> Persona:
    """A persona from the text of a ``.toml`` file. Raises `PersonaFileError`."""
    data = _decode_toml(text, source=source, what="not valid TOML", first_line=1)
    return _build(data, persona_id=persona_id, source=source)


def parse_markdown(text: str, *, persona_id: str, source: str) -> Persona:
    """A persona from the text of a ``.md`` file. Raises `PersonaFileError`."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or lines[start].strip() != _FENCE:
        raise PersonaFileError(
            source, f"must start with TOML front matter between '{_FENCE}' lines"
        )
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == _FENCE), None)
    if end is None:
        raise PersonaFileError(
            source, f"the front matter opened at line {start + 1} is not closed by '{_FENCE}'"
        )
    data = _decode_toml(
        "\n".join(lines[start + 1 : end]),
        source=source,
        what="front matter is not valid TOML",
        first_line=start + 2,
    )
    if "system_prompt" in data:
        raise PersonaFileError(
            source, "system_prompt belongs in the Markdown body, not in the front matter"
        )
    prompt, sections = _split_sections(lines, end + 1, source=source)
    for key, (_, body) in sections.items():
        if key in data:
            raise PersonaFileError(
                source,
                f"{key} is given twice: in the front matter and as a '## {key.title()}' section",
            )
        if key == "style":
            data["style"] = "\n".join(body)
    data["system_prompt"] = prompt
    if not prompt:
        raise PersonaFileError(source, "system_prompt is missing: the Markdown body is empty")
    persona = _build(data, persona_id=persona_id, source=source)
    if "examples" in sections:
        first, body = sections["examples"]
        examples = _parse_examples(body, first, name=persona.name, source=source)
        _check_examples(examples, source=source)
        persona = msgspec.structs.replace(persona, examples=examples)
    return persona


def _decode_toml(text: str, *, source: str, what: str, first_line: int) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_POSITION.match(message)
        if found is None:
            raise PersonaFileError(source, f"{what}: {message}") from None
        line = int(found["line"]) + first_line - 1
        raise PersonaFileError(source, f"{what} at line {line}: {found['reason']}") from None


def _split_sections(
    lines: list[str], first: int, *, source: str
) -> tuple[str, dict[str, tuple[int, list[str]]]]:
    """The body without its ``## Style``/``## Examples`` sections, and those sections as (line
    number of their first line, lines). Headings inside code fences do not count."""
    prompt: list[str] = []
    sections: dict[str, tuple[int, list[str]]] = {}
    current: list[str] = prompt
    in_code = False
    for index in range(first, len(lines)):
        line = lines[index]
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(line)
        if heading is not None:
            title = heading["title"].casefold()
            if len(heading.group(1)) == 2 and title in _SECTIONS:
                if title in sections:
                    raise PersonaFileError(
                        source, f"line {index + 1}: a second '## {title.title()}' section"
                    )
                current = []
                sections[title] = (index + 2, current)
                continue
            current = prompt
        current.append(line)
    return "\n".join(prompt).strip(), sections


def _parse_examples(
    body: list[str], first_line: int, *, name: str, source: str
) -> tuple[Example, ...]:
    speaker = re.compile(
        rf"^\s*(?P<who>user|assistant|{re.escape(name)})\s*:\s?(?P<text>.*)$", re.IGNORECASE
    )
    pairs: list[Example] = []
    user: list[str] | None = None
    reply: list[str] | None = None
    user_line = 0

    def where(offset: int) -> str:
        return f"line {first_line + offset} (## Examples)"

    for offset, line in enumerate(body):
        found = speaker.match(line)
        if found is not None and found["who"].casefold() == "user":
            if user is not None and reply is None:
                raise PersonaFileError(
                    source, f"{where(offset)}: a 'User:' line needs an 'Assistant:' reply first"
                )
            if user is not None and reply is not None:
                pairs.append(_example(user, reply, where(user_line), source))
            user, reply, user_line = [found["text"]], None, offset
        elif found is not None:
            if user is None:
                raise PersonaFileError(
                    source, f"{where(offset)}: an 'Assistant:' line before any 'User:' line"
                )
            if reply is not None:
                raise PersonaFileError(
                    source, f"{where(offset)}: two 'Assistant:' lines for one 'User:' line"
                )
            reply = [found["text"]]
        elif reply is not None:
            reply.append(line)
        elif user is not None:
            user.append(line)
        elif line.strip():
            raise PersonaFileError(
                source, f"{where(offset)}: expected a 'User:' or 'Assistant:' line"
            )
    if user is not None:
        if reply is None:
            raise PersonaFileError(
                source, f"{where(user_line)}: this 'User:' line has no 'Assistant:' reply"
            )
        pairs.append(_example(user, reply, where(user_line), source))
    return tuple(pairs)


def _example(user: list[str], reply: list[str], where: str, source: str) -> Example:
    said, answered = "\n".join(user).strip(), "\n".join(reply).strip()
    if not said or not answered:
        raise PersonaFileError(source, f"{where}: an example with an empty side")
    return Example(user=said, assistant=answered)


def _build(data: Mapping[str, Any], *, persona_id: str, source: str) -> Persona:
    _check_keys(data, source=source)
    name = _text(data, "name", source, MAX_NAME_CHARS, required=True, one_line=True)
    prompt = _text(data, "system_prompt", source, MAX_SYSTEM_PROMPT_CHARS, required=True)
    assert name is not None
    assert prompt is not None
    description = _text(data, "description", source, MAX_DESCRIPTION_CHARS, one_line=True)
    examples = _toml_examples(data.get("examples"), source=source)
    _check_examples(examples, source=source)
    return Persona(
        id=persona_id,
        name=name,
        description=description or "",
        system_prompt=prompt,
        style=_text(data, "style", source, MAX_STYLE_CHARS) or "",
        examples=examples,
        interests=_interests(data.get("interests"), source=source),
        tts_voice=_text(data, "tts_voice", source, MAX_VOICE_CHARS, one_line=True) or None,
        rvc_model=_text(data, "rvc_model", source, MAX_VOICE_CHARS, one_line=True) or None,
        greeting=_text(data, "greeting", source, MAX_GREETING_CHARS) or None,
        source=source,
    )


def _check_keys(data: Mapping[str, Any], *, source: str) -> None:
    unknown = sorted(key for key in data if key not in _KEYS)
    if not unknown:
        return
    described = []
    for key in unknown:
        close = difflib.get_close_matches(key, _KEYS, n=1, cutoff=0.6)
        described.append(f"'{key}' (did you mean '{close[0]}'?)" if close else f"'{key}'")
    noun = "key" if len(unknown) == 1 else "keys"
    raise PersonaFileError(
        source,
        f"unknown {noun} {', '.join(described)}; the keys are: {', '.join(_KEYS)}",
    )


def _text(
    data: Mapping[str, Any],
    key: str,
    source: str,
    limit: int,
    *,
    required: bool = False,
    one_line: bool = False,
) -> str | None:
    if key not in data:
        if required:
            raise PersonaFileError(source, f"{key} is missing")
        return None
    value = data[key]
    if not isinstance(value, str):
        raise PersonaFileError(source, f"{key} must be a string, not {_kind(value)}")
    value = value.strip()
    if required and not value:
        raise PersonaFileError(source, f"{key} is empty")
    if one_line and "\n" in value:
        raise PersonaFileError(source, f"{key} must be a single line")
    if len(value) > limit:
        raise PersonaFileError(
            source, f"{key} is {len(value)} characters long; the limit is {limit}"
        )
    return value


def _toml_examples(raw: Any, *, source: str) -> tuple[Example, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PersonaFileError(
            source, f"examples must be an array of tables ([[examples]]), not {_kind(raw)}"
        )
    examples = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or set(item) != {"user", "assistant"}:
            raise PersonaFileError(
                source, f"examples #{number} must have exactly the keys 'user' and 'assistant'"
            )
        sides = [item["user"], item["assistant"]]
        if not all(isinstance(side, str) and side.strip() for side in sides):
            raise PersonaFileError(
                source, f"examples #{number}: 'user' and 'assistant' must be non-empty strings"
            )
        examples.append(Example(user=sides[0].strip(), assistant=sides[1].strip()))
    return tuple(examples)


def _check_examples(examples: tuple[Example, ...], *, source: str) -> None:
    if len(examples) > MAX_EXAMPLES:
        raise PersonaFileError(
            source, f"there are {len(examples)} examples; the limit is {MAX_EXAMPLES}"
        )
    for number, example in enumerate(examples, start=1):
        if max(len(example.user), len(example.assistant)) > MAX_EXAMPLE_CHARS:
            raise PersonaFileError(
                source,
                f"examples #{number} is too long: each side may have at most "
                f"{MAX_EXAMPLE_CHARS} characters",
            )


def _interests(raw: Any, *, source: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise PersonaFileError(source, "interests must be an array of strings")
    interests = tuple(item.strip() for item in raw if item.strip())
    if len(interests) > MAX_INTERESTS:
        raise PersonaFileError(
            source, f"there are {len(interests)} interests; the limit is {MAX_INTERESTS}"
        )
    for item in interests:
        if len(item) > MAX_INTEREST_CHARS or "\n" in item:
            raise PersonaFileError(
                source,
                f"each interest must be one line of at most {MAX_INTEREST_CHARS} characters: "
                f"{item[:MAX_INTEREST_CHARS]!r}",
            )
    return interests


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__
