"""Durations, SLO windows, calendar periods (DST, month ends) and the 1m/1M lint."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relia.slo.rules import (
    CalendarUnit,
    CalendarWindow,
    RollingWindow,
    calendar_period,
    epoch_minute,
    format_duration,
    lint_time_window,
    minute_datetime,
    parse_duration,
    parse_window,
    window_span,
)
from tests.slo import reference

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "Australia/Lord_Howe"]
# 2020-01-01 .. 2031-01-01 in epoch minutes
MINUTES = st.integers(26_297_280, 32_081_760)


def at(zone: str, *args: int) -> int:
    return epoch_minute(datetime(*args, tzinfo=ZoneInfo(zone)))


# ------------------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("5m", 5), ("1h", 60), ("28d", 40320), ("30d", 43200), ("4w", 40320), ("90d", 129600), (" 7d ", 10080)],
)
def test_parse_duration(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1M", "calendar month"),
        ("1Q", "calendar quarter"),
        ("1Y", "calendar year"),
        ("0m", "zero"),
        ("1.5h", "invalid duration"),
        ("-5m", "invalid duration"),
        ("+5m", "invalid duration"),
        ("1h30m", "invalid duration"),
        ("30s", "invalid duration unit"),
        ("1H", "did you mean '1h'"),
        ("1D", "did you mean '1d'"),
        ("5", "invalid duration"),
        ("", "invalid duration"),
        ("m", "invalid duration"),
    ],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@given(st.integers(1, 10_000), st.sampled_from(["m", "h", "d", "w"]))
@settings(max_examples=50, deadline=None)
def test_format_duration_round_trips(count: int, unit: str) -> None:
    minutes = parse_duration(f"{count}{unit}")
    assert parse_duration(format_duration(minutes)) == minutes


def test_format_duration_picks_the_largest_exact_unit() -> None:
    assert [format_duration(m) for m in (43200, 40320, 90, 60, 5, 0)] == [
        "30d",
        "4w",
        "90m",
        "1h",
        "5m",
        "0m",
    ]


def test_parse_window() -> None:
    assert parse_window("28d") == RollingWindow(40320)
    assert parse_window("1M", calendar_zone="Europe/Berlin") == CalendarWindow(CalendarUnit.MONTH, "Europe/Berlin")
    assert parse_window("1w", calendar_zone="UTC").unit is CalendarUnit.WEEK
    with pytest.raises(ValueError, match="calendar window must be one of"):
        parse_window("1m", calendar_zone="UTC")
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_window("1M", calendar_zone="Mars/Olympus")


def test_epoch_minutes() -> None:
    instant = datetime(2026, 3, 29, 1, 30, 59, tzinfo=UTC)
    assert minute_datetime(epoch_minute(instant)) == instant.replace(second=0)
    with pytest.raises(ValueError, match="naive"):
        epoch_minute(datetime(2026, 1, 1))


# ------------------------------------------------------------------------------------------------- calendar


def test_march_in_berlin_is_743_hours_and_october_745() -> None:
    march = calendar_period("month", "Europe/Berlin", at("Europe/Berlin", 2026, 3, 15))
    assert march.minutes == 743 * 60
    assert minute_datetime(march.start) == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # 00:00 CET
    assert minute_datetime(march.end) == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 00:00 CEST
    october = calendar_period("month", "Europe/Berlin", at("Europe/Berlin", 2026, 10, 31, 23, 59))
    assert october.minutes == 745 * 60
    january = calendar_period("month", "Europe/Berlin", at("Europe/Berlin", 2026, 1, 1))
    assert january.minutes == 744 * 60


def test_new_york_weeks_and_quarters_across_dst() -> None:
    # DST starts Sunday 2026-03-08; the week Monday 2 .. Monday 9 March is one hour short.
    week = calendar_period("week", "America/New_York", at("America/New_York", 2026, 3, 8, 12))
    assert week.minutes == 167 * 60
    assert minute_datetime(week.start).astimezone(ZoneInfo("America/New_York")) == datetime(
        2026, 3, 2, tzinfo=ZoneInfo("America/New_York")
    )
    q1 = calendar_period("quarter", "America/New_York", at("America/New_York", 2026, 2, 1))
    assert q1.minutes == (90 * 24 - 1) * 60  # Jan + Feb + Mar 2026 = 90 days, minus the DST hour
    year = calendar_period("year", "America/New_York", at("America/New_York", 2028, 6, 1))
    assert year.minutes == 366 * 24 * 60  # leap year; the DST hours cancel out


def test_month_ends_and_leap_february() -> None:
    feb = calendar_period(CalendarUnit.MONTH, "UTC", at("UTC", 2028, 2, 29, 23, 59))
    assert feb.minutes == 29 * 1440
    # The last minute of a month is in it; the first minute of the next is not.
    end_of_april = at("UTC", 2026, 4, 30, 23, 59)
    assert calendar_period("month", "UTC", end_of_april).end == end_of_april + 1
    assert calendar_period("month", "UTC", end_of_april + 1).start == end_of_april + 1


def test_a_period_starting_in_a_dst_gap_starts_when_the_gap_ends() -> None:
    # Asuncion sprang forward at 00:00 on Sunday 2017-10-01: the month (and quarter) began at 01:00 -03.
    october = calendar_period("month", "America/Asuncion", at("UTC", 2017, 10, 1, 4))
    assert minute_datetime(october.start) == datetime(2017, 10, 1, 4, 0, tzinfo=UTC)
    assert calendar_period("quarter", "America/Asuncion", october.start - 1).end == october.start
    assert reference.calendar_period("quarter", "America/Asuncion", october.start) == (
        calendar_period("quarter", "America/Asuncion", october.start).start,
        calendar_period("quarter", "America/Asuncion", october.start).end,
    )


@given(MINUTES, st.sampled_from(ZONES), st.sampled_from(["week", "month", "quarter"]))
@settings(max_examples=40, deadline=None)
def test_calendar_period_matches_the_reference(minute: int, zone: str, unit: str) -> None:
    period = calendar_period(unit, zone, minute)
    assert period.start <= minute < period.end
    assert (period.start, period.end) == reference.calendar_period(unit, zone, minute)


@given(MINUTES, st.sampled_from(ZONES))
@settings(max_examples=8, deadline=None)
def test_calendar_year_matches_the_reference(minute: int, zone: str) -> None:
    period = calendar_period("year", zone, minute)
    assert (period.start, period.end) == reference.calendar_period("year", zone, minute)


@given(MINUTES, st.sampled_from(ZONES), st.sampled_from(list(CalendarUnit)))
@settings(max_examples=60, deadline=None)
def test_calendar_periods_tile_time(minute: int, zone: str, unit: CalendarUnit) -> None:
    period = calendar_period(unit, zone, minute)
    assert calendar_period(unit, zone, period.end).start == period.end
    assert calendar_period(unit, zone, period.start - 1).end == period.start
    local = minute_datetime(period.start).astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute) == (0, 0)  # none of these zones has a gap at midnight
    assert local.day == 1 or unit is CalendarUnit.WEEK
    assert local.weekday() == 0 or unit is not CalendarUnit.WEEK


def test_window_span() -> None:
    now = at("Europe/Berlin", 2026, 3, 30, 12)
    rolling = window_span(RollingWindow(43200), now)
    assert (rolling.start, rolling.end, rolling.period_minutes, rolling.minutes_left) == (
        now - 43200,
        now,
        43200,
        None,
    )
    calendar = window_span(CalendarWindow("month", "Europe/Berlin"), now)
    assert calendar.start == at("Europe/Berlin", 2026, 3, 1)
    assert calendar.period_minutes == 743 * 60
    assert calendar.minutes_left == at("Europe/Berlin", 2026, 4, 1) - now
    first = window_span(CalendarWindow("month", "Europe/Berlin"), calendar.period_end)
    assert first.start == first.end  # the first minute of a period: nothing elapsed yet


def test_windows_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        RollingWindow(0)
    with pytest.raises(ValueError):
        RollingWindow(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CalendarWindow("fortnight", "UTC")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- the lint


def test_one_minute_calendar_window_is_flagged_as_a_month_typo() -> None:
    [lint] = lint_time_window("1m", calendar=True)
    assert (lint.code, lint.severity) == ("duration-minute-month", "error")
    assert "'1M'" in lint.message
    [warning] = lint_time_window("1m", calendar=False)
    assert warning.severity == "warning"
    assert "'1M'" in warning.message
    assert lint_time_window("3m", calendar=False)
    assert lint_time_window("1M", calendar=True) == []
    assert lint_time_window("28d", calendar=False) == []
    assert lint_time_window("1440m", calendar=False) == []  # a day written in minutes is deliberate
