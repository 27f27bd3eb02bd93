"""When the companion answers a channel message: a pure decision, no I/O.

In order: never itself or another bot, never ignored users, never a message containing
``#ignore``; then yes when it is a DM, when the bot is mentioned, when the message replies to
one of the bot's messages, when one of its names is said as a word ("Aria, what…", not
"Ariadne" or "robot" for "bot"), or when the channel has an open session (the follow-up window
after the bot's last reply there).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["IncomingMessage", "Trigger", "name_pattern", "why_reply"]

IGNORE_TAG: Final = "#ignore"


class Trigger(enum.Enum):
    DM = "dm"
    MENTION = "mention"
    REPLY = "reply"
    NAME = "name"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """What the decision needs to know about a message."""

    author_id: int
    author_is_bot: bool
    content: str
    is_dm: bool
    mentions_bot: bool
    replies_to_bot: bool


def name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """A case-insensitive pattern matching any of ``names`` as a whole word."""
    words = sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w@#]){'(?:' + alternatives + ')'}(?!\w)", re.IGNORECASE)


def why_reply(
    message: IncomingMessage,
    *,
    bot_id: int,
    names: re.Pattern[str] | None,
    ignored_user_ids: frozenset[int],
    session_open: bool,
) -> Trigger | None:
    """The reason to answer ``message``, or None to stay quiet."""
    if message.author_id == bot_id or message.author_is_bot:
        return None
    if message.author_id in ignored_user_ids or IGNORE_TAG in message.content.lower():
        return None
    if message.is_dm:
        return Trigger.DM
    if message.mentions_bot:
        return Trigger.MENTION
    if message.replies_to_bot:
        return Trigger.REPLY
    if names is not None and names.search(message.content):
        return Trigger.NAME
    if session_open:
        return Trigger.SESSION
    return None
