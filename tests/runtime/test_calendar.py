"""Business calendars: SLA deadlines in a store's open time, across holidays, lunch breaks and DST.

Every expected instant below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import pickle
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tenant_runtime.engine.calendar import MAX_CLOSED_DAYS, BusinessCalendar, deadline

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
DAY = [["09:00", "18:00"]]
MON_SAT = {"mon": DAY, "tue": DAY, "wed": DAY, "thu": DAY, "fri": DAY, "sat": DAY}


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def shop(**settings: Any) -> BusinessCalendar:
    """A Paris store open 09:00-18:00 Monday to Saturday, unless told otherwise."""
    return BusinessCalendar.from_settings(
        {"timezone": "Europe/Paris", "opening_hours": MON_SAT, **settings}
    )


# --- Ordinary weeks (January 2026, Paris is UTC+1; 2026-01-09 is a Friday) ---------------------


def test_friday_evening_task_is_due_saturday_morning() -> None:
    # Friday 17:30: 30 min left today, the other 30 min from Saturday 09:00.
    due = shop().add(paris(2026, 1, 9, 17, 30), timedelta(hours=1))
    assert due == paris(2026, 1, 10, 9, 30)
    assert due == utc(2026, 1, 10, 8, 30)
    assert due.tzinfo is UTC


def test_holiday_is_skipped_and_sunday_is_closed() -> None:
    # Saturday 10 January is a holiday and Sunday is closed: the last 30 min fall on Monday.
    calendar = shop(holidays=["2026-01-10"])
    assert calendar.add(paris(2026, 1, 9, 17, 30), timedelta(hours=1)) == paris(2026, 1, 12, 9, 30)
    assert not calendar.is_open(paris(2026, 1, 10, 12, 0))


def test_sunday_is_closed() -> None:
    # Saturday 17:00: one hour on Saturday, nothing on Sunday, one hour on Monday.
    assert shop().add(paris(2026, 1, 10, 17, 0), timedelta(hours=2)) == paris(2026, 1, 12, 10, 0)
    # A task created on Sunday starts counting on Monday at opening.
    assert shop().add(paris(2026, 1, 11, 15, 0), timedelta(minutes=45)) == paris(2026, 1, 12, 9, 45)


def test_start_before_opening_counts_from_opening() -> None:
    assert shop().add(paris(2026, 1, 12, 7, 0), timedelta(minutes=30)) == paris(2026, 1, 12, 9, 30)


def test_start_after_closing_counts_from_next_opening() -> None:
    assert shop().add(paris(2026, 1, 12, 19, 0), timedelta(minutes=30)) == paris(2026, 1, 13, 9, 30)


def test_duration_spanning_several_days() -> None:
    # Monday 12:00 + 30 h: Mon 6 h, Tue 9 h, Wed 9 h (24 h), then Thursday 09:00 + 6 h.
    due = shop().add(paris(2026, 1, 12, 12, 0), timedelta(hours=30))
    assert due == paris(2026, 1, 15, 15, 0)


def test_task_landing_exactly_on_closing_time_is_due_at_closing() -> None:
    assert shop().add(paris(2026, 1, 12, 17, 0), timedelta(hours=1)) == paris(2026, 1, 12, 18, 0)


def test_ten_business_weeks_land_on_the_last_closing() -> None:
    # 54 open hours a week: Monday 5 January 09:00 + 540 h ends Saturday 14 March 18:00 (CET).
    due = shop().add(paris(2026, 1, 5, 9, 0), timedelta(hours=540))
    assert due == utc(2026, 3, 14, 17, 0)


def test_start_in_another_zone_is_the_same_instant() -> None:
    # Friday 11:30 in New York (UTC-5) is 17:30 in Paris (UTC+1).
    due = shop().add(new_york(2026, 1, 9, 11, 30), timedelta(hours=1))
    assert due == utc(2026, 1, 10, 8, 30)


def test_zero_duration_and_next_open() -> None:
    calendar = shop()
    assert calendar.add(paris(2026, 1, 12, 10, 0), timedelta(0)) == paris(2026, 1, 12, 10, 0)
    assert calendar.add(paris(2026, 1, 10, 18, 0), timedelta(0)) == paris(2026, 1, 12, 9, 0)
    assert calendar.next_open(paris(2026, 1, 11, 12, 0)) == utc(2026, 1, 12, 8, 0)
    assert calendar.next_open(paris(2026, 1, 12, 9, 0)) == utc(2026, 1, 12, 8, 0)


def test_is_open_includes_opening_but_not_closing() -> None:
    calendar = shop()
    assert calendar.is_open(paris(2026, 1, 12, 9, 0))
    assert calendar.is_open(paris(2026, 1, 12, 17, 59))
    assert not calendar.is_open(paris(2026, 1, 12, 18, 0))
    assert not calendar.is_open(paris(2026, 1, 12, 8, 59))
    assert not calendar.is_open(paris(2026, 1, 11, 12, 0))


# --- Lunch closing ------------------------------------------------------------------------------

LUNCH = [["09:00", "12:00"], ["14:00", "18:00"]]


def test_two_intervals_per_day_skip_the_lunch_break() -> None:
    calendar = shop(opening_hours={"mon": LUNCH, "tue": LUNCH})
    # Monday 11:30: 30 min before lunch, 30 min after.
    assert calendar.add(paris(2026, 1, 12, 11, 30), timedelta(hours=1)) == paris(
        2026, 1, 12, 14, 30
    )
    # Monday 17:00 + 5 h: 1 h Monday, 3 h Tuesday morning, 1 h after lunch.
    assert calendar.add(paris(2026, 1, 12, 17, 0), timedelta(hours=5)) == paris(2026, 1, 13, 15, 0)
    assert not calendar.is_open(paris(2026, 1, 12, 12, 30))
    assert calendar.next_open(paris(2026, 1, 12, 12, 30)) == paris(2026, 1, 12, 14, 0)


def test_intervals_may_be_listed_in_any_order_and_touch() -> None:
    calendar = shop(opening_hours={"mon": [["14:00", "18:00"], ["09:00", "14:00"]]})
    assert calendar.add(paris(2026, 1, 12, 13, 0), timedelta(hours=2)) == paris(2026, 1, 12, 15, 0)


def test_store_open_past_midnight_uses_two_days() -> None:
    # Friday 20:00-24:00 and Saturday 00:00-02:00: a 5 h task from Friday 20:00 ends Saturday 01:00.
    calendar = shop(opening_hours={"fri": [["20:00", "24:00"]], "sat": [["00:00", "02:00"]]})
    assert calendar.add(paris(2026, 1, 9, 20, 0), timedelta(hours=5)) == paris(2026, 1, 10, 1, 0)
    assert calendar.is_open(paris(2026, 1, 10, 0, 0))


# --- DST in Europe/Paris: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC),
#     2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC) ------------------------------------------


def test_paris_spring_forward_week() -> None:
    # Saturday 28 March 17:00 CET + 2 h: 1 h Saturday, Monday 30 March 09:00 CEST + 1 h.
    due = shop().add(paris(2026, 3, 28, 17, 0), timedelta(hours=2))
    assert due == utc(2026, 3, 30, 8, 0)  # 10:00 CEST (UTC+2)


def test_paris_spring_forward_night_is_an_hour_shorter() -> None:
    # Sunday 01:00 CET (00:00 UTC) to 04:00 CEST (02:00 UTC) is 2 real hours, not 3.
    calendar = shop(opening_hours={"sun": [["01:00", "04:00"]], "mon": [["01:00", "04:00"]]})
    start = paris(2026, 3, 29, 0, 30)
    assert calendar.add(start, timedelta(hours=2)) == utc(2026, 3, 29, 2, 0)
    # 30 min more carry over to Monday 01:00 CEST + 30 min = Sunday 23:30 UTC.
    assert calendar.add(start, timedelta(hours=2, minutes=30)) == utc(2026, 3, 29, 23, 30)


def test_paris_opening_inside_the_skipped_hour_opens_at_the_jump() -> None:
    # 02:30 never shows on 29 March; the store opens when the clock jumps to 03:00 CEST.
    calendar = shop(opening_hours={"sun": [["02:30", "05:00"]]})
    assert calendar.next_open(paris(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 1, 0)
    assert calendar.add(paris(2026, 3, 29, 0, 0), timedelta(hours=1)) == utc(2026, 3, 29, 2, 0)
    assert not calendar.is_open(utc(2026, 3, 29, 0, 59))
    assert calendar.is_open(utc(2026, 3, 29, 1, 0))


def test_paris_interval_wholly_inside_the_skipped_hour_is_empty_that_day() -> None:
    calendar = shop(opening_hours={"sun": [["02:15", "02:45"]], "mon": [["09:00", "10:00"]]})
    # Nothing on Sunday 29 March; Monday 09:00 CEST is 07:00 UTC.
    assert calendar.next_open(paris(2026, 3, 29, 0, 0)) == utc(2026, 3, 30, 7, 0)
    # A week earlier the same interval exists: Sunday 22 March 02:15 CET is 01:15 UTC.
    assert calendar.next_open(paris(2026, 3, 22, 0, 0)) == utc(2026, 3, 22, 1, 15)


def test_paris_fall_back_week() -> None:
    # Saturday 24 October 17:00 CEST + 2 h: 1 h Saturday, Monday 26 October 09:00 CET + 1 h.
    due = shop().add(paris(2026, 10, 24, 17, 0), timedelta(hours=2))
    assert due == utc(2026, 10, 26, 9, 0)  # 10:00 CET (UTC+1)


def test_paris_fall_back_night_is_an_hour_longer() -> None:
    # Sunday 00:00 CEST (Sat 22:00 UTC) to 06:00 CET (05:00 UTC) is 7 real hours.
    calendar = shop(opening_hours={"sun": [["00:00", "06:00"]]})
    start = utc(2026, 10, 24, 22, 0)
    assert calendar.add(start, timedelta(hours=6)) == utc(2026, 10, 25, 4, 0)  # 05:00 CET
    assert calendar.add(start, timedelta(hours=7)) == utc(2026, 10, 25, 5, 0)  # 06:00 CET


def test_paris_ambiguous_opening_uses_the_first_occurrence() -> None:
    # 02:30 shows twice on 25 October; the store opens at the first, 02:30 CEST = 00:30 UTC,
    # and closes at 04:00 CET = 03:00 UTC: 2 h 30 of open time.
    calendar = shop(opening_hours={"sun": [["02:30", "04:00"]]})
    start = utc(2026, 10, 24, 20, 0)
    assert calendar.next_open(start) == utc(2026, 10, 25, 0, 30)
    assert calendar.add(start, timedelta(hours=2, minutes=30)) == utc(2026, 10, 25, 3, 0)


# --- DST in America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC),
#     2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC) -------------------------------------------


def nyc(opening_hours: dict[str, list[list[str]]]) -> BusinessCalendar:
    return BusinessCalendar.from_settings(
        {"timezone": "America/New_York", "opening_hours": opening_hours}
    )


ALL_DAY = [["00:00", "24:00"]]
EVERY_DAY_8_TO_8 = {
    day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def test_new_york_spring_forward_week() -> None:
    # Saturday 7 March 19:00 EST (8 March 00:00 UTC) + 2 h: 1 h Saturday,
    # Sunday 8 March 08:00 EDT + 1 h = 09:00 EDT = 13:00 UTC.
    due = nyc(EVERY_DAY_8_TO_8).add(new_york(2026, 3, 7, 19, 0), timedelta(hours=2))
    assert due == utc(2026, 3, 8, 13, 0)


def test_new_york_spring_forward_day_counts_real_hours() -> None:
    # Every day 00:00-24:00 written out: 24 business hours are 24 real hours even across the jump.
    calendar = nyc({"sat": ALL_DAY, "sun": ALL_DAY, "mon": ALL_DAY})
    start = new_york(2026, 3, 7, 20, 0)  # 8 March 01:00 UTC
    assert calendar.add(start, timedelta(hours=24)) == utc(2026, 3, 9, 1, 0)  # 21:00 EDT


def test_new_york_fall_back_week() -> None:
    # Sunday 1 November 00:00-03:00 is 4 real hours: 00:00 EDT (04:00 UTC) to 03:00 EST (08:00 UTC).
    calendar = nyc({"sun": [["00:00", "03:00"]], "mon": [["09:00", "17:00"]]})
    start = utc(2026, 11, 1, 4, 0)
    assert calendar.add(start, timedelta(hours=4)) == utc(2026, 11, 1, 8, 0)
    # 30 min more: Monday 2 November 09:30 EST = 14:30 UTC.
    assert calendar.add(start, timedelta(hours=4, minutes=30)) == utc(2026, 11, 2, 14, 30)


def test_new_york_ambiguous_closing_uses_the_first_occurrence() -> None:
    # Closing at 01:30 on 1 November means the first 01:30 (EDT, 05:30 UTC).
    calendar = nyc({"sun": [["00:00", "01:30"]]})
    assert calendar.add(utc(2026, 11, 1, 4, 0), timedelta(minutes=90)) == utc(2026, 11, 1, 5, 30)
    assert calendar.is_open(utc(2026, 11, 1, 5, 15))
    assert not calendar.is_open(utc(2026, 11, 1, 6, 15))  # the second 01:15, in EST


# --- Around the clock and the plain deadline ---------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [utc(2026, 3, 28, 23, 0), paris(2026, 3, 28, 23, 0), new_york(2026, 11, 1, 0, 30)],
)
def test_empty_opening_hours_is_the_wall_clock(start: datetime) -> None:
    # Elapsed time, not same-zone datetime arithmetic (which would ignore the DST change).
    for calendar in (BusinessCalendar(), BusinessCalendar(timezone="Europe/Paris")):
        assert calendar.add(start, timedelta(hours=3)) == start.astimezone(UTC) + timedelta(hours=3)
        assert calendar.is_open(start)
        assert calendar.next_open(start) == start


def test_empty_opening_hours_across_spring_forward() -> None:
    # Saturday 28 March 23:00 CET is 22:00 UTC; three hours later is 01:00 UTC (03:00 CEST).
    calendar = BusinessCalendar(timezone="Europe/Paris")
    assert calendar.add(paris(2026, 3, 28, 23, 0), timedelta(hours=3)) == utc(2026, 3, 29, 1, 0)


def test_empty_opening_hours_still_closes_on_holidays() -> None:
    calendar = BusinessCalendar.from_settings(
        {"timezone": "Europe/Paris", "holidays": ["2026-12-25"]}
    )
    # Christmas Eve 23:00 + 2 h: 1 h on the 24th, then from 26 December 00:00 + 1 h.
    assert calendar.add(paris(2026, 12, 24, 23, 0), timedelta(hours=2)) == paris(2026, 12, 26, 1, 0)


def test_deadline_without_business_time_is_plain_arithmetic() -> None:
    start = paris(2026, 1, 9, 17, 30)
    plain = utc(2026, 1, 9, 17, 30)
    assert deadline(start, timedelta(hours=1), calendar=shop(), business=False) == plain
    assert deadline(start, timedelta(hours=1), calendar=None, business=True) == plain
    assert deadline(start, timedelta(hours=1), calendar=shop(), business=True) == utc(
        2026, 1, 10, 8, 30
    )
    assert deadline(start, timedelta(hours=1), calendar=None, business=False).tzinfo is UTC


def test_naive_start_and_negative_duration_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        shop().add(datetime(2026, 1, 9, 17, 30), timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(datetime(2026, 1, 9), timedelta(hours=1), calendar=None, business=False)
    with pytest.raises(ValueError, match="must not be negative"):
        shop().add(paris(2026, 1, 9, 17, 30), timedelta(hours=-1))


# --- Calendars with no open time ---------------------------------------------------------------


def test_calendar_without_any_open_weekday_raises_instead_of_looping() -> None:
    calendar = BusinessCalendar.from_settings({"opening_hours": {"mon": [], "sun": []}})
    with pytest.raises(ValueError, match="no opening hours on any weekday"):
        calendar.add(utc(2026, 1, 9, 12, 0), timedelta(hours=1))
    with pytest.raises(ValueError, match="no opening hours on any weekday"):
        calendar.next_open(utc(2026, 1, 9, 12, 0))
    assert not calendar.is_open(utc(2026, 1, 12, 12, 0))


def test_holidays_covering_every_open_day_stop_the_search() -> None:
    # Open on Mondays only, and every Monday from 5 January 2026 to 27 December 2027 is a holiday.
    mondays = [date(2026, 1, 5) + timedelta(weeks=week) for week in range(104)]
    assert mondays[-1] == date(2027, 12, 27)
    calendar = BusinessCalendar(opening_hours={"mon": DAY}, holidays=frozenset(mondays))
    with pytest.raises(ValueError, match=f"no open time from .* \\({MAX_CLOSED_DAYS} days\\)"):
        calendar.add(utc(2026, 1, 1, 0, 0), timedelta(hours=1))
    # The first Monday after the holidays is 3 January 2028.
    assert calendar.next_open(utc(2027, 6, 1, 0, 0)) == utc(2028, 1, 3, 9, 0)


# --- Settings --------------------------------------------------------------------------------------


def test_from_settings_reads_every_field() -> None:
    calendar = BusinessCalendar.from_settings(
        {"timezone": "Europe/Paris", "opening_hours": {"mon": DAY}, "holidays": ["2026-12-25"]}
    )
    assert calendar.timezone == "Europe/Paris"
    assert calendar.holidays == frozenset({date(2026, 12, 25)})
    assert calendar == BusinessCalendar(
        timezone="Europe/Paris",
        opening_hours={"mon": [("09:00", "18:00")]},
        holidays=frozenset({date(2026, 12, 25)}),
    )
    assert hash(calendar) == hash(
        BusinessCalendar.from_settings(
            {"timezone": "Europe/Paris", "opening_hours": {"mon": DAY}, "holidays": ["2026-12-25"]}
        )
    )
    assert pickle.loads(pickle.dumps(calendar)) == calendar  # noqa: S301
    assert BusinessCalendar.from_settings(None) == BusinessCalendar()
    assert BusinessCalendar.from_settings({}) == BusinessCalendar()


def test_calendar_does_not_follow_later_changes_to_the_settings() -> None:
    hours = {"mon": [["09:00", "18:00"]]}
    calendar = BusinessCalendar(timezone="Europe/Paris", opening_hours=hours)
    hours["mon"][0][1] = "10:00"
    assert calendar.add(paris(2026, 1, 12, 9, 0), timedelta(hours=2)) == paris(2026, 1, 12, 11, 0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["timezone", "UTC"], "calendar settings: expected a mapping"),
        (
            {"tz": "UTC"},
            "calendar settings: unknown key 'tz'; expected timezone, opening_hours, holidays",
        ),
        ({"timezone": "Europe/Pariss"}, "timezone: 'Europe/Pariss' is not a known IANA time zone"),
        ({"timezone": ""}, "timezone: '' is not a known IANA time zone"),
        ({"timezone": "Europe"}, "timezone: 'Europe' is not a known IANA time zone"),
        ({"timezone": 1}, "timezone: expected an IANA name such as 'Europe/Paris', got int"),
        (
            {"opening_hours": [["09:00", "18:00"]]},
            "opening_hours: expected a mapping of weekday to intervals, got list",
        ),
        (
            {"opening_hours": {"monday": DAY}},
            "opening_hours: unknown weekday 'monday'; expected one of mon, tue",
        ),
        (
            {"opening_hours": {"mon": "09:00-18:00"}},
            'opening_hours.mon: expected a list of ["HH:MM", "HH:MM"] intervals',
        ),
        ({"opening_hours": {"sun": None}}, "opening_hours.sun: expected a list of"),
        (
            {"opening_hours": {"mon": [["09:00"]]}},
            'opening_hours.mon[0]: expected a pair ["HH:MM", "HH:MM"], got [\'09:00\']',
        ),
        ({"opening_hours": {"mon": ["09:00"]}}, "opening_hours.mon[0]: expected a pair"),
        (
            {"opening_hours": {"tue": [["9:00", "18:00"]]}},
            "opening_hours.tue[0]: '9:00' is not a time; expected HH:MM",
        ),
        (
            {"opening_hours": {"tue": [["09:00", "25:00"]]}},
            "opening_hours.tue[0]: '25:00' is not a time",
        ),
        (
            {"opening_hours": {"tue": [["09:00", "24:30"]]}},
            "opening_hours.tue[0]: '24:30' is not a time",
        ),
        (
            {"opening_hours": {"tue": [["09:60", "18:00"]]}},
            "opening_hours.tue[0]: '09:60' is not a time",
        ),
        ({"opening_hours": {"tue": [[900, 1800]]}}, "opening_hours.tue[0]: 900 is not a time"),
        (
            {"opening_hours": {"wed": [["24:00", "24:00"]]}},
            "opening_hours.wed[0]: 24:00 can only close an interval",
        ),
        (
            {"opening_hours": {"wed": [["09:00", "09:00"]]}},
            "opening_hours.wed[0]: opens and closes at 09:00; an interval must be non-empty",
        ),
        (
            {"opening_hours": {"sun": [["22:00", "02:00"]]}},
            "opening_hours.sun[0]: opens at 22:00 but closes earlier at 02:00; intervals may not cross midnight, "
            'write ["22:00", "24:00"] on sun and ["00:00", "02:00"] on mon',
        ),
        (
            {"opening_hours": {"fri": [["09:00", "12:00"], ["11:00", "14:00"]]}},
            "opening_hours.fri[1]: 11:00-14:00 overlaps 09:00-12:00; intervals on a day must not overlap",
        ),
        (
            {"opening_hours": {"fri": [["14:00", "18:00"], ["09:00", "15:00"]]}},
            "opening_hours.fri[0]: 14:00-18:00 overlaps 09:00-15:00",
        ),
        ({"holidays": "2026-12-25"}, "holidays: expected a list of YYYY-MM-DD dates"),
        (
            {"holidays": ["2026-12-25", "25/12/2026"]},
            "holidays[1]: '25/12/2026' is not a date; expected YYYY-MM-DD",
        ),
        (
            {"holidays": ["2026-02-30"]},
            "holidays[0]: '2026-02-30' is not a valid date (day is out of range for month)",
        ),
        ({"holidays": ["2026-13-01"]}, "holidays[0]: '2026-13-01' is not a valid date"),
        ({"holidays": [20261225]}, "holidays[0]: 20261225 is not a date"),
    ],
)
def test_from_settings_explains_what_is_wrong(settings: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        BusinessCalendar.from_settings(settings)
    assert "\n" not in str(caught.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a known IANA time zone"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="may not cross midnight"):
        BusinessCalendar(opening_hours={"sat": [["20:00", "01:00"]]})
    with pytest.raises(ValueError, match="from_settings accepts YYYY-MM-DD strings"):
        BusinessCalendar(holidays=frozenset({"2026-12-25"}))  # type: ignore[arg-type]
