"""Asking the model for a reminder time the parser could not read.

Only for phrases `parse_reminder` gives up on ("at teatime", "when the match starts at 8"): the
model is asked for a local date and time as JSON, and the answer is held to the parser's rules
(in the future, within `MAX_AHEAD`, something to remind of). Anything else — no time, malformed
JSON, an LLM error — means no reading, and the user sees the parser's own message. The command
always echoes the time back, so a wrong reading is visible at once and can be cancelled.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from trio_companion.services.llm.base import ChatMessage, GenerationOptions, LLMBackend
from trio_companion.services.llm.errors import LLMError
from trio_companion.services.reminders.parse import MAX_AHEAD, ParsedReminder

__all__ = ["MATCHED_BY_MODEL", "read_with_model"]

log = logging.getLogger(__name__)

MATCHED_BY_MODEL: Final = "(read by the model)"
_OPTIONS: Final = GenerationOptions(temperature=0.0, num_predict=120, num_ctx=2048)
_SYSTEM: Final = (
    "You turn a reminder request into JSON and nothing else. Answer exactly "
    '{"when": "YYYY-MM-DDTHH:MM", "what": "<what to remind of>"} with the time in the '
    'user\'s local time, or {"when": null} if the request does not say when.'
)
_JSON_OBJECT: Final = re.compile(r"\{.*\}", re.DOTALL)


class _Reading(msgspec.Struct):
    when: str | None = None
    what: str = ""


async def read_with_model(
    backend: LLMBackend, text: str, *, now: datetime, tz: ZoneInfo
) -> ParsedReminder | None:
    """The model's reading of ``text``, or None when there is no acceptable one."""
    local_now = now.astimezone(tz)
    prompt = f"Local time now: {local_now:%A %Y-%m-%d %H:%M} ({tz.key}).\nRequest: {text}"
    try:
        answer = await backend.complete(
            [ChatMessage(role="system", content=_SYSTEM), ChatMessage(role="user", content=prompt)],
            _OPTIONS,
        )
    except LLMError as exc:
        log.info("no model reading of a reminder: %s", exc)
        return None
    found = _JSON_OBJECT.search(answer)
    if found is None:
        return None
    try:
        reading = msgspec.json.decode(found.group(), type=_Reading)
        if reading.when is None:
            return None
        when = datetime.fromisoformat(reading.when)
    except (msgspec.DecodeError, ValueError):
        return None
    when = (when.replace(tzinfo=tz) if when.tzinfo is None else when).astimezone(UTC)
    what = reading.what.strip()
    if not what or when <= now or when - now > MAX_AHEAD:
        return None
    return ParsedReminder(when=when, what=what, matched=MATCHED_BY_MODEL)
