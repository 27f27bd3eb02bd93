"""Reminder phrases: a table of phrase x zone x now, the errors, and properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_companion.errors import CompanionError
from trio_companion.services.reminders import (
    MAX_AHEAD,
    NothingToRemind,
    ParsedReminder,
    ReminderError,
    TimeInPast,
    TooFarAhead,
    UnparsableTime,
    parse_reminder,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
KOLKATA = ZoneInfo("Asia/Kolkata")
SYDNEY = ZoneInfo("Australia/Sydney")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # half-hour DST shift
Z = ZoneInfo("UTC")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# Wednesday 2026-06-10 10:00 UTC: 12:00 in Berlin (CEST), 06:00 in New York (EDT).
WED = utc(2026, 6, 10, 10)
# The 2026 DST transitions: New York 03-08 07:00 UTC (02:00 EST -> 03:00 EDT) and 11-01 06:00 UTC
# (02:00 EDT -> 01:00 EST); Berlin 03-29 01:00 UTC (02:00 CET -> 03:00 CEST) and 10-25 01:00 UTC
# (03:00 CEST -> 02:00 CET); Sydney 10-03 16:00 UTC (02:00 -> 03:00); Lord Howe 10-03 15:30 UTC
# (02:00 -> 02:30).
NY_SPRING_EVE = utc(2026, 3, 7, 17)  # Saturday 12:00 EST
BERLIN_SPRING_EVE = utc(2026, 3, 28, 12)  # Saturday 13:00 CET
NY_FALL_EVE = utc(2026, 10, 31, 16)  # Saturday 12:00 EDT
BERLIN_FALL_EVE = utc(2026, 10, 24, 12)  # Saturday 14:00 CEST

PARSES = [
    # the required phrases
    ("in 10 minutes to call mom", BERLIN, WED, utc(2026, 6, 10, 10, 10), "call mom"),
    ("in 10m stretch", NY, WED, utc(2026, 6, 10, 10, 10), "stretch"),
    ("remind me in 10 min to drink water", Z, WED, utc(2026, 6, 10, 10, 10), "drink water"),
    ("in half an hour to check the oven", BERLIN, WED, utc(2026, 6, 10, 10, 30), "check the oven"),
    ("in an hour to move the car", NY, WED, utc(2026, 6, 10, 11), "move the car"),
    ("in 2 hours 30 minutes to leave", TOKYO, WED, utc(2026, 6, 10, 12, 30), "leave"),
    ("in 1h30m take the pizza out", Z, WED, utc(2026, 6, 10, 11, 30), "take the pizza out"),
    ("in 3 days to pay rent", BERLIN, WED, utc(2026, 6, 13, 10), "pay rent"),
    ("in a week to water the plants", NY, WED, utc(2026, 6, 17, 10), "water the plants"),
    ("at 5pm call mom", BERLIN, WED, utc(2026, 6, 10, 15), "call mom"),
    ("at 5:30 pm feed the cat", NY, WED, utc(2026, 6, 10, 21, 30), "feed the cat"),
    ("at 17:00 standup", TOKYO, WED, utc(2026, 6, 11, 8), "standup"),  # 17:00 JST passed
    ("tomorrow at 9am dentist", KOLKATA, WED, utc(2026, 6, 11, 3, 30), "dentist"),
    ("tomorrow morning to call the bank", BERLIN, WED, utc(2026, 6, 11, 7), "call the bank"),
    ("tonight take out the trash", NY, WED, utc(2026, 6, 11, 0), "take out the trash"),
    ("next monday at noon lunch with Sam", BERLIN, WED, utc(2026, 6, 15, 10), "lunch with Sam"),
    ("on monday at 10 gym", NY, WED, utc(2026, 6, 15, 14), "gym"),
    ("on 2026-12-24 at 18:00 wrap presents", BERLIN, WED, utc(2026, 12, 24, 17), "wrap presents"),
    ("December 24 at 18:00 wrap presents", NY, WED, utc(2026, 12, 24, 23), "wrap presents"),
    ("on 24 December 2026 at 6pm wrap gifts", BERLIN, WED, utc(2026, 12, 24, 17), "wrap gifts"),
    ("on the 24th of dec at 18:00 wrap", BERLIN, WED, utc(2026, 12, 24, 17), "wrap"),
    ("on the 3rd at 9 pay rent", BERLIN, WED, utc(2026, 7, 3, 7), "pay rent"),
    ("on the 31st at 9 pay rent", BERLIN, WED, utc(2026, 7, 31, 7), "pay rent"),  # no 31 June
    ("on the 10th at 13:00 pay rent", BERLIN, WED, utc(2026, 6, 10, 11), "pay rent"),
    ("at noon eat", BERLIN, WED, utc(2026, 6, 11, 10), "eat"),  # exactly noon now: tomorrow
    ("at midnight sleep", BERLIN, WED, utc(2026, 6, 10, 22), "sleep"),
    ("on friday at midnight submit", BERLIN, WED, utc(2026, 6, 12, 22), "submit"),  # end of Fri
    # where the "remind me" and the time sit
    ("remind me to stretch in 10 minutes", Z, WED, utc(2026, 6, 10, 10, 10), "stretch"),
    ("in 10 minutes remind me to stretch", Z, WED, utc(2026, 6, 10, 10, 10), "stretch"),
    ("stretch at 5pm", Z, WED, utc(2026, 6, 10, 17), "stretch"),
    ("remind me that the oven is on in 10 minutes", Z, WED, utc(2026, 6, 10, 10, 10),
     "the oven is on"),
    ("Remind me to Call Mom tomorrow at 9am please.", Z, WED, utc(2026, 6, 11, 9), "Call Mom"),
    ("set a reminder for 5pm to call mom", Z, WED, utc(2026, 6, 10, 17), "call mom"),
    ("remind me to finish the report by 5pm", Z, WED, utc(2026, 6, 10, 17), "finish the report"),
    ("multiply by 5 at 6pm", Z, WED, utc(2026, 6, 10, 18), "multiply by 5"),
    ("remind me at 5pm to water every plant", Z, WED, utc(2026, 6, 10, 17), "water every plant"),
    ("in 5 mins: check the tea", Z, WED, utc(2026, 6, 10, 10, 5), "check the tea"),
    ("remind me tomorrow to water the plants at 8", Z, WED, utc(2026, 6, 11, 8),
     "water the plants"),
    ("remind me to buy the sunday paper at 5pm", Z, WED, utc(2026, 6, 10, 17),
     "buy the sunday paper"),
    # more duration shapes
    ("in an hour and a half to leave", Z, WED, utc(2026, 6, 10, 11, 30), "leave"),
    ("in 1.5 hours to leave", Z, WED, utc(2026, 6, 10, 11, 30), "leave"),
    ("in 1h30 to leave", Z, WED, utc(2026, 6, 10, 11, 30), "leave"),
    ("10 minutes from now check the tea", Z, WED, utc(2026, 6, 10, 10, 10), "check the tea"),
    ("in a couple of hours to call back", Z, WED, utc(2026, 6, 10, 12), "call back"),
    ("in 366 days renew", Z, WED, utc(2027, 6, 11, 10), "renew"),  # MAX_AHEAD exactly
    ("in 3 days at 5pm pay rent", BERLIN, WED, utc(2026, 6, 13, 15), "pay rent"),
    # 12-hour edges and parts of the day
    ("remind me at 12am to sleep", Z, WED, utc(2026, 6, 11, 0), "sleep"),
    ("remind me at 12pm to eat", Z, WED, utc(2026, 6, 10, 12), "eat"),
    ("at 9 to read", Z, WED, utc(2026, 6, 11, 9), "read"),  # 24-hour clock: 09:00, passed
    ("this afternoon do laundry", BERLIN, WED, utc(2026, 6, 10, 13), "do laundry"),
    ("this evening at 7 call dad", BERLIN, WED, utc(2026, 6, 10, 17), "call dad"),
    ("tonight at 11 lock up", BERLIN, WED, utc(2026, 6, 10, 21), "lock up"),
    ("remind me to take my meds at 8 tonight", BERLIN, WED, utc(2026, 6, 10, 18), "take my meds"),
    ("at 8:30 in the evening call", BERLIN, WED, utc(2026, 6, 10, 18, 30), "call"),
    ("in the morning buy bread", BERLIN, WED, utc(2026, 6, 11, 7), "buy bread"),
    ("friday evening drinks", BERLIN, WED, utc(2026, 6, 12, 16), "drinks"),
    ("the day after tomorrow at 8 hike", BERLIN, WED, utc(2026, 6, 12, 6), "hike"),
    # weekdays: today if still ahead, "next" is never today
    ("on wednesday at 13:00 review", BERLIN, WED, utc(2026, 6, 10, 11), "review"),
    ("on wednesday at 11:00 review", BERLIN, WED, utc(2026, 6, 17, 9), "review"),
    ("next wednesday at 13:00 review", BERLIN, WED, utc(2026, 6, 17, 11), "review"),
    ("next thursday at 9am review", BERLIN, WED, utc(2026, 6, 11, 7), "review"),
    ("on sat at 5pm party", BERLIN, WED, utc(2026, 6, 13, 15), "party"),
    # midnight boundaries: the user's date, not UTC's
    ("at 00:00 reset", BERLIN, utc(2026, 6, 10, 21, 59), utc(2026, 6, 10, 22), "reset"),
    ("tomorrow at 8am run", BERLIN, utc(2026, 6, 10, 21, 59), utc(2026, 6, 11, 6), "run"),
    ("tomorrow at 8am run", BERLIN, utc(2026, 6, 10, 22, 0, 30), utc(2026, 6, 12, 6), "run"),
    ("tomorrow at 9am run", NY, utc(2026, 6, 11, 2), utc(2026, 6, 11, 13), "run"),
    ("today at 23:00 log", NY, utc(2026, 6, 11, 2), utc(2026, 6, 11, 3), "log"),
    # month and year rollovers
    ("tomorrow at 10:00 brunch", BERLIN, utc(2026, 12, 31, 22), utc(2027, 1, 1, 9), "brunch"),
    ("in 3 hours toast", BERLIN, utc(2026, 12, 31, 22), utc(2027, 1, 1, 1), "toast"),
    ("on December 24 at 18:00 wrap", BERLIN, utc(2026, 12, 31, 22), utc(2027, 12, 24, 17), "wrap"),
    ("on February 1 at 9am pay", TOKYO, utc(2026, 1, 31, 12), utc(2026, 2, 1), "pay"),
    ("in 2 days to call", NY, utc(2026, 4, 30, 20), utc(2026, 5, 2, 20), "call"),
    ("on monday at 9 plan", Z, utc(2026, 12, 30, 12), utc(2027, 1, 4, 9), "plan"),
    # leap day 2028-02-29
    ("tomorrow at 9am leap", Z, utc(2028, 2, 28, 12), utc(2028, 2, 29, 9), "leap"),
    ("on February 29 at 9am leap", BERLIN, utc(2028, 2, 28, 12), utc(2028, 2, 29, 8), "leap"),
    ("on 2028-02-29 at 18:00 leap", NY, utc(2028, 2, 28, 12), utc(2028, 2, 29, 23), "leap"),
    ("in 1 day after leap", Z, utc(2028, 2, 29, 12), utc(2028, 3, 1, 12), "after leap"),
    ("on February 29 at 9am leap", Z, utc(2027, 3, 1, 12), utc(2028, 2, 29, 9), "leap"),
    ("on february 28 at 12:00 after", Z, utc(2028, 2, 29, 12), utc(2029, 2, 28, 12), "after"),
    # DST gaps: the first valid instant, when the clocks jump
    ("at 2:30 feed the baby", NY, NY_SPRING_EVE, utc(2026, 3, 8, 7), "feed the baby"),
    ("tomorrow at 2:30am feed", NY, NY_SPRING_EVE, utc(2026, 3, 8, 7), "feed"),
    ("tomorrow at 3:30am feed", NY, NY_SPRING_EVE, utc(2026, 3, 8, 7, 30), "feed"),
    ("tomorrow at 1:30am feed", NY, NY_SPRING_EVE, utc(2026, 3, 8, 6, 30), "feed"),
    ("tomorrow at 02:30 feed", BERLIN, BERLIN_SPRING_EVE, utc(2026, 3, 29, 1), "feed"),
    ("tomorrow at 03:00 feed", BERLIN, BERLIN_SPRING_EVE, utc(2026, 3, 29, 1), "feed"),
    ("tomorrow at 01:59 feed", BERLIN, BERLIN_SPRING_EVE, utc(2026, 3, 29, 0, 59), "feed"),
    ("tomorrow at 2:30 feed", SYDNEY, utc(2026, 10, 3), utc(2026, 10, 3, 16), "feed"),
    ("tomorrow at 2:15 feed", LORD_HOWE, utc(2026, 10, 3), utc(2026, 10, 3, 15, 30), "feed"),
    # DST overlaps: the first occurrence, unless only the second is still ahead
    ("tomorrow at 1:30am feed", NY, NY_FALL_EVE, utc(2026, 11, 1, 5, 30), "feed"),
    ("at 1:30 feed", NY, utc(2026, 11, 1, 5, 45), utc(2026, 11, 1, 6, 30), "feed"),
    ("at 1:30 feed", NY, utc(2026, 11, 1, 6, 45), utc(2026, 11, 2, 6, 30), "feed"),
    ("tomorrow at 02:30 feed", BERLIN, BERLIN_FALL_EVE, utc(2026, 10, 25, 0, 30), "feed"),
    ("at 02:30 feed", BERLIN, utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 30), "feed"),
    ("tomorrow at 03:00 feed", BERLIN, BERLIN_FALL_EVE, utc(2026, 10, 25, 2), "feed"),
    ("tomorrow at noon feed", NY, NY_FALL_EVE, utc(2026, 11, 1, 17), "feed"),
    # durations are elapsed time, not wall time; "in N days at T" is the calendar day
    ("in 2 hours feed", NY, utc(2026, 3, 8, 6), utc(2026, 3, 8, 8), "feed"),
    ("in 1 day feed", NY, NY_SPRING_EVE, utc(2026, 3, 8, 17), "feed"),  # 13:00 EDT
    ("in 1 day at 12:00 feed", NY, NY_SPRING_EVE, utc(2026, 3, 8, 16), "feed"),
    ("in 24 hours feed", NY, NY_FALL_EVE, utc(2026, 11, 1, 16), "feed"),  # 11:00 EST
]  # fmt: skip


@pytest.mark.parametrize(("text", "tz", "now", "when", "what"), PARSES)
def test_parses(text: str, tz: ZoneInfo, now: datetime, when: datetime, what: str) -> None:
    parsed = parse_reminder(text, now=now, tz=tz)
    assert (parsed.when, parsed.what) == (when, what)
    assert parsed.when.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("remind me in 10 minutes to stretch", "in 10 minutes"),
        ("remind me tomorrow to water the plants at 8", "tomorrow at 8"),
        ("on 2026-12-24 at 18:00 wrap presents", "on 2026-12-24 at 18:00"),
        ("Friday Evening drinks", "Friday Evening"),
        ("set a reminder for 5pm to call mom", "5pm"),
    ],
)
def test_matched_is_the_time_phrase_as_written(text: str, matched: str) -> None:
    assert parse_reminder(text, now=WED, tz=BERLIN).matched == matched


def test_the_result_is_a_frozen_value() -> None:
    parsed = parse_reminder("in 10 minutes to stretch", now=WED, tz=Z)
    assert parsed == ParsedReminder(utc(2026, 6, 10, 10, 10), "stretch", "in 10 minutes")
    with pytest.raises(AttributeError):
        parsed.what = "x"  # type: ignore[misc]


def test_now_may_be_in_any_zone() -> None:
    parsed = parse_reminder("in 10 minutes to stretch", now=WED.astimezone(TOKYO), tz=NY)
    assert parsed.when == utc(2026, 6, 10, 10, 10)
    assert parsed.when.tzinfo is UTC


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_reminder("in 10 minutes to stretch", now=datetime(2026, 6, 10), tz=Z)


EXAMPLES_TAIL = 'Try something like "in 10 minutes to stretch"'

ERRORS = [
    ("", UnparsableTime, "I couldn't find a time in that."),
    ("hello there", UnparsableTime, "I couldn't find a time in that."),
    ("remind me to call mom", UnparsableTime, "I couldn't find a time in that."),
    ("in 10 minuets to stretch", UnparsableTime, "I couldn't find a time in that."),
    ("at 25:00 to stretch", UnparsableTime, "I couldn't find a time in that."),
    (
        "on 24/12 at 18:00 wrap presents",
        UnparsableTime,
        '"on 24/12" could be read day-first or month-first; write the date as 2026-12-24 or '
        "24 December.",
    ),
    (
        "in 2 months renew the passport",
        UnparsableTime,
        'Months and years vary in length, so I can\'t do "in 2 months"; give a date instead',
    ),
    (
        "next week at 5pm plan",
        UnparsableTime,
        'I can\'t place "next week" on one day; name the day, like "next monday at 9am".',
    ),
    (
        "tomorrow call mom",
        UnparsableTime,
        '"tomorrow" needs a time of day, like "tomorrow at 9am".',
    ),
    ("on monday gym", UnparsableTime, '"on monday" needs a time of day'),
    (
        "at 5pm and at 6pm call",
        UnparsableTime,
        'I found more than one time of day: "at 5pm" and "at 6pm". Which one?',
    ),
    ("tomorrow on friday at 5pm call", UnparsableTime, "I found more than one day"),
    (
        "remind me every day at 9 to take pills",
        UnparsableTime,
        'I can\'t do repeating reminders ("every day") yet; set one for the next time.',
    ),
    ("daily at 9 pills", UnparsableTime, 'repeating reminders ("daily")'),
    ("every monday at 9 gym", UnparsableTime, 'repeating reminders ("every monday")'),
    ("on the 32nd at 9 call", UnparsableTime, "No month has a day 32."),
    ("tonight in the morning call", UnparsableTime, "don't go together"),
    ("in 3 days tomorrow at 9 call", UnparsableTime, "don't go together"),
    (
        "in 2 hours at 5pm call",
        UnparsableTime,
        '"in 2 hours" and "at 5pm" don\'t go together. Which one did you mean?',
    ),
    ("on 2026-02-30 at 9 call", UnparsableTime, "There is no 30 February 2026."),
    ("on 2026-13-01 at 9 call", UnparsableTime, "There is no 2026-13-01."),
    ("on February 29 at 9 call", UnparsableTime, "There is no 29 February in 2026 or 2027."),
    (
        "on 2020-01-01 at 9am call",
        TimeInPast,
        "Wednesday 1 January 2020 at 09:00 CET has already passed. Pick a time in the future",
    ),
    ("today at 9am call", TimeInPast, "Wednesday 10 June 2026 at 09:00 CEST has already passed."),
    ("this morning call", TimeInPast, "Wednesday 10 June 2026 at 09:00 CEST has already passed."),
    ("in 0 minutes call", TimeInPast, "has already passed"),
    (
        "in 367 days call",
        TooFarAhead,
        "Saturday 12 June 2027 at 12:00 CEST is too far ahead: I keep reminders for at most "
        "366 days. Pick a nearer time.",
    ),
    ("on 2027-06-12 at 12:00 call", TooFarAhead, "is too far ahead"),
    ("on 2999-01-01 at 12:00 call", TooFarAhead, "That is too far ahead"),
    ("in 99999999999 days call", TooFarAhead, "That is too far ahead"),
    (
        "in 10 min",
        NothingToRemind,
        'What should I remind you of? Say it with the time, like "in 10 min to stretch".',
    ),
    ("remind me at 5pm, please", NothingToRemind, "What should I remind you of?"),
]


@pytest.mark.parametrize(("text", "error", "message"), ERRORS)
def test_errors(text: str, error: type[ReminderError], message: str) -> None:
    with pytest.raises(error) as raised:
        parse_reminder(text, now=WED, tz=BERLIN)
    assert message in str(raised.value)
    assert isinstance(raised.value, CompanionError)
    if error is UnparsableTime:
        assert EXAMPLES_TAIL in str(raised.value)
        assert str(raised.value).endswith('"on 2026-12-24 at 18:00 to wrap presents".')


def test_error_fields() -> None:
    with pytest.raises(TimeInPast) as past:
        parse_reminder("today at 9am call", now=WED, tz=BERLIN)
    assert past.value.when == utc(2026, 6, 10, 7)
    with pytest.raises(TooFarAhead) as far:
        parse_reminder("in 367 days call", now=WED, tz=BERLIN)
    assert (far.value.when, far.value.limit) == (WED + timedelta(days=367), MAX_AHEAD)
    with pytest.raises(NothingToRemind) as nothing:
        parse_reminder("tomorrow at 9am", now=WED, tz=BERLIN)
    assert (nothing.value.when, nothing.value.matched) == (utc(2026, 6, 11, 7), "tomorrow at 9am")
    with pytest.raises(UnparsableTime) as unparsable:
        parse_reminder("hello", now=WED, tz=BERLIN)
    assert (unparsable.value.text, unparsable.value.problem) == ("hello", None)


# --- properties -------------------------------------------------------------------------------

ZONES = [Z, NY, BERLIN, TOKYO, KOLKATA, SYDNEY, LORD_HOWE, ZoneInfo("America/St_Johns")]
NOWS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
TRANSITIONS = [
    (NY, utc(2026, 3, 8, 7)),
    (NY, utc(2026, 11, 1, 6)),
    (BERLIN, utc(2026, 3, 29, 1)),
    (BERLIN, utc(2026, 10, 25, 1)),
    (SYDNEY, utc(2026, 10, 3, 16)),
    (SYDNEY, utc(2026, 4, 4, 16)),
    (LORD_HOWE, utc(2026, 10, 3, 15, 30)),
    (LORD_HOWE, utc(2026, 4, 4, 15)),
]


@st.composite
def zones_and_nows(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and a now: anywhere in 2026-2030, or within 36 hours of one of its DST changes."""
    if draw(st.booleans()):
        return draw(st.sampled_from(ZONES)), draw(NOWS)
    tz, transition = draw(st.sampled_from(TRANSITIONS))
    offset = draw(st.integers(-36 * 3600, 36 * 3600))
    return tz, transition + timedelta(seconds=offset)


WHATS = st.sampled_from(["call mom", "stretch", "Take the pizza out!", "check the oven, again"])
UNITS = {
    "minutes": (["m", "min", "mins", "minute", "minutes"], 366 * 24 * 60),
    "hours": (["h", "hr", "hrs", "hour", "hours"], 366 * 24),
    "days": (["d", "day", "days"], 366),
    "weeks": (["w", "week", "weeks"], 52),
}


@st.composite
def durations(draw: st.DrawFn) -> tuple[str, timedelta]:
    unit = draw(st.sampled_from(sorted(UNITS)))
    spellings, most = UNITS[unit]
    n = draw(st.integers(min_value=1, max_value=most))
    spelling = draw(st.sampled_from(spellings))
    gap = "" if len(spelling) == 1 else " "
    return f"{n}{gap}{spelling}", timedelta(**{unit: n})


@given(
    duration=durations(),
    zone_and_now=zones_and_nows(),
    what=WHATS,
    shape=st.sampled_from(["in {d} to {w}", "remind me in {d} to {w}", "remind me to {w} in {d}"]),
)
def test_a_duration_adds_exactly(
    duration: tuple[str, timedelta], zone_and_now: tuple[ZoneInfo, datetime], what: str, shape: str
) -> None:
    tz, now = zone_and_now
    phrase, delta = duration
    parsed = parse_reminder(shape.format(d=phrase, w=what), now=now, tz=tz)
    assert parsed.when == now + delta
    assert parsed.what == what.rstrip("!")
    assert parsed.matched == f"in {phrase}"


def _exists(day: datetime, wall: time, tz: ZoneInfo, fold: int) -> datetime | None:
    """The instant showing ``wall`` on ``day``'s date with ``fold``, if the clock shows it."""
    local = datetime.combine(day.date(), wall, tzinfo=tz).replace(fold=fold)
    instant = local.astimezone(UTC)
    shown = instant.astimezone(tz).replace(tzinfo=None)
    return instant if shown == local.replace(tzinfo=None) else None


@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone_and_now=zones_and_nows(),
    shape=st.sampled_from(
        ["at {h:02}:{m:02}", "at {h}:{m:02}", "{h:02}:{m:02}", "at {h12}:{m:02}{p}"]
    ),
)
def test_a_time_of_day_is_the_next_time_the_clock_shows_it(
    hour: int, minute: int, zone_and_now: tuple[ZoneInfo, datetime], shape: str
) -> None:
    tz, now = zone_and_now
    h12, p = (hour % 12 or 12), ("pm" if hour >= 12 else "am")
    phrase = shape.format(h=hour, m=minute, h12=h12, p=p)
    parsed = parse_reminder(f"remind me {phrase} to stretch", now=now, tz=tz)
    when, wall = parsed.when, time(hour, minute)
    local = when.astimezone(tz)
    assert (parsed.what, parsed.matched) == ("stretch", phrase)
    assert when > now
    # Within a day of wall-clock time: 24 h, give or take the DST shift crossed on the way.
    shift = abs(local.utcoffset() - now.astimezone(tz).utcoffset())  # type: ignore[operator]
    assert when - now <= timedelta(hours=24) + shift
    if _exists(local, wall, tz, 0) is not None:
        assert (local.hour, local.minute) == (hour, minute)
    else:  # a DST gap: the instant the clocks jump
        before = (when - timedelta(seconds=1)).astimezone(tz)
        assert before.utcoffset() != local.utcoffset()
        assert before.time() < wall < local.time()
    # No earlier instant after now shows the same wall time.
    for day in (local - timedelta(days=1), local):
        for fold in (0, 1):
            earlier = _exists(day, wall, tz, fold)
            if earlier is not None and earlier < when:
                assert earlier <= now


TOKENS = [
    "in", "at", "on", "next", "this", "to", "remind", "me", "that", "10", "1", "2", "12", "24",
    "30", "0", "99999", "2026-12-24", "2028-02-29", "2020-01-01", "1000-01-01", "9999-12-31",
    "minutes", "m", "h", "hour", "days", "weeks", "half", "an", "a", "and", "quarter", "of",
    "from", "now", "pm", "am", "a.m.", "5pm", "17:00", "24:00", "2:30", "1:30", "noon",
    "midnight", "tomorrow", "today", "tonight", "day", "after", "monday", "sat", "morning",
    "evening", "the", "december", "24th", "feb", "29", "24/12", ",", ".", "!", "months", "every",
    "please", "call", "mom", "1h30", "1.5", "@", "by", "o'clock",
]  # fmt: skip


@given(
    tokens=st.lists(st.sampled_from(TOKENS), max_size=8),
    zone_and_now=zones_and_nows(),
)
def test_any_text_is_a_bounded_time_or_a_reminder_error(
    tokens: list[str], zone_and_now: tuple[ZoneInfo, datetime]
) -> None:
    tz, now = zone_and_now
    try:
        parsed = parse_reminder(" ".join(tokens), now=now, tz=tz)
    except ReminderError:
        return  # every error's message is checked in test_errors
    assert now < parsed.when <= now + MAX_AHEAD
    assert parsed.what
    assert parsed.matched
