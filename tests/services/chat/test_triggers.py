"""When the companion answers: a table of messages and situations."""

from __future__ import annotations

import pytest

from trio_companion.services.chat.triggers import IncomingMessage, Trigger, name_pattern, why_reply

BOT = 10
NAMES = name_pattern(["Aria", "companion", ""])


def msg(
    content: str = "hello",
    *,
    author: int = 20,
    bot: bool = False,
    dm: bool = False,
    mention: bool = False,
    reply: bool = False,
) -> IncomingMessage:
    return IncomingMessage(
        author_id=author,
        author_is_bot=bot,
        content=content,
        is_dm=dm,
        mentions_bot=mention,
        replies_to_bot=reply,
    )


@pytest.mark.parametrize(
    ("message", "session", "expected"),
    [
        (msg("hello"), False, None),
        (msg("hello"), True, Trigger.SESSION),
        (msg("hello", dm=True), False, Trigger.DM),
        (msg("hey there", mention=True), False, Trigger.MENTION),
        (msg("yes", reply=True), False, Trigger.REPLY),
        (msg("Aria, what do you think?"), False, Trigger.NAME),
        (msg("what does aria think"), False, Trigger.NAME),
        (msg("ask the COMPANION!"), False, Trigger.NAME),
        (msg("Ariadne is a myth"), False, None),  # not a whole word
        (msg("a robot companionship"), False, None),
        (msg("#aria is a channel"), False, None),
        (msg("@aria"), False, None),
        (msg("hello", author=BOT, dm=True), False, None),  # never itself
        (msg("hello", bot=True, mention=True), False, None),  # never other bots
        (msg("Aria #ignore this", mention=True), True, None),
        (msg("Aria #IGNORE"), False, None),
        (msg("hello", author=99, mention=True), False, None),  # ignored user
    ],
)
def test_why_reply(message: IncomingMessage, session: bool, expected: Trigger | None) -> None:
    got = why_reply(
        message, bot_id=BOT, names=NAMES, ignored_user_ids=frozenset({99}), session_open=session
    )
    assert got is expected


def test_no_names_means_no_name_trigger() -> None:
    assert name_pattern(["", "  "]) is None
    got = why_reply(
        msg("Aria?"), bot_id=BOT, names=None, ignored_user_ids=frozenset(), session_open=False
    )
    assert got is None
