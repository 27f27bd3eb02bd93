"""Reminder phrases to an instant: "remind me in 10 minutes to stretch". Pure, no I/O.

Theory of operation
-------------------
1. **Scan.** Regexes find *pieces* anywhere in the text: a duration ("in 2h30m", "10 minutes from
   now"), a day ("tomorrow", "tonight", "on monday", "next friday", "on 2026-12-24", "24 December",
   "on the 3rd"), a time of day ("at 5pm", "17:00", "by noon") and a part of the day ("this
   evening", "in the morning", "monday *morning*"). Overlaps go to the leftmost, then longest,
   piece. A weekday or part of the day without a prefix ("monday", "morning") only counts next to
   another piece, so "buy the sunday paper at 5pm" keeps "sunday" in the reminder; abbreviated
   weekdays ("sat", "sun") need "on"/"next"/"this".
2. **Refuse.** Time-like phrases this parser does not handle ("24/12", "in 2 months", "next week",
   "every day") raise `UnparsableTime` naming them when they sit next to a piece or when nothing
   else was found, rather than being left in the reminder text or guessed. Two pieces of one kind
   ("at 5pm ... at 6pm") raise too. Nothing ever defaults to "now + N minutes".
3. **Resolve** the pieces to one instant (rules below), **check** it is after ``now`` and at most
   `MAX_AHEAD` away, and **clean** the rest of the text into ``what``: the pieces are cut out, then
   a leading "remind me", "set a reminder", "to", "that", "about" and a trailing "please" go.

Conventions
-----------
- Times of day are wall-clock times in the user's zone. Without am/pm they are on the 24-hour
  clock ("at 5" is 05:00; say "5pm" or "17:00"), except after "afternoon", "evening", "night" or
  "tonight", where hours 1-11 are pm ("tonight at 11" is 23:00). "12am" is 00:00, "12pm" noon.
- "midnight" (or "24:00") is the *end* of the named day: "on friday at midnight" is the midnight
  between Friday and Saturday, a bare "at midnight" the coming one.
- Parts of the day: morning 09:00, afternoon 15:00, evening 18:00, night and tonight 20:00.
- A time of day with no day is the next time the clock shows it: today, else tomorrow.
- "today", "tomorrow", "tonight", "this evening" and dates with a year mean that day; a time on
  it that has passed raises `TimeInPast` rather than moving to another day.
- A weekday ("monday", "on monday", "this monday") is the next such day: today if the time is
  still ahead, else in a week. "next monday" is the first Monday *after* today: on a Monday that
  is in 7 days, on a Sunday it is tomorrow.
- Dates are ISO ("2026-12-24") or use a month name in either order ("December 24", "24th of Dec",
  optionally with a year). Numeric day/month dates ("24/12") are refused as ambiguous. Without a
  year a date is the next such date (this year, else next year); "on the 3rd" is the next 3rd of
  a month that is still ahead (months without a 31st are skipped).
- Every number-like word needs a marker to count as a time: "at", "@", "by", "around", am/pm, a
  colon or "o'clock". "at 5", "by 5pm" and "17:30" are times; "buy 5 eggs" and "by 5" are not.
- Durations add exactly to ``now``: "in 24 hours" is 24 elapsed hours even across a DST change.
  Only whole days or weeks followed by a time ("in 3 days at 5pm") pick a calendar day (today's
  local date plus N) and a wall time. Months and years are refused: their lengths vary.
- DST gap: a wall time that does not exist (02:30 on 2026-03-08 in New York) becomes the first
  valid instant after it, the moment the clocks jump (03:00 EDT).
- DST overlap: a wall time that happens twice (01:30 on 2026-11-01 in New York) is its first
  occurrence (fold=0), unless that has passed and the second has not, so "at 1:30" said at
  01:45 EDT is 01:30 EST 45 minutes later, the next time the clock shows 1:30.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Final, TypeVar, final
from zoneinfo import ZoneInfo

from trio_companion.services.reminders.errors import (
    NothingToRemind,
    TimeInPast,
    TooFarAhead,
    UnparsableTime,
)

__all__ = ["MAX_AHEAD", "PART_OF_DAY_TIMES", "ParsedReminder", "parse_reminder"]

# Policy: a year ahead, plus a leap day so "in a year" and "on <today's date next year>" fit.
# Further than that is more often a typo ("in 500 days") than a plan.
MAX_AHEAD: Final = timedelta(days=366)

# Policy: the wall-clock minutes of a part of the day said without a time ("tomorrow morning").
PART_OF_DAY_TIMES: Final = {
    "morning": 9 * 60,
    "afternoon": 15 * 60,
    "evening": 18 * 60,
    "night": 20 * 60,
}
_PM_PARTS: Final = frozenset({"afternoon", "evening", "night"})
_MIDNIGHT: Final = 24 * 60  # the end of a day, resolved as 00:00 of the next one


@final
@dataclass(frozen=True, slots=True)
class ParsedReminder:
    """What to remind of and when.

    ``when`` is aware and in UTC; ``what`` is the reminder text without the time phrase and the
    "remind me to" wrapping; ``matched`` is the time phrase as the user wrote it (its pieces
    joined by spaces when they were apart).
    """

    when: datetime
    what: str
    matched: str


# --- vocabulary ------------------------------------------------------------------------------

_UNIT_SECONDS: Final = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * 86400),
}
_NUMBER_WORDS: Final = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
    "a couple of": 2, "couple of": 2,
}  # fmt: skip
_WEEKDAYS: Final = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6,
}  # fmt: skip
_WEEKDAY_ABBREVIATIONS: Final = {
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4,
    "sat": 5, "sun": 6,
}  # fmt: skip
_MONTHS: Final = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12,
    "dec": 12,
}  # fmt: skip
_MONTH_NAMES: Final = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first so "minutes" wins over "m"."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_UNIT: Final = _alternation(_UNIT_SECONDS)
_UNIT_WORD: Final = _alternation(frozenset(u for u in _UNIT_SECONDS if len(u) > 1))
_NUMBER_WORD: Final = _alternation(_NUMBER_WORDS).replace(r"\ ", r"\s+")
_MONTH: Final = _alternation(_MONTHS)
_HALF: Final = r"(?:\s+and\s+a\s+half)?"

# One term of a duration: "1h30", "half an hour", "2.5 hours", "an hour and a half".
_TERM: Final = (
    r"(?:\d+\s*h\s*\d{1,2}(?![\w:.])"
    rf"|(?:a\s+)?(?:half|quarter)\s+(?:of\s+)?(?:an?\s+)?(?:{_UNIT_WORD})(?![a-z])"
    rf"|\d+(?:\.\d+)?{_HALF}\s*(?:{_UNIT})(?![a-z]){_HALF}"
    rf"|(?:{_NUMBER_WORD}){_HALF}\s+(?:{_UNIT_WORD})(?![a-z]){_HALF})"
)
_DURATION_BODY: Final = rf"{_TERM}(?:(?:\s*,\s*|\s+and\s+|\s*){_TERM})*"
_I: Final = re.IGNORECASE
_TERM_RE: Final = re.compile(_TERM, _I)
_COMPACT_TERM_RE: Final = re.compile(r"(?P<hours>\d+)\s*h\s*(?P<minutes>\d{1,2})", _I)
_FRACTION_TERM_RE: Final = re.compile(
    r"(?:a\s+)?(?P<fraction>half|quarter)\s+(?:of\s+)?(?:an?\s+)?(?P<unit>\w+)", _I
)
_NUMBER_TERM_RE: Final = re.compile(
    rf"(?P<number>\d+(?:\.\d+)?|{_NUMBER_WORD})(?P<half>\s+and\s+a\s+half)?\s*"
    rf"(?P<unit>{_UNIT})(?P<and_half>\s+and\s+a\s+half)?",
    _I,
)

_DURATION_RE: Final = re.compile(
    rf"(?<![\w])(?:(?:in|after)\s+(?P<a>{_DURATION_BODY})"
    rf"|(?P<b>{_DURATION_BODY})\s+from\s+now)(?![\w])",
    _I,
)
_RELDAY_RE: Final = re.compile(
    r"(?<![\w])(?P<day>(?:the\s+)?day\s+after\s+(?:tomorrow|tmrw)|today|tomorrow|tmrw|tonight)"
    r"(?![\w'])",
    _I,
)
_WEEKDAY_RE: Final = re.compile(
    r"(?<![\w])(?:(?P<prefix>on\s+next|on|next|this|this\s+coming|coming)\s+)?"
    rf"(?P<weekday>{_alternation(_WEEKDAYS)}|{_alternation(_WEEKDAY_ABBREVIATIONS)})(?![\w'])",
    _I,
)
_ISO_DATE_RE: Final = re.compile(
    r"(?<![\w-])(?:on\s+)?(?P<year>[1-9]\d{3})-(?P<month>\d{1,2})-(?P<day>\d{1,2})(?![\w-])", _I
)
_MONTH_DAY_RE: Final = re.compile(
    rf"(?<![\w])(?:on\s+)?(?:the\s+)?(?P<month>{_MONTH})\.?\s+(?:the\s+)?(?P<day>\d{{1,2}})"
    r"(?:st|nd|rd|th)?(?:,?\s+(?P<year>[1-9]\d{3}))?(?![\w:])",
    _I,
)
_DAY_MONTH_RE: Final = re.compile(
    r"(?<![\w])(?:on\s+)?(?:the\s+)?(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
    rf"(?P<month>{_MONTH})\.?(?:,?\s+(?P<year>[1-9]\d{{3}}))?(?![\w])",
    _I,
)
_ORDINAL_DAY_RE: Final = re.compile(
    r"(?<![\w])(?:on\s+)?the\s+(?P<day>\d{1,2})(?:st|nd|rd|th)(?![\w])", _I
)
_CLOCK_RE: Final = re.compile(
    r"(?<![\w:.])(?:(?:(?P<at>at|@)|by|around)\s*)?"
    r"(?P<hour>\d{1,2})(?:(?P<sep>[:.])(?P<minute>\d{2}))?"
    r"(?:\s*(?P<meridiem>a\.?m\.?|p\.?m\.?))?(?P<oclock>\s*o'?clock)?(?![\w:])",
    _I,
)
_NAMED_TIME_RE: Final = re.compile(
    r"(?<![\w])(?:(?:at|@|by|around)\s*)?(?P<name>noon|midday|midnight)(?![\w])", _I
)
_PART_RE: Final = re.compile(
    r"(?<![\w])(?:(?P<prefix>in\s+the|this)\s+)?(?P<part>morning|afternoon|evening|night)"
    r"(?![\w'])",
    _I,
)

# Time-like phrases that are refused with a reason instead of being left in the text.
_UNSUPPORTED: Final = (
    (
        re.compile(r"(?<![\w/])(?:on\s+)?\d{1,2}/\d{1,2}(?:/\d{2,4})?(?![\w/])", _I),
        '"{phrase}" could be read day-first or month-first; write the date as 2026-12-24 or '
        "24 December.",
    ),
    (
        re.compile(
            rf"(?<![\w])(?:in|after)\s+(?:\d+(?:\.\d+)?|{_NUMBER_WORD})\s+"
            r"(?:months?|mos?|years?|yrs?)(?![\w])",
            _I,
        ),
        'Months and years vary in length, so I can\'t do "{phrase}"; give a date instead, like '
        '"on 2026-12-24 at 18:00".',
    ),
    (
        re.compile(r"(?<![\w])(?:next|this)\s+(?:week|weekend|month|year)(?![\w])", _I),
        'I can\'t place "{phrase}" on one day; name the day, like "next monday at 9am".',
    ),
    (
        re.compile(r"(?<![\w])(?:(?:every|each)\s+\w+|daily|weekly|hourly)(?![\w])", _I),
        'I can\'t do repeating reminders ("{phrase}") yet; set one for the next time.',
    ),
)
_GAP_RE: Final = re.compile(r"[\s,]*")
_T = TypeVar("_T")


# --- pieces ----------------------------------------------------------------------------------


class _Kind(enum.Enum):
    DURATION = "duration"
    DAY = "day"
    TIME = "time of day"
    PART = "part of the day"


@dataclass(frozen=True, slots=True)
class _Duration:
    seconds: Fraction
    whole_days: int | None  # set when the duration is only whole days and weeks


@dataclass(frozen=True, slots=True)
class _RelativeDay:
    offset: int
    part: str | None  # "tonight" brings its part of the day


@dataclass(frozen=True, slots=True)
class _Weekday:
    weekday: int
    strictly_after_today: bool  # "next monday"


@dataclass(frozen=True, slots=True)
class _Date:
    year: int | None
    month: int | None  # None for "on the 3rd": the next month that has that day
    day: int


@dataclass(frozen=True, slots=True)
class _Clock:
    minutes: int  # since midnight; _MIDNIGHT for the end of the day
    fixed: bool  # am/pm or a name given, so a part of the day does not move it to pm


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    today: bool  # "this evening"


_Value = _Duration | _RelativeDay | _Weekday | _Date | _Clock | _Part


@dataclass(frozen=True, slots=True)
class _Piece:
    kind: _Kind
    start: int
    end: int
    value: _Value
    needs_neighbour: bool  # a bare "monday"/"morning": counts only next to another piece


def _duration(body: str) -> _Duration:
    total = Fraction(0)
    days = Fraction(0)
    only_days = True
    for term in _TERM_RE.finditer(body):
        seconds = _term_seconds(term.group(0))
        total += seconds
        if seconds % 86400 == 0:
            days += seconds / 86400
        else:
            only_days = False
    whole = only_days and days.denominator == 1
    return _Duration(total, int(days) if whole else None)


def _term_seconds(term: str) -> Fraction:
    if (compact := _COMPACT_TERM_RE.fullmatch(term)) is not None:
        return Fraction(int(compact["hours"]) * 3600 + int(compact["minutes"]) * 60)
    if (fraction := _FRACTION_TERM_RE.fullmatch(term)) is not None:
        unit = _UNIT_SECONDS[fraction["unit"].lower()]
        return Fraction(unit, 2 if fraction["fraction"].lower() == "half" else 4)
    number = _NUMBER_TERM_RE.fullmatch(term)
    assert number is not None  # _TERM matches one of the three shapes
    text = " ".join(number["number"].lower().split())
    amount = Fraction(text) if text[0].isdigit() else Fraction(_NUMBER_WORDS[text])
    if number["half"] or number["and_half"]:
        amount += Fraction(1, 2)
    return amount * _UNIT_SECONDS[number["unit"].lower()]


def _clock(match: re.Match[str]) -> _Clock | None:
    """The time of a clock match, or None when it is not a time ("buy 5 eggs", "at 25")."""
    meridiem = (match["meridiem"] or "").replace(".", "").lower()
    has_colon = match["sep"] == ":"
    if not (match["at"] or meridiem or has_colon or match["oclock"]):
        return None
    if match["sep"] == "." and not (match["at"] or meridiem):
        return None  # "3.50" is a price or a version more often than a time
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if minute > 59:
        return None
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
        return _Clock(hour * 60 + minute, fixed=True)
    if hour == 24 and minute == 0:
        return _Clock(_MIDNIGHT, fixed=True)
    if hour > 23:
        return None
    return _Clock(hour * 60 + minute, fixed=False)


def _scan(text: str) -> list[_Piece]:
    found: list[_Piece] = []

    def add(kind: _Kind, match: re.Match[str], value: _Value, *, bare: bool = False) -> None:
        found.append(_Piece(kind, match.start(), match.end(), value, bare))

    for m in _DURATION_RE.finditer(text):
        add(_Kind.DURATION, m, _duration(m["a"] or m["b"]))
    for m in _RELDAY_RE.finditer(text):
        word = " ".join(m["day"].lower().split())
        offset = 2 if "after" in word else 1 if word in ("tomorrow", "tmrw") else 0
        add(_Kind.DAY, m, _RelativeDay(offset, "night" if word == "tonight" else None))
    for m in _WEEKDAY_RE.finditer(text):
        name, prefix = m["weekday"].lower(), " ".join((m["prefix"] or "").lower().split())
        if name in _WEEKDAY_ABBREVIATIONS and not prefix:
            continue  # "sat on the couch", "the sun at 5pm"
        weekday = _WEEKDAYS[name] if name in _WEEKDAYS else _WEEKDAY_ABBREVIATIONS[name]
        add(_Kind.DAY, m, _Weekday(weekday, "next" in prefix), bare=not prefix)
    for regex in (_ISO_DATE_RE, _MONTH_DAY_RE, _DAY_MONTH_RE):
        for m in regex.finditer(text):
            month = int(m["month"]) if m["month"].isdigit() else _MONTHS[m["month"].lower()]
            year = int(m["year"]) if m["year"] else None
            add(_Kind.DAY, m, _Date(year, month, int(m["day"])))
    for m in _ORDINAL_DAY_RE.finditer(text):
        add(_Kind.DAY, m, _Date(None, None, int(m["day"])))
    for m in _CLOCK_RE.finditer(text):
        if (clock := _clock(m)) is not None:
            add(_Kind.TIME, m, clock)
    for m in _NAMED_TIME_RE.finditer(text):
        minutes = _MIDNIGHT if m["name"].lower() == "midnight" else 12 * 60
        add(_Kind.TIME, m, _Clock(minutes, fixed=True))
    for m in _PART_RE.finditer(text):
        prefix = " ".join((m["prefix"] or "").lower().split())
        add(_Kind.PART, m, _Part(m["part"].lower(), prefix == "this"), bare=not prefix)

    chosen: list[_Piece] = []
    for piece in sorted(found, key=lambda p: (p.start, p.start - p.end)):
        if not chosen or piece.start >= chosen[-1].end:
            chosen.append(piece)
    return [p for p in chosen if not p.needs_neighbour or _has_neighbour(text, p, chosen)]


def _adjacent(text: str, left: int, right: int) -> bool:
    return left <= right and _GAP_RE.fullmatch(text, left, right) is not None


def _has_neighbour(text: str, piece: _Piece, pieces: list[_Piece]) -> bool:
    return any(
        other is not piece
        and (_adjacent(text, other.end, piece.start) or _adjacent(text, piece.end, other.start))
        for other in pieces
    )


def _refuse_unsupported(text: str, pieces: list[_Piece]) -> None:
    for regex, reason in _UNSUPPORTED:
        for m in regex.finditer(text):
            near = not pieces or any(
                _adjacent(text, p.end, m.start())
                or _adjacent(text, m.end(), p.start)
                or (p.start < m.end() and m.start() < p.end)  # "every monday" holds "monday"
                for p in pieces
            )
            if near:
                raise UnparsableTime(text, reason.format(phrase=m.group(0)))


# --- resolution ------------------------------------------------------------------------------


def _instants(day: date, minutes: int, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC, in order) at which the clock in ``tz`` shows ``minutes`` on ``day``.

    Usually one; two in a DST overlap (fold=0 first); in a DST gap, the instant the clocks jump.
    """
    if minutes == _MIDNIGHT:
        day, minutes = day + timedelta(days=1), 0
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return sorted({first, second})
    return [_gap_end(min(first, second), max(first, second), tz)]


def _gap_end(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (``before``, ``after``] whose UTC offset differs from ``before``'s."""
    offset = before.astimezone(tz).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:  # transitions fall on whole seconds
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _next_on(day: date, minutes: int, tz: ZoneInfo, now: datetime) -> datetime | None:
    return next((i for i in _instants(day, minutes, tz) if i > now), None)


def _on_day(day: date, minutes: int, tz: ZoneInfo, now: datetime) -> datetime:
    """The instant ``minutes`` on ``day``, which must be after ``now``."""
    if (instant := _next_on(day, minutes, tz, now)) is None:
        raise TimeInPast(_instants(day, minutes, tz)[-1], tz)
    return instant


def _minutes(clock: _Clock | None, part: str | None) -> int | None:
    if clock is None:
        return None if part is None else PART_OF_DAY_TIMES[part]
    if part in _PM_PARTS and not clock.fixed and 60 <= clock.minutes < 12 * 60:
        return clock.minutes + 12 * 60
    return clock.minutes


def _only(text: str, pieces: list[_Piece], kind: _Kind) -> _Piece | None:
    of_kind = [p for p in pieces if p.kind is kind]
    if len(of_kind) > 1:
        shown = " and ".join(f'"{text[p.start : p.end]}"' for p in of_kind)
        raise UnparsableTime(text, f"I found more than one {kind.value}: {shown}. Which one?")
    return of_kind[0] if of_kind else None


def _resolve(text: str, pieces: list[_Piece], now: datetime, tz: ZoneInfo) -> datetime:
    duration_piece, day_piece, clock_piece, part_piece = (_only(text, pieces, k) for k in _Kind)
    today = now.astimezone(tz).date()
    clock = _value(clock_piece, _Clock)
    part = _value(part_piece, _Part)
    day: _RelativeDay | _Weekday | _Date | None = None
    if day_piece is not None:
        assert isinstance(day_piece.value, _RelativeDay | _Weekday | _Date)
        day = day_piece.value
    part_name = None if part is None else part.name
    if part_piece is not None and day_piece is not None:
        assert part is not None
        # "tomorrow this evening", "tonight in the morning"
        if part.today or (isinstance(day, _RelativeDay) and day.part is not None):
            raise _conflict(text, day_piece, part_piece)
    if part is not None and part.today:
        day = _RelativeDay(0, None)
    if isinstance(day, _RelativeDay) and day.part is not None:
        part_name = day.part
    minutes = _minutes(clock, part_name)

    if duration_piece is not None:
        duration = _value(duration_piece, _Duration)
        assert duration is not None
        if day is not None:
            clash = day_piece or part_piece
            assert clash is not None
            raise _conflict(text, duration_piece, clash)
        if minutes is None:
            return _after(now, duration.seconds, tz)
        if duration.whole_days is None:  # "in 2 hours at 5pm"
            clash = clock_piece or part_piece
            assert clash is not None
            raise _conflict(text, duration_piece, clash)
        if duration.whole_days > MAX_AHEAD.days + 1:
            raise TooFarAhead(None, tz, MAX_AHEAD)
        return _on_day(today + timedelta(days=duration.whole_days), minutes, tz, now)

    if minutes is None:
        assert day_piece is not None  # there is a piece, and it is neither time nor duration
        phrase = text[day_piece.start : day_piece.end]
        raise UnparsableTime(text, f'"{phrase}" needs a time of day, like "{phrase} at 9am".')
    if day is None:  # the next time the clock shows it
        for offset in range(3):
            if (instant := _next_on(today + timedelta(days=offset), minutes, tz, now)) is not None:
                return instant
        raise AssertionError("every wall time recurs within three days")
    if isinstance(day, _RelativeDay):
        return _on_day(today + timedelta(days=day.offset), minutes, tz, now)
    if isinstance(day, _Weekday):
        ahead = (day.weekday - today.weekday()) % 7
        if day.strictly_after_today and ahead == 0:
            ahead = 7
        target = today + timedelta(days=ahead)
        instant = _next_on(target, minutes, tz, now)
        return instant or _on_day(target + timedelta(days=7), minutes, tz, now)
    return _on_date(text, day, minutes, tz, now, today)


def _value(piece: _Piece | None, kind: type[_T]) -> _T | None:
    if piece is None:
        return None
    assert isinstance(piece.value, kind)
    return piece.value


def _on_date(
    text: str, value: _Date, minutes: int, tz: ZoneInfo, now: datetime, today: date
) -> datetime:
    if value.month is None:
        first_of_month = today.replace(day=1)
        for ahead in range(13):
            month = (first_of_month.month - 1 + ahead) % 12 + 1
            year = first_of_month.year + (first_of_month.month - 1 + ahead) // 12
            try:
                target = date(year, month, value.day)
            except ValueError:
                continue
            if (instant := _next_on(target, minutes, tz, now)) is not None:
                return instant
        raise UnparsableTime(text, f"No month has a day {value.day}.")
    name = _MONTH_NAMES[value.month - 1] if 1 <= value.month <= 12 else None
    if value.year is not None:
        try:
            target = date(value.year, value.month, value.day)
        except ValueError:
            shown = (
                f"{value.day} {name} {value.year}"
                if name
                else f"{value.year}-{value.month:02}-{value.day:02}"
            )
            raise UnparsableTime(text, f"There is no {shown}.") from None
        # Checked on the date first: instants far outside the range overflow datetime.
        if target < today - timedelta(days=1):
            raise TimeInPast(_instants(target, minutes, tz)[-1], tz)
        if target > today + MAX_AHEAD + timedelta(days=1):
            raise TooFarAhead(None, tz, MAX_AHEAD)
        return _on_day(target, minutes, tz, now)
    for year in (today.year, today.year + 1):
        try:
            target = date(year, value.month, value.day)
        except ValueError:
            continue
        if (instant := _next_on(target, minutes, tz, now)) is not None:
            return instant
    raise UnparsableTime(
        text, f"There is no {value.day} {name} in {today.year} or {today.year + 1}."
    )


def _after(now: datetime, seconds: Fraction, tz: ZoneInfo) -> datetime:
    if seconds > Fraction(MAX_AHEAD.total_seconds()):
        when = None if seconds > 10**10 else now + timedelta(seconds=float(seconds))
        raise TooFarAhead(when, tz, MAX_AHEAD)
    return now + timedelta(microseconds=round(seconds * 1_000_000))


def _conflict(text: str, a: _Piece, b: _Piece) -> UnparsableTime:
    first, second = sorted((a, b), key=lambda p: p.start)
    return UnparsableTime(
        text,
        f'"{text[first.start : first.end]}" and "{text[second.start : second.end]}" '
        "don't go together. Which one did you mean?",
    )


# --- the reminder text -----------------------------------------------------------------------

_LEAD_RE: Final = re.compile(
    r"^(?:(?:please|hey|ok|okay)[\s,]+)*(?:(?:can|could|would|will)\s+you\s+)?(?:please\s+)?"
    r"(?:remind\s+(?:me|us)|set\s+(?:me\s+)?(?:a\s+)?reminder|reminder)\b\s*[:,-]?\s*",
    _I,
)
_CONNECTOR_RE: Final = re.compile(r"^(?:to|that|about|of|for)\b\s*", _I)
_TRAIL_RE: Final = re.compile(r"(?:(?:^|[\s,;]+)(?:please|remind\s+(?:me|us)))+\s*$", _I)
_EDGE_PUNCTUATION: Final = " \t\n,;:.!-\u2013\u2014"


def _what(text: str, pieces: list[_Piece]) -> str:
    rest, position = [], 0
    for piece in pieces:
        rest.append(text[position : piece.start])
        position = piece.end
    rest.append(text[position:])
    what = re.sub(r"\s+", " ", " ".join(rest))
    what = re.sub(r"\s+([,;:.!?])", r"\1", what).strip(_EDGE_PUNCTUATION)
    what = _LEAD_RE.sub("", what).strip(_EDGE_PUNCTUATION)
    while (connector := _CONNECTOR_RE.match(what)) is not None:
        what = what[connector.end() :].strip(_EDGE_PUNCTUATION)
    return _TRAIL_RE.sub("", what).strip(_EDGE_PUNCTUATION)


# --- entry point -----------------------------------------------------------------------------


def parse_reminder(text: str, *, now: datetime, tz: ZoneInfo) -> ParsedReminder:
    """Parse "remind me in 10 minutes to stretch" into when (UTC), what and the matched phrase.

    ``now`` must be aware (any zone; it is used as an instant); ``tz`` is the user's zone, in
    which times of day and days are read. See the module docstring for the conventions.

    Raises `UnparsableTime` when no time phrase is understood or one needs more (see
    `trio_companion.services.reminders.errors`), `TimeInPast` when the time is not after ``now``,
    `TooFarAhead` beyond `MAX_AHEAD`, and `NothingToRemind` when only a time was given. Raises
    ValueError for a naive ``now`` (a programming error, not a user's).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    pieces = _scan(text)
    _refuse_unsupported(text, pieces)
    if not pieces:
        raise UnparsableTime(text)
    when = _resolve(text, pieces, now, tz)
    if when <= now:
        raise TimeInPast(when, tz)
    if when - now > MAX_AHEAD:
        raise TooFarAhead(when, tz, MAX_AHEAD)
    matched = " ".join(text[p.start : p.end] for p in pieces)
    what = _what(text, pieces)
    if not what:
        raise NothingToRemind(when, matched)
    return ParsedReminder(when=when, what=what, matched=matched)
