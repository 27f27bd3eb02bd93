"""The export document: rendering, reading with each kind of error, limits, round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_companion.services.chat.transcript import (
    MAX_CONTENT_CHARS,
    MAX_FILE_BYTES,
    MAX_TURNS,
    NotAnExport,
    NotJson,
    OverLimit,
    TranscriptError,
    UnsupportedVersion,
    import_turns,
    only_new,
    parse_export,
    render_export,
    render_json,
    render_markdown,
)
from trio_companion.storage import Role, Turn

CHANNEL = 1_200_000_000_000_000_002
ANN = 1_200_000_000_000_000_003
# 2026-11-28 12:00:00 UTC
NOON = 1_795_867_200.0


def turn(
    content: str = "hello",
    *,
    author_id: int = ANN,
    name: str = "Ann",
    role: Role = "user",
    at: float = NOON,
    channel_id: int = CHANNEL,
) -> Turn:
    return Turn(
        channel_id=channel_id,
        author_id=author_id,
        author_name=name,
        role=role,
        content=content,
        created_at=at,
    )


def sample() -> list[Turn]:
    return [
        turn("hi there\nhow are you?", at=NOON + 0.25),
        turn("Doing well!", author_id=0, name="Mira", role="assistant", at=NOON + 61),
    ]


def document(**changes: Any) -> dict[str, Any]:
    """A valid document as plain JSON data, with top-level ``changes``."""
    data = render_export(CHANNEL, sample(), persona="Mira", exported_at=NOON + 120)
    return {**json.loads(data.json), **changes}


# A value for `with_turn` that removes the field.
_DROP: Any = object()


def with_turn(index: int, **changes: Any) -> bytes:
    """A valid document as bytes, with ``changes`` to one turn."""
    body = document()
    changed = {**body["turns"][index], **changes}
    body["turns"][index] = {k: v for k, v in changed.items() if v is not _DROP}
    return json.dumps(body).encode()


def test_json_rendering() -> None:
    rendered = render_export(CHANNEL, sample(), persona="Mira", exported_at=NOON + 120)
    assert rendered.json.decode() == (
        "{\n"
        '  "format": "trio_companion.chat",\n'
        '  "version": 1,\n'
        '  "channel_id": "1200000000000000002",\n'
        '  "exported_at": "2026-11-28T12:02:00Z",\n'
        '  "persona": "Mira",\n'
        '  "turns": [\n'
        "    {\n"
        '      "author_id": "1200000000000000003",\n'
        '      "author_name": "Ann",\n'
        '      "role": "user",\n'
        '      "content": "hi there\\nhow are you?",\n'
        '      "created_at": "2026-11-28T12:00:00.250000Z"\n'
        "    },\n"
        "    {\n"
        '      "author_id": "0",\n'
        '      "author_name": "Mira",\n'
        '      "role": "assistant",\n'
        '      "content": "Doing well!",\n'
        '      "created_at": "2026-11-28T12:01:01Z"\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )


def test_markdown_rendering() -> None:
    turns = [
        *sample(),
        turn("   ", name="*Bob*", at=NOON + 3600),
        turn("from before names", author_id=0, name="", role="assistant", at=NOON + 3660),
    ]
    rendered = render_export(CHANNEL, turns, persona="Mira", exported_at=NOON + 7200)
    assert rendered.markdown.decode() == (
        "# Chat history of channel 1200000000000000002\n"
        "\n"
        "Exported 2026-11-28 14:00 UTC · persona Mira · 4 messages\n"
        "\n"
        "**Ann** · 2026-11-28 12:00 UTC\n"
        "\n"
        "hi there\n"
        "how are you?\n"
        "\n"
        "**Mira** · 2026-11-28 12:01 UTC\n"
        "\n"
        "Doing well!\n"
        "\n"
        "**\\*Bob\\*** · 2026-11-28 13:00 UTC\n"
        "\n"
        "*(empty)*\n"
        "\n"
        "**Mira** · 2026-11-28 13:01 UTC\n"
        "\n"
        "from before names\n"
    )
    assert render_markdown(rendered.document) == rendered.markdown.decode()


def test_parse_gives_back_the_document_and_import_makes_turns_of_the_channel() -> None:
    rendered = render_export(CHANNEL, sample(), persona="Mira", exported_at=NOON)
    parsed = parse_export(rendered.json)
    assert parsed == rendered.document
    assert import_turns(parsed, 42) == [msgspec.structs.replace(t, channel_id=42) for t in sample()]


def test_a_byte_order_mark_is_skipped() -> None:
    rendered = render_export(CHANNEL, sample(), persona="Mira", exported_at=NOON)
    assert parse_export(b"\xef\xbb\xbf" + rendered.json) == rendered.document


def test_times_with_an_offset_are_read_as_the_same_instant() -> None:
    data = with_turn(0, created_at="2026-11-28T13:00:00.250000+01:00")
    [first, _] = import_turns(parse_export(data), CHANNEL)
    assert first.created_at == NOON + 0.25


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", NotJson, "That file is empty."),
        (b" \n\t", NotJson, "That file is empty."),
        (
            b'{\n  "format": "trio_companion.chat",\n  "version": 1,,\n}',
            NotJson,
            "That file is not valid JSON (line 3, column 16).",
        ),
        (
            b'{"format": "trio_companion.chat"',
            NotJson,
            "That file is not valid JSON (line 1, column 33).",
        ),
        (b'{"a": 1} trailing', NotJson, "That file is not valid JSON (line 1, column 11)."),
        (
            b'{"a": "caf\xc3\xa9",\n "b": "\xff"}',
            NotJson,
            "That file is not UTF-8 text (line 2, column 8).",
        ),
        (b"[1, 2]", NotAnExport, "That file is not a chat export: expected an object, got a list."),
        (
            b'{"name": "something else"}',
            NotAnExport,
            'That file is not a chat export: format: missing (expected "trio_companion.chat").',
        ),
        (
            json.dumps(document(format="other.chat")).encode(),
            NotAnExport,
            'That file is not a chat export: format: expected "trio_companion.chat".',
        ),
        (
            json.dumps(document(version=2)).encode(),
            UnsupportedVersion,
            "That chat export is version 2 (made by a newer trio_companion); this "
            "trio_companion reads version 1.",
        ),
        (
            json.dumps(document(version="1")).encode(),
            NotAnExport,
            "That file is not a chat export: version: expected an integer, got a string.",
        ),
        (
            json.dumps(document(turns={})).encode(),
            NotAnExport,
            "That file is not a chat export: turns: expected a list, got an object.",
        ),
        (
            json.dumps(document(extra=1)).encode(),
            NotAnExport,
            "That file is not a chat export: extra: not a field of a chat export.",
        ),
        (
            with_turn(1, role="narrator"),
            NotAnExport,
            "That file is not a chat export: turns[1].role: expected one of user, assistant, "
            "system.",
        ),
        (
            with_turn(0, author_id=ANN),
            NotAnExport,
            "That file is not a chat export: turns[0].author_id: expected a string, got an "
            "integer.",
        ),
        (
            with_turn(0, author_id="ann"),
            NotAnExport,
            "That file is not a chat export: turns[0].author_id: expected a Discord id: a string "
            "of digits.",
        ),
        (
            with_turn(0, author_id=str(2**64)),
            NotAnExport,
            "That file is not a chat export: turns[0].author_id: expected a Discord id, which "
            "is below 2**64.",
        ),
        (
            json.dumps(document(channel_id="")).encode(),
            NotAnExport,
            "That file is not a chat export: channel_id: expected a Discord id: a string of "
            "digits.",
        ),
        (
            with_turn(1, content=_DROP),
            NotAnExport,
            "That file is not a chat export: turns[1].content: missing.",
        ),
        (
            with_turn(0, message_id="5"),
            NotAnExport,
            "That file is not a chat export: turns[0].message_id: not a field of a chat export.",
        ),
        (
            with_turn(0, content=None),
            NotAnExport,
            "That file is not a chat export: turns[0].content: expected a string, got null.",
        ),
        (
            with_turn(0, created_at="2026-11-28T12:00:00"),
            NotAnExport,
            "That file is not a chat export: turns[0].created_at: expected a time with its UTC "
            "offset, such as 2026-11-28T12:00:00Z.",
        ),
        (
            with_turn(0, created_at="yesterday"),
            NotAnExport,
            "That file is not a chat export: turns[0].created_at: expected a time such as "
            "2026-11-28T12:00:00Z.",
        ),
        (
            with_turn(1, created_at="1969-12-31T23:59:59Z"),
            NotAnExport,
            "That file is not a chat export: turns[1].created_at: expected a time from 1970 to "
            "9998.",
        ),
        (
            with_turn(1, content="x" * (MAX_CONTENT_CHARS + 1)),
            OverLimit,
            f"That file's turns[1].content is too long: the limit is {MAX_CONTENT_CHARS} "
            "characters.",
        ),
        (
            with_turn(0, author_name="n" * 101),
            OverLimit,
            "That file's turns[0].author_name is too long: the limit is 100 characters.",
        ),
        (
            json.dumps(document(turns=document()["turns"][:1] * (MAX_TURNS + 1))).encode(),
            OverLimit,
            f"That file has {MAX_TURNS + 1} messages; at most {MAX_TURNS} can be imported at once.",
        ),
        (
            b" " * (MAX_FILE_BYTES + 1),
            OverLimit,
            "That file is too large: 2.0 MiB; the limit is 2 MiB.",
        ),
    ],
    ids=lambda value: None if isinstance(value, bytes | type) else value[:60],
)
def test_parse_errors_say_what_and_where(
    data: bytes, error: type[TranscriptError], message: str
) -> None:
    with pytest.raises(error) as caught:
        parse_export(data)
    assert str(caught.value) == message


def test_parse_error_fields() -> None:
    with pytest.raises(NotJson) as not_json:
        parse_export(b'{\n\n   "a": tru}')
    assert (not_json.value.line, not_json.value.column) == (3, 10)
    with pytest.raises(NotAnExport) as not_export:
        parse_export(with_turn(1, role="narrator"))
    assert (not_export.value.path, not_export.value.problem) == (
        "turns[1].role",
        "expected one of user, assistant, system",
    )
    with pytest.raises(OverLimit) as over:
        parse_export(b"x" * (MAX_FILE_BYTES + 1))
    assert (over.value.what, over.value.limit) == ("bytes", MAX_FILE_BYTES)


def test_export_keeps_the_newest_turns_within_the_turn_limit() -> None:
    turns = [turn(f"m{i}", at=NOON + i) for i in range(10)]
    rendered = render_export(CHANNEL, turns, persona="Mira", exported_at=NOON, max_turns=4)
    assert [t.content for t in rendered.document.turns] == ["m6", "m7", "m8", "m9"]
    nothing = render_export(CHANNEL, turns, persona="Mira", exported_at=NOON, max_turns=0)
    assert nothing.document.turns == ()


@pytest.mark.parametrize("max_bytes", [700, 1000, 1500, 2345, 5000])
def test_export_fits_the_byte_limit_exactly(max_bytes: int) -> None:
    turns = [turn("é" * (i * 7), at=NOON + i) for i in range(20)]
    fitted = render_export(CHANNEL, turns, persona="Mira", exported_at=NOON, max_bytes=max_bytes)
    kept = len(fitted.document.turns)
    assert len(fitted.json) <= max_bytes
    assert fitted.document.turns == tuple(
        render_export(CHANNEL, turns, persona="Mira", exported_at=NOON).document.turns[20 - kept :]
    )
    if kept < len(turns):  # one more turn would not have fit
        more = render_export(
            CHANNEL, turns[len(turns) - kept - 1 :], persona="Mira", exported_at=NOON
        )
        assert len(more.json) > max_bytes


def test_a_full_size_export_can_be_imported() -> None:
    big = [turn("z" * 3000, at=NOON + i) for i in range(MAX_TURNS)]
    rendered = render_export(CHANNEL, big, persona="Mira", exported_at=NOON)
    assert MAX_FILE_BYTES - 4000 < len(rendered.json) <= MAX_FILE_BYTES
    assert parse_export(rendered.json) == rendered.document


def test_only_new_skips_turns_already_there_and_repeated() -> None:
    existing = [turn("a", at=NOON + 0.0000004), turn("b", at=NOON + 1)]
    incoming = [
        turn("a", at=NOON, name="Ann again"),  # the same microsecond, another name: the same
        turn("a", at=NOON + 0.000001),  # one microsecond later: another turn
        turn("b", at=NOON + 1, author_id=7),  # another author
        turn("c", at=NOON + 2),
        turn("c", at=NOON + 2),  # twice in the file
        turn("b", at=NOON + 1),
    ]
    fresh, already = only_new(existing, incoming)
    assert [(t.content, t.created_at, t.author_id) for t in fresh] == [
        ("a", NOON + 0.000001, ANN),
        ("b", NOON + 1, 7),
        ("c", NOON + 2, ANN),
    ]
    assert already == 3


_NAMES = st.text(max_size=20)
_TEXTS = st.text(max_size=200)
_TIMES = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_TURNS = st.lists(
    st.builds(
        Turn,
        channel_id=st.just(CHANNEL),
        author_id=st.integers(0, 2**64 - 1),
        author_name=_NAMES,
        role=st.sampled_from(["user", "assistant", "system"]),
        content=_TEXTS,
        created_at=_TIMES.map(lambda moment: moment.timestamp()),
    ),
    max_size=20,
)


@settings(deadline=2000)  # ms per example; the first one also warms msgspec up
@given(turns=_TURNS, persona=_NAMES, offset=st.integers(-14 * 60, 14 * 60))
def test_export_import_export_is_the_same_document(
    turns: list[Turn], persona: str, offset: int
) -> None:
    first = render_export(CHANNEL, turns, persona=persona, exported_at=NOON)
    # What an editor might do to the times: the same instants in another UTC offset.
    edited = json.loads(first.json)
    zone = timezone(timedelta(minutes=offset))
    for item in edited["turns"]:
        moment = datetime.fromisoformat(item["created_at"]).astimezone(zone)
        item["created_at"] = moment.isoformat()
    imported = import_turns(parse_export(json.dumps(edited).encode()), CHANNEL)
    second = render_export(CHANNEL, imported, persona=persona, exported_at=NOON)
    assert second.json == first.json
    # And merging the file back into what it was exported from adds nothing.
    assert only_new(turns, imported) == ([], len(turns))


def test_render_json_is_what_render_export_wrote() -> None:
    rendered = render_export(CHANNEL, sample(), persona="Mira", exported_at=NOON)
    assert render_json(rendered.document) == rendered.json
