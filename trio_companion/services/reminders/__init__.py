"""Reminders: turning "remind me in 10 minutes to stretch" into an instant and a text.

`parse_reminder(text, now=..., tz=...)` is a pure function (see
`trio_companion.services.reminders.parse` for the phrases it understands and its conventions)
returning a `ParsedReminder` with ``when`` (aware, UTC), ``what`` and the ``matched`` phrase.

Errors: `ReminderError` (a `trio_companion.errors.CompanionError`) with `UnparsableTime`,
`TimeInPast`, `TooFarAhead` and `NothingToRemind`; each message is fit to show the user.
"""

from trio_companion.services.reminders.errors import (
    EXAMPLES,
    NothingToRemind,
    ReminderError,
    TimeInPast,
    TooFarAhead,
    UnparsableTime,
)
from trio_companion.services.reminders.parse import (
    MAX_AHEAD,
    PART_OF_DAY_TIMES,
    ParsedReminder,
    parse_reminder,
)

__all__ = [
    "EXAMPLES",
    "MAX_AHEAD",
    "PART_OF_DAY_TIMES",
    "NothingToRemind",
    "ParsedReminder",
    "ReminderError",
    "TimeInPast",
    "TooFarAhead",
    "UnparsableTime",
    "parse_reminder",
]
