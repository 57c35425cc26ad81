"""Business calendars: SLA deadlines for human tasks counted in a store's open time.

Opening hours are local wall-clock intervals per weekday. Each day's intervals are turned into
UTC instants with zoneinfo, so open time is real elapsed time: a 09:00-18:00 day is 9 hours
whatever the date, and an overnight interval on a DST day is an hour shorter or longer.

A wall-clock time is read as *the first instant at which the store's clock shows that time or
later*. For ordinary times that is the obvious instant. For a time the clock skips
(spring forward, e.g. 02:30 in Paris on the last Sunday of March) it is the instant of the jump,
so an interval opening at 02:30 opens at 03:00 summer time and an interval lying wholly inside
the skipped hour is empty that day. For a time the clock shows twice (fall back) it is the first
occurrence. The rule is monotonic, so intervals never come out reversed or overlapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WEEKDAYS", "BusinessCalendar", "deadline"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How many consecutive days without open time a search may cross before giving up.
MAX_CLOSED_DAYS = 400

_SETTINGS = ("timezone", "opening_hours", "holidays")
_DAY_MINUTES = 24 * 60
_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

#: Open minutes per weekday, Monday first, as sorted disjoint (open, close) pairs.
Week = tuple[tuple[tuple[int, int], ...], ...]
_FULL_WEEK: Week = (((0, _DAY_MINUTES),),) * 7


@dataclass(frozen=True)
class BusinessCalendar:
    """When a store is open: a time zone, weekly opening hours and closed dates.

    An empty ``opening_hours`` means open around the clock (holidays still close the store).
    """

    timezone: str = "UTC"
    opening_hours: Mapping[str, Sequence[Sequence[str]]] = field(default_factory=dict, hash=False)
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _week: Week = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _parse_zone(self.timezone))
        hours, week = _parse_opening_hours(self.opening_hours)
        object.__setattr__(self, "opening_hours", hours)
        object.__setattr__(self, "_week", week)
        object.__setattr__(self, "holidays", _check_holidays(self.holidays))

    @classmethod
    def from_settings(cls, data: Mapping[str, Any] | None) -> BusinessCalendar:
        """Build a calendar from stored settings; ``None`` gives the 24/7 UTC default."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(
                f"calendar settings: expected a mapping with {', '.join(_SETTINGS)}, "
                f"got {type(data).__name__}"
            )
        unknown = sorted(str(key) for key in data if key not in _SETTINGS)
        if unknown:
            raise ValueError(
                f"calendar settings: unknown key {unknown[0]!r}; expected {', '.join(_SETTINGS)}"
            )
        return cls(
            timezone=data.get("timezone", "UTC"),
            opening_hours=data.get("opening_hours", {}),
            holidays=_parse_holidays(data.get("holidays", [])),
        )

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The UTC instant at which ``duration`` of open time has passed since ``start``."""
        cursor = _utc(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration: must not be negative, got {duration}")
        if not self.holidays and self._week == _FULL_WEEK:
            return cursor + duration
        if not any(self._week):
            raise ValueError(
                "calendar has no opening hours on any weekday, so no deadline can be reached; "
                "list intervals for at least one of mon..sun, or leave opening_hours empty for 24/7"
            )
        remaining = duration
        for opens, closes in self._intervals_from(cursor):
            if closes <= cursor:
                continue
            opens = max(opens, cursor)
            if remaining <= closes - opens:
                return opens + remaining
            remaining -= closes - opens
        raise AssertionError("unreachable: the interval walk either returns or raises")

    def is_open(self, at: datetime) -> bool:
        """Whether the store is open at ``at`` (intervals include the opening, not the close)."""
        instant = _utc(at, "at")
        local_day = instant.astimezone(self._zone).date()
        return any(
            opens <= instant < closes
            for day in (local_day - timedelta(days=1), local_day, local_day + timedelta(days=1))
            for opens, closes in self._day(day)
        )

    def next_open(self, at: datetime) -> datetime:
        """The first open instant at or after ``at``, in UTC."""
        return self.add(at, timedelta(0))

    def _day(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The day's open intervals as UTC instants, skipping those DST made empty."""
        if day in self.holidays:
            return
        for open_minute, close_minute in self._week[day.weekday()]:
            opens = _first_instant(day, open_minute, self._zone)
            closes = _first_instant(day, close_minute, self._zone)
            if opens < closes:
                yield opens, closes

    def _intervals_from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals in time order from the local day before ``instant``'s, bounded."""
        day = instant.astimezone(self._zone).date() - timedelta(days=1)
        first_closed = day
        while (day - first_closed).days < MAX_CLOSED_DAYS:
            found = False
            for interval in self._day(day):
                found = True
                yield interval
            day += timedelta(days=1)
            if found:
                first_closed = day
        raise ValueError(
            f"calendar has no open time from {first_closed.isoformat()} to "
            f"{(day - timedelta(days=1)).isoformat()} ({MAX_CLOSED_DAYS} days); "
            "check holidays and opening_hours"
        )


def deadline(
    start: datetime,
    duration: timedelta,
    *,
    calendar: BusinessCalendar | None,
    business: bool,
) -> datetime:
    """When an SLA expires: in the calendar's open time if ``business``, else wall-clock time."""
    if business and calendar is not None:
        return calendar.add(start, duration)
    return _utc(start, "start") + duration


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name}: expected a timezone-aware datetime, got naive {value.isoformat()}"
        )
    return value.astimezone(UTC)


def _first_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock shows ``day`` at ``minute`` or later."""
    if minute == _DAY_MINUTES:
        day, minute = day + timedelta(days=1), 0
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    guess = wall.replace(tzinfo=zone).astimezone(UTC)
    if guess.astimezone(zone).replace(tzinfo=None) == wall:
        return guess  # exists; fold=0 already picks the first of two occurrences
    # ``wall`` was skipped. fold=1 reads it with the offset from after the jump, giving an
    # instant before the jump; fold=0 with the offset from before, giving one after. Bisect.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(guess.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _parse_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str):
        raise ValueError(
            f"timezone: expected an IANA name such as 'Europe/Paris', got {type(name).__name__}"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"timezone: {name!r} is not a known IANA time zone; expected a name such as "
            "'Europe/Paris' or 'America/New_York'"
        ) from None


def _parse_opening_hours(
    raw: object,
) -> tuple[Mapping[str, Sequence[Sequence[str]]], Week]:
    """Validate opening hours; return a private copy and minutes per weekday, Monday first."""
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"opening_hours: expected a mapping of weekday to intervals, got {type(raw).__name__}"
        )
    copy: dict[str, tuple[tuple[str, str], ...]] = {}
    days: dict[str, tuple[tuple[int, int], ...]] = {}
    for key, intervals in raw.items():
        if key not in WEEKDAYS:
            raise ValueError(
                f"opening_hours: unknown weekday {key!r}; expected one of {', '.join(WEEKDAYS)}"
            )
        copy[key], days[key] = _parse_day(key, intervals)
    if not raw:
        return copy, _FULL_WEEK
    return copy, tuple(days.get(day, ()) for day in WEEKDAYS)


def _parse_day(
    key: str, intervals: object
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[int, int], ...]]:
    where = f"opening_hours.{key}"
    if isinstance(intervals, str | bytes) or not isinstance(intervals, Sequence):
        raise ValueError(
            f'{where}: expected a list of ["HH:MM", "HH:MM"] intervals (use [] for closed), '
            f"got {type(intervals).__name__}"
        )
    texts: list[tuple[str, str]] = []
    spans: list[tuple[int, int, int]] = []
    for index, interval in enumerate(intervals):
        here = f"{where}[{index}]"
        if (
            isinstance(interval, str | bytes)
            or not isinstance(interval, Sequence)
            or len(interval) != 2
        ):
            raise ValueError(f'{here}: expected a pair ["HH:MM", "HH:MM"], got {interval!r}')
        opens, closes = (_parse_time(here, text) for text in interval)
        if opens == _DAY_MINUTES:
            raise ValueError(f"{here}: 24:00 can only close an interval, not open one")
        if closes == opens:
            raise ValueError(
                f"{here}: opens and closes at {interval[0]}; an interval must be non-empty"
            )
        if closes < opens:
            following = WEEKDAYS[(WEEKDAYS.index(key) + 1) % 7]
            raise ValueError(
                f"{here}: opens at {interval[0]} but closes earlier at {interval[1]}; intervals may "
                f'not cross midnight, write ["{interval[0]}", "24:00"] on {key} and '
                f'["00:00", "{interval[1]}"] on {following}'
            )
        texts.append((interval[0], interval[1]))
        spans.append((opens, closes, index))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for (opens, closes, index), previous in zip(spans, [None, *spans], strict=False):
        if previous is not None and opens < previous[1]:
            raise ValueError(
                f"{where}[{index}]: {texts[index][0]}-{texts[index][1]} overlaps "
                f"{texts[previous[2]][0]}-{texts[previous[2]][1]}; intervals on a day must not overlap"
            )
        if merged and merged[-1][1] == opens:
            merged[-1] = (merged[-1][0], closes)
        else:
            merged.append((opens, closes))
    return tuple(texts), tuple(merged)


def _parse_time(where: str, text: object) -> int:
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise ValueError(f"{where}: {text!r} is not a time; expected HH:MM from 00:00 to 24:00")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_holidays(raw: object) -> frozenset[date]:
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence | frozenset | set):
        raise ValueError(
            f'holidays: expected a list of YYYY-MM-DD dates such as ["2026-12-25"], '
            f"got {type(raw).__name__}"
        )
    days: set[date] = set()
    for index, item in enumerate(raw):
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        if not isinstance(item, str) or not _DATE.fullmatch(item):
            raise ValueError(f"holidays[{index}]: {item!r} is not a date; expected YYYY-MM-DD")
        try:
            days.add(date.fromisoformat(item))
        except ValueError as error:
            raise ValueError(
                f"holidays[{index}]: {item!r} is not a valid date ({error}); expected YYYY-MM-DD"
            ) from None
    return frozenset(days)


def _check_holidays(holidays: object) -> frozenset[date]:
    if not isinstance(holidays, Sequence | frozenset | set) or isinstance(holidays, str | bytes):
        raise ValueError(f"holidays: expected a set of dates, got {type(holidays).__name__}")
    for item in holidays:
        if not isinstance(item, date) or isinstance(item, datetime):
            raise ValueError(
                f"holidays: expected dates, got {item!r}; "
                "BusinessCalendar.from_settings accepts YYYY-MM-DD strings"
            )
    return frozenset(holidays)
