"""Durations, SLO windows and calendar periods.

Time is counted in UTC epoch minutes (``int``): minute ``m`` is the instant ``m * 60`` seconds after
1970-01-01T00:00Z and also the per-minute bucket ``[m, m + 1)``. Every range is half-open ``[start, end)``.
Nothing here reads the clock: "now" is always an argument.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTE = 1
HOUR = 60
DAY = 24 * HOUR
WEEK = 7 * DAY

_UNITS = {"m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}
_CALENDAR_SHORTHAND = {"M": "month", "Q": "quarter", "Y": "year"}
_DURATION = re.compile(r"(\d+)([A-Za-z]+)")


# ------------------------------------------------------------------------------------------------ durations


def parse_duration(text: str) -> int:
    """A fixed duration (``"5m"``, ``"1h"``, ``"28d"``, ``"4w"``) in whole minutes.

    One positive integer and one case-sensitive unit: ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks.
    Refused with ``ValueError``: calendar units (``M`` month, ``Q`` quarter, ``Y`` year: their length
    varies, use a :class:`CalendarWindow`), zero, signs, fractions, seconds, compound forms (``1h30m``) and
    any other unit (``H``, ``D``, ``y``...).
    """
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string like '5m', got {text!r}")
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: expected an integer and one of m, h, d, w (e.g. '28d')")
    count, unit = int(match.group(1)), match.group(2)
    if unit in _CALENDAR_SHORTHAND:
        raise ValueError(
            f"{text!r} is a calendar {_CALENDAR_SHORTHAND[unit]}, whose length varies: "
            "use a calendar window, or a fixed duration such as '30d'"
        )
    if unit not in _UNITS:
        hint = f" (did you mean '{count}{unit.lower()}'?)" if unit.lower() in _UNITS else ""
        raise ValueError(f"invalid duration unit {unit!r} in {text!r}: use m, h, d or w{hint}")
    if count == 0:
        raise ValueError(f"duration {text!r} is zero")
    return count * _UNITS[unit]


def format_duration(minutes: int) -> str:
    """The shortest spelling in the largest exact unit: 43200 -> ``"30d"``, 40320 -> ``"4w"``,
    90 -> ``"90m"``. Zero gives ``"0m"``."""
    if minutes < 0:
        raise ValueError(f"negative duration: {minutes}")
    for suffix, size in (("w", WEEK), ("d", DAY), ("h", HOUR)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{suffix}"
    return f"{minutes}m"


# ------------------------------------------------------------------------------------------------- instants


def epoch_minute(instant: datetime) -> int:
    """The epoch minute containing an aware datetime (seconds are floored)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: give a time zone")
    return math.floor(instant.timestamp() / 60)


def minute_datetime(minute: int) -> datetime:
    """An epoch minute as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=int(minute))


# -------------------------------------------------------------------------------------------------- windows


class CalendarUnit(enum.StrEnum):
    """Calendar periods, aligned to local midnight in the window's time zone."""

    WEEK = "week"  # starts Monday 00:00 local time
    MONTH = "month"
    QUARTER = "quarter"  # starts 1 January, 1 April, 1 July, 1 October
    YEAR = "year"


NOMINAL_MINUTES = {
    CalendarUnit.WEEK: 7 * DAY,
    CalendarUnit.MONTH: 30 * DAY,
    CalendarUnit.QUARTER: 90 * DAY,
    CalendarUnit.YEAR: 365 * DAY,
}
"""Fixed lengths used where a calendar period needs one number (alert windows, burn factors)."""


@dataclass(frozen=True, slots=True)
class RollingWindow:
    """The last ``minutes`` minutes before now: ``[now - minutes, now)``."""

    minutes: int

    def __post_init__(self) -> None:
        if isinstance(self.minutes, bool) or not isinstance(self.minutes, int) or self.minutes < 1:
            raise ValueError(f"rolling window must be a positive whole number of minutes, got {self.minutes!r}")

    @property
    def nominal_minutes(self) -> int:
        return self.minutes


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """From the start of the current calendar period in ``zone`` (IANA name) until now."""

    unit: CalendarUnit
    zone: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", CalendarUnit(self.unit))
        _zone(self.zone)  # refuse unknown zones early

    @property
    def nominal_minutes(self) -> int:
        """30 days for a month, 90 for a quarter, 365 for a year, 7 for a week."""
        return NOMINAL_MINUTES[self.unit]


Window = RollingWindow | CalendarWindow

_CALENDAR_DURATIONS = {
    "1w": CalendarUnit.WEEK,
    "1M": CalendarUnit.MONTH,
    "1Q": CalendarUnit.QUARTER,
    "1Y": CalendarUnit.YEAR,
}


def parse_window(duration: str, *, calendar_zone: str | None = None) -> Window:
    """An OpenSLO-style time window: rolling (``"28d"``) or, with ``calendar_zone``, calendar
    (``"1w"``, ``"1M"``, ``"1Q"``, ``"1Y"``). Other calendar spellings are refused with ``ValueError``
    (see :func:`lint_time_window` for the ``1m``/``1M`` trap)."""
    if calendar_zone is None:
        return RollingWindow(parse_duration(duration))
    unit = _CALENDAR_DURATIONS.get(duration.strip())
    if unit is None:
        raise ValueError(f"calendar window must be one of 1w, 1M, 1Q, 1Y, got {duration!r}")
    return CalendarWindow(unit, calendar_zone)


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open range of epoch minutes ``[start, end)``."""

    start: int
    end: int

    @property
    def minutes(self) -> int:
        return self.end - self.start

    def __contains__(self, minute: int) -> bool:
        return self.start <= minute < self.end


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """Where an SLO window lies at one evaluation time.

    ``start``/``end`` bound the data ``[start, end)`` (``end`` is "now"). ``period_minutes`` is P, the
    length the budget is defined over: the rolling length, or the true length of the current calendar
    period (a 743-hour March in Europe/Berlin). ``period_end`` is the end of the calendar period (None for
    rolling windows).
    """

    start: int
    end: int
    period_minutes: int
    period_end: int | None

    @property
    def minutes_left(self) -> int | None:
        """Minutes until the calendar period ends (None for rolling windows)."""
        return None if self.period_end is None else self.period_end - self.end


def window_span(window: Window, now: int) -> WindowSpan:
    """The data range of ``window`` evaluated at epoch minute ``now``.

    Rolling: ``[now - P, now)``. Calendar: ``[start of the period containing now, now)``; at the exact
    first minute of a period the range is empty (the new period has no data yet).
    """
    now = int(now)
    if isinstance(window, RollingWindow):
        return WindowSpan(now - window.minutes, now, window.minutes, None)
    period = calendar_period(window.unit, window.zone, now)
    return WindowSpan(period.start, now, period.minutes, period.end)


# ------------------------------------------------------------------------------------------------- calendar


def _zone(zone: str | tzinfo) -> tzinfo:
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {zone!r}") from None


def _local_date(minute: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(minute * 60, tz).date()


def _day_start(day: date, tz: tzinfo) -> int:
    """The first epoch minute whose local date is ``day`` (local midnight, or the end of a DST gap that
    swallows midnight)."""
    guess = math.ceil(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() / 60)
    if _local_date(guess, tz) >= day > _local_date(guess - 1, tz):
        return guess
    low, high = guess - DAY, guess + DAY  # a transition moves midnight by hours, never by a day
    while low < high:
        middle = (low + high) // 2
        if _local_date(middle, tz) >= day:
            high = middle
        else:
            low = middle + 1
    return low


def _period_first_day(unit: CalendarUnit, day: date) -> date:
    if unit is CalendarUnit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is CalendarUnit.MONTH:
        return day.replace(day=1)
    if unit is CalendarUnit.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _next_first_day(unit: CalendarUnit, first: date, steps: int = 1) -> date:
    if unit is CalendarUnit.WEEK:
        return first + timedelta(weeks=steps)
    months = {CalendarUnit.MONTH: 1, CalendarUnit.QUARTER: 3, CalendarUnit.YEAR: 12}[unit] * steps
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def calendar_period(unit: CalendarUnit | str, zone: str | tzinfo, at: int) -> Period:
    """The calendar period (week from Monday, month, quarter, year) in ``zone`` that contains epoch
    minute ``at``: ``start <= at < end``, both at local midnight converted to UTC, so the length is the
    true one (DST changes and month lengths included)."""
    unit, tz, at = CalendarUnit(unit), _zone(zone), int(at)
    first = _period_first_day(unit, _local_date(at, tz))
    start, end = _day_start(first, tz), _day_start(_next_first_day(unit, first), tz)
    # Where a DST change repeats the hour around midnight, an instant can have a local date of the
    # previous period after that period's end; keep the periods a partition of time.
    while at >= end:
        first = _next_first_day(unit, first)
        start, end = end, _day_start(_next_first_day(unit, first), tz)
    while at < start:
        first = _next_first_day(unit, first, -1)
        start, end = _day_start(first, tz), start
    return Period(start, end)


# -------------------------------------------------------------------------------------------------- linting


@dataclass(frozen=True, slots=True)
class Lint:
    """A finding about a definition. ``severity`` is ``"error"`` (the definition cannot mean what it
    says) or ``"warning"`` (probably a mistake)."""

    code: str
    severity: str
    message: str


def lint_time_window(duration: str, *, calendar: bool) -> list[Lint]:
    """Flag the OpenSLO shorthand trap: ``m`` is minutes, ``M`` is months.

    A calendar window written with ``m`` (``1m``) is an error (a calendar minute is meaningless; ``1M``
    was meant). A rolling SLO or budgeting window written in minutes and shorter than a day (``1m``,
    ``3m``, ``12m``) is a warning: it is almost certainly ``1M`` / a month (or days) mistyped.
    """
    match = _DURATION.fullmatch(duration.strip()) if isinstance(duration, str) else None
    if not match or match.group(2) != "m":
        return []
    count = int(match.group(1))
    if calendar:
        return [
            Lint(
                "duration-minute-month",
                "error",
                f"calendar window {duration!r} is {count} minute(s); a calendar month is '{count}M'",
            )
        ]
    if count < DAY:
        return [
            Lint(
                "duration-minute-month",
                "warning",
                f"SLO window {duration!r} is {count} minute(s); did you mean '{count}M' (month) or '{count * 30}d'?",
            )
        ]
    return []
