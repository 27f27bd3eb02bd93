"""Persona files: both formats, the Markdown sections, and every validation problem."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from trio_companion.services.persona import (
    Example,
    PersonaFileError,
    load_persona,
    load_shipped_default,
    parse_markdown,
)
from trio_companion.services.persona.loader import FileStamp, scan_folder
from trio_companion.services.persona.model import MAX_FILE_BYTES, MAX_SYSTEM_PROMPT_CHARS

REPO = Path(__file__).parents[3]

ARIA_TOML = """\
name = "Aria"
description = "A cheerful gamer friend"
system_prompt = '''
You are Aria.
You love games.
'''
style = "Short and upbeat."
interests = ["games", " speedruns "]
tts_voice = "af_bella"
rvc_model = ""
greeting = "Hi!"

[[examples]]
user = "tips for the boss?"
assistant = "dodge left!"

[[examples]]
user = "hi"
assistant = "hey hey"
"""

SAGE_MD = """\
+++
name = "Sage"
description = "Calm and bookish"
interests = ["books"]
+++
You are Sage.

## Background
You grew up in a library.

## Style
Gentle, full sentences.

## Examples

User: can't sleep
Assistant: Try a slow book.
It helps.

user: why is the sky blue?
Sage: Scattering.

## Rules
Never lecture.
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_toml_persona(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, "Aria.toml", ARIA_TOML))
    assert persona.id == "aria"
    assert persona.name == "Aria"
    assert persona.description == "A cheerful gamer friend"
    assert persona.system_prompt == "You are Aria.\nYou love games."
    assert persona.style == "Short and upbeat."
    assert persona.examples == (
        Example(user="tips for the boss?", assistant="dodge left!"),
        Example(user="hi", assistant="hey hey"),
    )
    assert persona.interests == ("games", "speedruns")
    assert persona.tts_voice == "af_bella"
    assert persona.rvc_model is None  # empty means "the configured one"
    assert persona.greeting == "Hi!"
    assert persona.source == str(tmp_path / "Aria.toml")


def test_markdown_persona_and_its_sections(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path, "sage.md", SAGE_MD))
    assert persona.id == "sage"
    assert persona.name == "Sage"
    assert persona.interests == ("books",)
    # Style and Examples are taken out; other sections stay in the prompt, in order.
    assert persona.system_prompt == (
        "You are Sage.\n\n## Background\nYou grew up in a library.\n\n## Rules\nNever lecture."
    )
    assert persona.style == "Gentle, full sentences."
    assert persona.examples == (
        Example(user="can't sleep", assistant="Try a slow book.\nIt helps."),
        Example(user="why is the sky blue?", assistant="Scattering."),
    )


def test_markdown_minimal_and_front_matter_examples(tmp_path: Path) -> None:
    text = '+++\nname = "Min"\n[[examples]]\nuser = "a"\nassistant = "b"\n+++\n\nBe brief.\n'
    persona = load_persona(write(tmp_path, "min.md", text))
    assert persona.system_prompt == "Be brief."
    assert persona.style == ""
    assert persona.examples == (Example(user="a", assistant="b"),)
    assert persona.description == ""
    assert persona.tts_voice is None
    assert persona.greeting is None


def test_headings_inside_code_fences_stay_in_the_prompt() -> None:
    text = '+++\nname = "Dev"\n+++\nFormat like this:\n```\n## Style\nnot a section\n```\n'
    persona = parse_markdown(text, persona_id="dev", source="dev.md")
    assert "## Style\nnot a section" in persona.system_prompt
    assert persona.style == ""


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.toml", "\ufeff" + ARIA_TOML)
    assert load_persona(path).name == "Aria"


def test_shipped_default_is_valid() -> None:
    persona = load_shipped_default()
    assert persona.id == "default"
    assert persona.name
    assert persona.description
    assert persona.system_prompt


@pytest.mark.parametrize("name", ["aria.toml", "sage.md"])
def test_example_personas_in_the_repository_load(name: str) -> None:
    persona = load_persona(REPO / "personas" / name)
    assert persona.id == name.split(".", maxsplit=1)[0]
    assert persona.examples


_BIG_PROMPT = "x" * (MAX_SYSTEM_PROMPT_CHARS + 1)

BAD_FILES = [
    pytest.param(
        "aria.toml", 'name = "Aria"\n', "aria.toml: system_prompt is missing", id="toml-no-prompt"
    ),
    pytest.param("a.toml", 'system_prompt = "hi"\n', "a.toml: name is missing", id="no-name"),
    pytest.param(
        "a.toml", 'name = "A"\nsystem_prompt = "  "\n', "a.toml: system_prompt is empty", id="blank"
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\nname = "B"\n',
        r"a.toml: not valid TOML at line 3: Cannot overwrite a value",
        id="toml-syntax",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\ndescription = oops\n+++\nhello\n',
        r"x.md: front matter is not valid TOML at line 3: Invalid value",
        id="md-front-matter-syntax",
    ),
    pytest.param(
        "x.md",
        '\n\n+++\nname = "X"\n\ndescription = oops\n+++\nhello\n',
        r"x.md: front matter is not valid TOML at line 6: ",
        id="md-line-numbers-count-from-the-file",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsytem_prompt = "hi"\n',
        r"a.toml: unknown key 'sytem_prompt' \(did you mean 'system_prompt'\?\); the keys are: ",
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\nid = "b"\nvoice = "c"\n',
        r"a.toml: unknown keys 'id', 'voice' \(did you mean 'tts_voice'\?\); the keys are: name, ",
        id="unknown-keys-no-match",
    ),
    pytest.param(
        "a.toml",
        'name = 5\nsystem_prompt = "hi"\n',
        "a.toml: name must be a string, not a number",
        id="wrong-type",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\ndescription = """one\ntwo"""\n',
        "a.toml: description must be a single line",
        id="multi-line-description",
    ),
    pytest.param(
        "a.toml",
        f'name = "A"\nsystem_prompt = "{_BIG_PROMPT}"\n',
        f"a.toml: system_prompt is {MAX_SYSTEM_PROMPT_CHARS + 1} characters long; "
        f"the limit is {MAX_SYSTEM_PROMPT_CHARS}",
        id="prompt-too-long",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\nexamples = "hello"\n',
        r"a.toml: examples must be an array of tables \(\[\[examples\]\]\), not str",
        id="examples-not-array",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\n[[examples]]\nuser = "u"\n',
        "a.toml: examples #1 must have exactly the keys 'user' and 'assistant'",
        id="example-missing-side",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\n[[examples]]\nuser = "u"\nassistant = ""\n',
        "a.toml: examples #1: 'user' and 'assistant' must be non-empty strings",
        id="example-empty-side",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\ninterests = ["a", 1]\n',
        "a.toml: interests must be an array of strings",
        id="interests-type",
    ),
    pytest.param(
        "a.toml",
        'name = "A"\nsystem_prompt = "hi"\n' + '[[examples]]\nuser = "u"\nassistant = "a"\n' * 21,
        "a.toml: there are 21 examples; the limit is 20",
        id="too-many-examples",
    ),
    pytest.param(
        "x.md", 'name = "X"\nhello\n', "x.md: must start with TOML front matter", id="md-no-front"
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\nhello\n',
        "x.md: the front matter opened at line 1 is not closed by '\\+\\+\\+'",
        id="md-unclosed",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\n\n## Style\nshort\n',
        "x.md: system_prompt is missing: the Markdown body is empty",
        id="md-empty-body",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\nsystem_prompt = "hi"\n+++\nbody\n',
        "x.md: system_prompt belongs in the Markdown body, not in the front matter",
        id="md-prompt-in-front-matter",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\nstyle = "a"\n+++\nbody\n## Style\nb\n',
        "x.md: style is given twice: in the front matter and as a '## Style' section",
        id="md-style-twice",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Style\na\n## style\nb\n',
        "x.md: line 7: a second '## Style' section",
        id="md-two-style-sections",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Examples\nhello there\n',
        r"x.md: line 6 \(## Examples\): expected a 'User:' or 'Assistant:' line",
        id="md-example-stray-text",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Examples\n\nAssistant: hi\n',
        r"x.md: line 7 \(## Examples\): an 'Assistant:' line before any 'User:' line",
        id="md-example-reply-first",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Examples\nUser: a\nUser: b\nAssistant: c\n',
        r"x.md: line 7 \(## Examples\): a 'User:' line needs an 'Assistant:' reply first",
        id="md-example-user-twice",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Examples\nUser: a\nAssistant: b\nX: c\n',
        r"x.md: line 8 \(## Examples\): two 'Assistant:' lines for one 'User:' line",
        id="md-example-reply-twice",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Examples\nUser: a\nAssistant: b\n\nUser: c\n',
        r"x.md: line 9 \(## Examples\): this 'User:' line has no 'Assistant:' reply",
        id="md-example-unanswered",
    ),
    pytest.param(
        "x.md",
        '+++\nname = "X"\n+++\nbody\n## Examples\nUser:\nAssistant: b\n',
        r"x.md: line 6 \(## Examples\): an example with an empty side",
        id="md-example-empty",
    ),
    pytest.param(
        "Bad Name.toml",
        'name = "A"\nsystem_prompt = "hi"\n',
        "Bad Name.toml: the file name is the persona's id and must be 1-32 letters",
        id="bad-file-name",
    ),
    pytest.param(
        "a.toml", b'name = "\xff"\n', r"a.toml: is not UTF-8 text \(bad byte at 8\)", id="not-utf8"
    ),
    pytest.param(
        "a.toml",
        b"# " + b"x" * MAX_FILE_BYTES + b"\n",
        "a.toml: is larger than 64 KiB, the limit for a persona file",
        id="file-too-big",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES)
def test_bad_files_are_explained(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(PersonaFileError) as caught:
        load_persona(path)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(str(tmp_path) + os.sep)
    assert caught.value.problem  # the message without the path
    assert re.search(message, str(caught.value)), str(caught.value)


def test_a_directory_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "folder.toml").mkdir()
    assert scan_folder(tmp_path) == {}


def test_scan_finds_persona_files_only(tmp_path: Path) -> None:
    for name in ("a.toml", "B.md", "README.md", "_draft.toml", ".hidden.md", "notes.txt"):
        write(tmp_path, name, "x")
    found = scan_folder(tmp_path)
    assert sorted(p.name for p in found) == ["B.md", "a.toml"]
    stamp = found[tmp_path / "a.toml"]
    assert isinstance(stamp, FileStamp)
    assert stamp.size == 1


def test_scanning_a_missing_folder_finds_nothing(tmp_path: Path) -> None:
    assert scan_folder(tmp_path / "nope") == {}
