"""Chat transcripts: the document ``/export_chat`` writes and ``/import_chat`` reads.

Sans-IO: stored turns in, bytes out (`render_export`), and bytes in, turns out (`parse_export`,
`import_turns`, `only_new`). The command module, `trio_companion.commands.history`, does the
reading, writing, uploading and downloading.

The document, version 1, is UTF-8 JSON::

    {"format": "trio_companion.chat", "version": 1, "channel_id": "<id>",
     "exported_at": "<RFC 3339, UTC>", "persona": "<name>",
     "turns": [{"author_id": "<id>", "author_name": "…", "role": "user|assistant|system",
                "content": "…", "created_at": "<RFC 3339, UTC>"}, …]}

Discord ids are strings: they reach 2**64, and JavaScript's numbers are exact only to 2**53.
Times are RFC 3339 with microseconds; the store keeps Unix seconds as floats, which hold
microseconds exactly until the year 2106, so export → import → export gives the same document.
The bot's turns have author id "0" and the persona's name at the time they were said. Turns are
in stored order, which is the order the model sees them in.

Reading is strict. msgspec validates against the Structs below with no type coercion, unknown
fields refused, and times that must carry their UTC offset. Every failure becomes a message
that names the place in the file (``turns[2].role``), because someone fixing a file by hand
needs it. The header (``format``, ``version``) is checked first, so a stray JSON file or a
newer version is named as such rather than as a shape error.

Errors::

    CompanionError
    └── ChatError
        └── TranscriptError         (this module) parse_export: the file cannot be imported
            ├── NotJson             empty, not UTF-8 or not JSON; line and column of the problem
            ├── NotAnExport         JSON, but not a chat export; the path and what is wrong
            ├── UnsupportedVersion  an export of another version of the format
            └── OverLimit           too large, too many turns, a text too long
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, TypeAlias, TypeVar, final

import msgspec

from trio_companion.services.chat.errors import ChatError
from trio_companion.storage import Role, Turn

__all__ = [
    "FORMAT",
    "MAX_CONTENT_CHARS",
    "MAX_FILE_BYTES",
    "MAX_NAME_CHARS",
    "MAX_TURNS",
    "VERSION",
    "ChatExport",
    "ExportedTurn",
    "NotAnExport",
    "NotJson",
    "OverLimit",
    "RenderedExport",
    "TranscriptError",
    "UnsupportedVersion",
    "import_turns",
    "only_new",
    "parse_export",
    "render_export",
    "render_json",
    "render_markdown",
]

FORMAT: Final = "trio_companion.chat"
VERSION: Final = 1
# Our own limits. An import is held in memory and validated in one piece: 2 MiB holds thousands
# of turns and stays far below Discord's 10 MiB per uploaded file, so an export (fitted to the
# same size) can always be imported back.
MAX_FILE_BYTES: Final = 2 * 1024 * 1024
# Turns per export and per import; the export keeps the newest.
MAX_TURNS: Final = 5000
# One turn's text: above the longest reply the model can be configured for (num_predict is at
# most 32768 tokens, a few characters each); chat messages themselves stop at 6000.
MAX_CONTENT_CHARS: Final = 200_000
# Discord names have at most 32 characters, persona names 64.
MAX_NAME_CHARS: Final = 100
# Imported times: Unix time is not negative in the store, and the year 9999 is RFC 3339's last.
_EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(9999, 1, 1, tzinfo=UTC)
_TWO_64: Final = 1 << 64
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_T = TypeVar("_T")

IdText: TypeAlias = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,20}$")]
NameText: TypeAlias = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
ContentText: TypeAlias = Annotated[str, msgspec.Meta(max_length=MAX_CONTENT_CHARS)]
Time: TypeAlias = Annotated[datetime, msgspec.Meta(tz=True)]


class ExportedTurn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One turn of a `ChatExport`."""

    author_id: IdText
    author_name: NameText
    role: Role
    content: ContentText
    created_at: Time


class ChatExport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The exported history of one channel; fields in the order they are written."""

    format: Literal["trio_companion.chat"]
    version: int
    channel_id: IdText
    exported_at: Time
    persona: NameText
    turns: tuple[ExportedTurn, ...]


class _Header(msgspec.Struct):
    """The first look at a file: any JSON object, whatever else it holds."""

    format: object = None
    version: object = None


# --- errors --------------------------------------------------------------------------------


class TranscriptError(ChatError):
    """A file that cannot be imported: raised by `parse_export`, and by the import command for
    what it sees before downloading. ``str()`` says why, for the user."""


class NotJson(TranscriptError):
    """The file is empty, not UTF-8, or not JSON. ``line`` and ``column`` count from 1; the
    column in characters."""

    def __init__(self, line: int, column: int, *, utf8: bool = True, empty: bool = False) -> None:
        self.line = line
        self.column = column
        if empty:
            message = "That file is empty."
        elif not utf8:
            message = f"That file is not UTF-8 text (line {line}, column {column})."
        else:
            message = f"That file is not valid JSON (line {line}, column {column})."
        super().__init__(message)


class NotAnExport(TranscriptError):
    """JSON, but not a chat export: ``path`` (``turns[2].role``, empty for the whole file) and
    ``problem`` say where and what."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        where = f"{path}: " if path else ""
        super().__init__(f"That file is not a chat export: {where}{problem}.")


class UnsupportedVersion(TranscriptError):
    def __init__(self, version: int) -> None:
        self.version = version
        newer = " (made by a newer trio_companion)" if version > VERSION else ""
        super().__init__(
            f"That chat export is version {version}{newer}; this trio_companion reads version "
            f"{VERSION}."
        )


class OverLimit(TranscriptError):
    """A limit of the import: ``what`` is ``"bytes"``, ``"turns"`` or ``"characters"``."""

    def __init__(self, message: str, *, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        super().__init__(message)

    @classmethod
    def file_size(cls, size: int | None) -> OverLimit:
        """``size`` None: known only to be over the limit (a download stopped there)."""
        known = "" if size is None else f"{_mib(size)}; "
        return cls(
            f"That file is too large: {known}the limit is {_mib(MAX_FILE_BYTES)}.",
            what="bytes",
            limit=MAX_FILE_BYTES,
        )

    @classmethod
    def turn_count(cls, count: int) -> OverLimit:
        return cls(
            f"That file has {count} messages; at most {MAX_TURNS} can be imported at once.",
            what="turns",
            limit=MAX_TURNS,
        )

    @classmethod
    def text_length(cls, path: str, limit: int) -> OverLimit:
        return cls(
            f"That file's {path} is too long: the limit is {limit} characters.",
            what="characters",
            limit=limit,
        )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size % (1024 * 1024) else f"{size >> 20} MiB"


# --- export --------------------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class RenderedExport:
    """Both files of an export. ``document.turns`` are those that fit: see `render_export`."""

    document: ChatExport
    json: bytes
    markdown: bytes


def render_export(
    channel_id: int,
    turns: Sequence[Turn],
    *,
    persona: str,
    exported_at: float,
    max_turns: int = MAX_TURNS,
    max_bytes: int = MAX_FILE_BYTES,
) -> RenderedExport:
    """Render `turns` (oldest first) as the JSON document and its Markdown reading.

    Only the newest turns are kept: at most `max_turns`, and only as many as keep the JSON
    within `max_bytes`, so that `parse_export` accepts it. CPU work proportional to the turns:
    for thousands, call it in a worker thread.
    """
    kept = turns[max(0, len(turns) - max_turns) :] if max_turns > 0 else ()
    document = ChatExport(
        format=FORMAT,
        version=VERSION,
        channel_id=str(channel_id),
        exported_at=_time(exported_at),
        persona=persona[:MAX_NAME_CHARS],
        turns=tuple(_export_turn(turn) for turn in kept),
    )
    data = render_json(document)
    if len(data) > max_bytes:
        document = _fit(document, max_bytes)
        data = render_json(document)
        # `_fit` is exact; this only guards against a msgspec formatting change.
        while len(data) > max_bytes and document.turns:
            document = msgspec.structs.replace(document, turns=document.turns[1:])
            data = render_json(document)
    return RenderedExport(document, data, render_markdown(document).encode())


def render_json(document: ChatExport) -> bytes:
    """The document as indented JSON, one field per line, ending in a newline."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def render_markdown(document: ChatExport) -> str:
    """A reading copy: each turn as ``**Name** · 2026-11-28 12:00 UTC``, then its text."""
    count = len(document.turns)
    lines = [
        f"# Chat history of channel {document.channel_id}",
        "",
        f"Exported {_when(document.exported_at)} · persona {_escape(document.persona)} · "
        f"{count} message{'' if count == 1 else 's'}",
    ]
    for turn in document.turns:
        name = turn.author_name or _default_name(turn.role, document.persona)
        lines += ["", f"**{_escape(name)}** · {_when(turn.created_at)}", ""]
        lines.append(turn.content.strip() or "*(empty)*")
    return "\n".join(lines) + "\n"


def _export_turn(turn: Turn) -> ExportedTurn:
    return ExportedTurn(
        author_id=str(turn.author_id),
        author_name=turn.author_name,
        role=turn.role,
        content=turn.content,
        created_at=_time(turn.created_at),
    )


def _fit(document: ChatExport, max_bytes: int) -> ChatExport:
    """The document with the fewest oldest turns left out for its JSON to fit `max_bytes`.

    Indenting adds the same whitespace to every turn (strings are copied as they are, and every
    turn has the same fields), so one turn costs its compact encoding plus a constant, measured
    here on the first turn rather than assumed.
    """
    turns = document.turns
    if not turns:
        return document
    first = turns[0]
    one = len(render_json(msgspec.structs.replace(document, turns=(first,))))
    two = len(render_json(msgspec.structs.replace(document, turns=(first, first))))
    compact = len(msgspec.json.encode(first))
    per_turn = two - one - compact
    used = one - compact - per_turn  # the document without turns (but with a non-empty list)
    keep = 0
    for turn in reversed(turns):
        cost = len(msgspec.json.encode(turn)) + per_turn
        if used + cost > max_bytes:
            break
        used += cost
        keep += 1
    return msgspec.structs.replace(document, turns=turns[len(turns) - keep :])


def _default_name(role: Role, persona: str) -> str:
    return {"assistant": persona, "system": "System"}.get(role, "Someone")


def _escape(name: str) -> str:
    """A name as literal Markdown text, on one line."""
    return re.sub(r"([\\`*_~|\[\]<>#])", r"\\\1", " ".join(name.split()))


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- import --------------------------------------------------------------------------------


def parse_export(data: bytes) -> ChatExport:
    """Read and validate a chat export; raise a `TranscriptError` that says what is wrong.

    A UTF-8 byte order mark (some editors write one) is skipped. CPU work proportional to the
    size (at most `MAX_FILE_BYTES`): call it in a worker thread.
    """
    if len(data) > MAX_FILE_BYTES:
        raise OverLimit.file_size(len(data))
    data = data.removeprefix(_UTF8_BOM)
    if not data.strip():
        raise NotJson(1, 1, empty=True)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson(*_position(data, exc.start), utf8=False) from None
    header = _decode(data, _Header)
    if header.format != FORMAT:
        expected = f'expected "{FORMAT}"'
        raise NotAnExport("format", f"missing ({expected})" if header.format is None else expected)
    version = header.version
    if isinstance(version, int) and not isinstance(version, bool) and version != VERSION:
        raise UnsupportedVersion(version)
    document = _decode(data, ChatExport)
    if len(document.turns) > MAX_TURNS:
        raise OverLimit.turn_count(len(document.turns))
    _check_id("channel_id", document.channel_id)
    for index, turn in enumerate(document.turns):
        _check_id(f"turns[{index}].author_id", turn.author_id)
        if not _EARLIEST <= turn.created_at < _LATEST:
            raise NotAnExport(
                f"turns[{index}].created_at",
                f"expected a time from {_EARLIEST.year} to {_LATEST.year - 1}",
            )
    return document


def import_turns(document: ChatExport, channel_id: int) -> list[Turn]:
    """The document's turns as turns of `channel_id` (which need not be the one exported)."""
    return [
        Turn(
            channel_id=channel_id,
            author_id=int(turn.author_id),
            author_name=turn.author_name,
            role=turn.role,
            content=turn.content,
            created_at=turn.created_at.timestamp(),
        )
        for turn in document.turns
    ]


def only_new(existing: Iterable[Turn], incoming: Sequence[Turn]) -> tuple[list[Turn], int]:
    """The `incoming` turns that are not in `existing` (nor earlier in `incoming`), in order,
    and how many were left out. Turns are the same when their author, time (to the
    microsecond) and text are."""
    seen = {_key(turn) for turn in existing}
    fresh = []
    for turn in incoming:
        key = _key(turn)
        if key not in seen:
            seen.add(key)
            fresh.append(turn)
    return fresh, len(incoming) - len(fresh)


def _key(turn: Turn) -> tuple[int, datetime, str]:
    return turn.author_id, _time(turn.created_at), turn.content


def _decode(data: bytes, kind: type[_T]) -> _T:
    try:
        return msgspec.json.decode(data, type=kind, strict=True)
    except msgspec.ValidationError as exc:  # first: it is a subclass of DecodeError
        raise _explain(str(exc)) from None
    except msgspec.DecodeError as exc:
        found = re.search(r"\(byte (\d+)\)", str(exc))
        offset = int(found.group(1)) if found else len(data)  # "Input data was truncated"
        raise NotJson(*_position(data, offset)) from None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """Line and column (from 1, the column in characters) of byte `offset`."""
    before = data[:offset].decode("utf-8", errors="replace")
    line_start = before.rfind("\n") + 1
    return before.count("\n") + 1, len(before) - line_start + 1


# msgspec's type names in its messages, as a user reads them.
_NOUNS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "object": "an object",
    "array": "a list",
    "datetime": "a time",
}
_CHOICES: Final = {"role": ", ".join(("user", "assistant", "system")), "format": FORMAT}
_EXAMPLE_TIME: Final = "2026-11-28T12:00:00Z"


def _explain(message: str) -> TranscriptError:
    """Turn a msgspec validation message into our error for that place in the file."""
    found = re.fullmatch(r"(?s)(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?", message)
    assert found is not None  # the pattern matches any string
    what, path = found["what"], (found["path"] or "").removeprefix(".")
    if m := re.fullmatch(r"Expected `str` of length <= (\d+)", what):
        return OverLimit.text_length(path, int(m[1]))
    if m := re.fullmatch(r"Object missing required field `(\w+)`", what):
        return NotAnExport(_join(path, m[1]), "missing")
    if m := re.fullmatch(r"Object contains unknown field `(\w+)`", what):
        return NotAnExport(_join(path, m[1]), "not a field of a chat export")
    if m := re.fullmatch(r"Expected `(\w+)`, got `(\w+)`", what):
        expected, got = (_NOUNS.get(name, name) for name in (m[1], m[2]))
        return NotAnExport(path, f"expected {expected}, got {got}")
    if what.startswith("Invalid enum value"):
        field = re.sub(r"\[\d+\]$", "", path.rpartition(".")[2])
        choices = _CHOICES.get(field)
        return NotAnExport(path, f"expected one of {choices}" if choices else "not allowed here")
    if what.startswith("Expected `str` matching regex"):
        return NotAnExport(path, "expected a Discord id: a string of digits")
    if what == "Expected `datetime` with a timezone component":
        return NotAnExport(path, f"expected a time with its UTC offset, such as {_EXAMPLE_TIME}")
    if what == "Invalid RFC3339 encoded datetime":
        return NotAnExport(path, f"expected a time such as {_EXAMPLE_TIME}")
    return NotAnExport(path, what[:1].lower() + what[1:])


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _check_id(path: str, text: str) -> None:
    if int(text) >= _TWO_64:
        raise NotAnExport(path, "expected a Discord id, which is below 2**64")
