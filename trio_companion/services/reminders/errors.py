"""Errors of the reminder parser.

::

    CompanionError
    └── ReminderError              (this module)
        ├── UnparsableTime         parse_reminder: no time phrase understood, or one that needs
        │                          more (a day without a time of day, "24/12", "in 2 months",
        │                          two different times in one message)
        ├── TimeInPast             parse_reminder: the time understood has already passed
        ├── TooFarAhead            parse_reminder: the time is more than MAX_AHEAD away
        └── NothingToRemind        parse_reminder: a time but nothing to be reminded of

Every message is a sentence the user can act on; `UnparsableTime` always ends with examples
of phrases that work. The parser never falls back to a default time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, final

from trio_companion.errors import CompanionError

__all__ = [
    "EXAMPLES",
    "NothingToRemind",
    "ReminderError",
    "TimeInPast",
    "TooFarAhead",
    "UnparsableTime",
]

# Shown after every UnparsableTime message, so a user always sees phrases that work.
EXAMPLES: Final = (
    'Try something like "in 10 minutes to stretch", "at 5pm to call mom", '
    '"tomorrow at 9am to water the plants" or "on 2026-12-24 at 18:00 to wrap presents".'
)

_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def show_time(when: datetime, tz: tzinfo) -> str:
    """``when`` as the user reads it: "Thursday 24 December 2026 at 18:00 CET".

    Built from fixed English names rather than ``strftime("%A")`` so the text does not depend on
    the process locale.
    """
    local = when.astimezone(tz)
    return (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year} "
        f"at {local:%H:%M} {local.tzname()}"
    )


class ReminderError(CompanionError):
    """Root of the reminder errors."""


@final
class UnparsableTime(ReminderError):
    """No time phrase in ``text`` could be turned into an instant.

    ``problem`` says what was wrong when the parser knows ("'on monday' needs a time of day"),
    else it is None and the message says no time was found.
    """

    def __init__(self, text: str, problem: str | None = None) -> None:
        self.text = text
        self.problem = problem
        lead = problem if problem is not None else "I couldn't find a time in that."
        super().__init__(f"{lead} {EXAMPLES}")


@final
class TimeInPast(ReminderError):
    """The time understood, ``when`` (aware, UTC), is not after ``now``."""

    def __init__(self, when: datetime, tz: tzinfo) -> None:
        self.when = when.astimezone(UTC)
        super().__init__(
            f"{show_time(when, tz)} has already passed. Pick a time in the future, "
            'like "tomorrow at 9am".'
        )


@final
class TooFarAhead(ReminderError):
    """The time understood is more than ``limit`` ahead.

    ``when`` (aware, UTC) is None when the time is too far off to be represented at all
    ("in 99999999 days").
    """

    def __init__(self, when: datetime | None, tz: tzinfo, limit: timedelta) -> None:
        self.when = None if when is None else when.astimezone(UTC)
        self.limit = limit
        shown = "That" if when is None else show_time(when, tz)
        super().__init__(
            f"{shown} is too far ahead: I keep reminders for at most {limit.days} days. "
            "Pick a nearer time."
        )


@final
class NothingToRemind(ReminderError):
    """A time was understood (``when``, aware UTC; ``matched``) but nothing to be reminded of.

    The caller may ask for the text and keep ``when``.
    """

    def __init__(self, when: datetime, matched: str) -> None:
        self.when = when.astimezone(UTC)
        self.matched = matched
        super().__init__(
            f'What should I remind you of? Say it with the time, like "{matched} to stretch".'
        )
