"""Budget status for the three budgeting methods, rolling and calendar windows, adjustments and no data."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relia.slo.rules import (
    Budgeting,
    BudgetStatus,
    CalendarWindow,
    Method,
    RollingWindow,
    SLOSpec,
    WindowTotals,
    budget_from_totals,
    budget_status,
    budget_statuses,
    epoch_minute,
    parse_target,
    window_span,
    window_totals,
)
from tests.slo import reference

TARGETS = ["90%", "95%", "99%", "99.5%", "99.9%", "99.99%"]
BUDGETINGS = st.one_of(
    st.just(Budgeting.occurrences()),
    st.builds(Budgeting.timeslices, st.sampled_from([1, 2, 5, 7]), st.sampled_from(["0.9", "0.95", "0.99", "1"])),
    st.builds(Budgeting.ratio_timeslices, st.sampled_from([1, 3, 5])),
)


def minute(zone: str, *args: int) -> int:
    return epoch_minute(datetime(*args, tzinfo=ZoneInfo(zone)))


# DST changes and month ends, where calendar windows are most easily wrong.
ANCHORS = [
    ("Europe/Berlin", minute("Europe/Berlin", 2026, 3, 29, 3)),
    ("Europe/Berlin", minute("Europe/Berlin", 2026, 10, 25, 3)),
    ("Europe/Berlin", minute("Europe/Berlin", 2026, 4, 1)),
    ("America/New_York", minute("America/New_York", 2026, 3, 8, 3)),
    ("America/New_York", minute("America/New_York", 2026, 11, 1, 2)),
    ("America/New_York", minute("America/New_York", 2026, 3, 1)),
    ("UTC", minute("UTC", 2028, 3, 1)),
]


def series(seed: int, length: int, *, no_data: float, errors: float, broken: float = 0.0):
    """Integer counts with runs of no data, random errors and, optionally, broken samples (NaN, -1)."""
    rng = np.random.default_rng(seed)
    total = rng.integers(0, 20, length).astype(float)
    total[rng.random(length) < no_data] = 0
    bad = rng.binomial(total.astype(np.int64), errors)
    good = total - bad
    if broken:
        hit = rng.random(length) < broken
        total[hit & (rng.random(length) < 0.5)] = math.nan
        good[hit & (rng.random(length) < 0.5)] = -1.0
    return good, total


def assert_matches(status: BudgetStatus, expected: dict) -> None:
    for name in (
        "sli",
        "error_ratio",
        "burn_rate",
        "consumed",
        "remaining",
        "budget_total",
        "budget_consumed",
        "budget_remaining",
        "slices_bad",
    ):
        got, want = getattr(status, name), expected.get(name)
        if want is None:
            assert got is None, name
        else:
            assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9), name
    assert status.no_data is expected["no_data"]
    assert status.events_total == float(expected["events_total"])
    assert status.events_good == float(expected["events_good"])
    for name in ("slices", "slices_with_data", "slices_empty"):
        assert getattr(status, name) == expected.get(name), name


def reference_status(good, total, origin, spec: SLOSpec, now: int, exclusions=()) -> dict:
    window = spec.window
    if isinstance(window, RollingWindow):
        start = period_start = now - window.minutes
        period_end = now
    else:
        period_start, period_end = reference.calendar_period(window.unit, window.zone, now)
        start = period_start
    data = reference.cleaned(good.tolist(), total.tolist(), origin, exclusions)
    return reference.budget(
        data,
        start=start,
        end=now,
        period_start=period_start,
        period_end=period_end,
        target=spec.target,
        method=spec.budgeting.method.value,
        slice_minutes=spec.budgeting.slice_minutes,
        slice_target=spec.budgeting.slice_target,
    )


# ------------------------------------------------------------------------------------------ property tests


@given(
    budgeting=BUDGETINGS,
    target=st.sampled_from(TARGETS),
    period=st.integers(10, 400),
    seed=st.integers(0, 2**32 - 1),
    before=st.integers(-50, 100),
    after=st.integers(-50, 50),
    now=st.integers(-(10**6), 10**6),
    no_data=st.sampled_from([0.0, 0.3, 1.0]),
    errors=st.sampled_from([0.0, 0.01, 0.3]),
    broken=st.sampled_from([0.0, 0.05]),
    exclusions=st.lists(st.tuples(st.integers(-450, 0), st.integers(0, 120)), max_size=3),
)
@settings(max_examples=80, deadline=None)
def test_rolling_windows_match_the_reference(
    budgeting, target, period, seed, before, after, now, no_data, errors, broken, exclusions
) -> None:
    spec = SLOSpec(target, budgeting, RollingWindow(period))
    origin = now - period - before
    length = max(now + after - origin, 1)
    good, total = series(seed, length, no_data=no_data, errors=errors, broken=broken)
    ranges = [(now + start, now + start + span) for start, span in exclusions]
    status = budget_status(good, total, origin=origin, spec=spec, now=now, exclusions=ranges)
    assert_matches(status, reference_status(good, total, origin, spec, now, ranges))
    assert (status.start, status.end, status.period_minutes, status.minutes_left) == (
        now - period,
        now,
        period,
        None,
    )


@given(
    budgeting=BUDGETINGS,
    target=st.sampled_from(TARGETS),
    anchor=st.sampled_from(ANCHORS),
    offset=st.integers(-3 * 1440, 3 * 1440),
    unit=st.sampled_from(["week", "week", "month"]),
    seed=st.integers(0, 2**32 - 1),
    no_data=st.sampled_from([0.0, 0.5]),
    errors=st.sampled_from([0.0, 0.02]),
)
@settings(max_examples=15, deadline=None)
def test_calendar_windows_match_the_reference(budgeting, target, anchor, offset, unit, seed, no_data, errors) -> None:
    zone, instant = anchor
    now = instant + offset
    spec = SLOSpec(target, budgeting, CalendarWindow(unit, zone))
    start, end = reference.calendar_period(unit, zone, now)
    origin = start - 30
    good, total = series(seed, now - origin + 30, no_data=no_data, errors=errors)
    status = budget_status(good, total, origin=origin, spec=spec, now=now)
    assert (status.start, status.end, status.period_minutes, status.minutes_left) == (
        start,
        now,
        end - start,
        end - now,
    )
    assert_matches(status, reference_status(good, total, origin, spec, now))


@given(
    budgeting=BUDGETINGS,
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 5),
    exclusions=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50)), max_size=2),
)
@settings(max_examples=30, deadline=None)
def test_batches_equal_rows_one_by_one(budgeting, seed, rows, exclusions) -> None:
    spec = SLOSpec("99%", budgeting, RollingWindow(180))
    good, total = series(seed, rows * 240, no_data=0.2, errors=0.02)
    good, total = good.reshape(rows, 240), total.reshape(rows, 240)
    ranges = [(1000 + s, 1000 + s + n) for s, n in exclusions]
    batch = budget_statuses(good, total, origin=1000, spec=spec, now=1240, exclusions=ranges)
    assert batch == [
        budget_status(good[i], total[i], origin=1000, spec=spec, now=1240, exclusions=ranges) for i in range(rows)
    ]


# ------------------------------------------------------------------------------------------ example tests


@pytest.mark.parametrize(
    ("target", "week", "four_weeks", "thirty_days"),
    [
        ("99", 100.8, 403.2, 432.0),
        ("99.5", 50.4, 201.6, 216.0),
        ("99.9", 10.08, 40.32, 43.2),
        ("99.95", 5.04, 20.16, 21.6),
        ("99.99", 1.008, 4.032, 4.32),
        ("99.999", 0.1008, 0.4032, 0.432),
    ],
)
def test_budget_minutes_table_b7(target: str, week: float, four_weeks: float, thirty_days: float) -> None:
    for days, minutes in ((7, week), (28, four_weeks), (30, thirty_days)):
        spec = SLOSpec(parse_target(target, percent=True), Budgeting.timeslices(1, "0.99"), RollingWindow(days * 1440))
        now = days * 1440
        status = budget_status(np.ones(now), np.ones(now), origin=0, spec=spec, now=now)
        assert status.budget_total == minutes  # exact: correctly rounded from B x P
        assert status.budget_remaining == minutes and status.consumed == 0.0 and status.sli == 1.0


def test_targets_are_exact() -> None:
    spec = SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(43200))
    assert spec.budget == Fraction(1, 1000)
    assert (spec.budget_float, spec.target_float) == (0.001, 0.999)
    for spelling in ("0.999", Decimal("0.999"), 0.999, Fraction(999, 1000)):
        assert parse_target(spelling) == Fraction(999, 1000)
    assert parse_target("99.9", percent=True) == parse_target(" 99.9 % ") == Fraction(999, 1000)
    for bad in ("99.9", "100%", "-1%", "abc", "nan", True):
        with pytest.raises(ValueError):
            parse_target(bad)  # type: ignore[arg-type]


def test_budgeting_validation() -> None:
    with pytest.raises(ValueError, match="slice target"):
        Budgeting(Method.TIMESLICES, 5)
    with pytest.raises(ValueError, match="slice target"):
        Budgeting.timeslices(5, "1.5")
    with pytest.raises(ValueError, match="slice length"):
        Budgeting.ratio_timeslices(0)
    with pytest.raises(ValueError, match="no slices"):
        Budgeting(Method.OCCURRENCES, 5)
    with pytest.raises(ValueError, match="shorter than one slice"):
        SLOSpec("99%", Budgeting.ratio_timeslices(60), RollingWindow(30))


def test_occurrences_example() -> None:
    spec = SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(10))
    total = np.full(10, 1000.0)
    good = total.copy()
    good[3] = 995  # 5 bad events out of 10,000: half the budget of 10 events
    status = budget_status(good, total, origin=100, spec=spec, now=110)
    assert status.sli == 0.9995 and status.error_ratio == 0.0005
    assert status.burn_rate == 0.5 and status.consumed == 0.5 and status.remaining == 0.5
    assert (status.budget_unit, status.budget_total, status.budget_consumed, status.budget_remaining) == (
        "events",
        10.0,
        5.0,
        5.0,
    )


def test_timeslices_count_bad_slices_and_leave_out_empty_ones() -> None:
    spec = SLOSpec("90%", Budgeting.timeslices(2, "0.95"), RollingWindow(20))
    total = np.full(20, 10.0)
    good = total.copy()
    total[0:2] = good[0:2] = 0  # slice 0: no data
    good[2] = 9  # slice 1: 19/20 = 0.95 -> good (>=)
    good[4] = 8  # slice 2: 18/20 -> bad
    status = budget_status(good, total, origin=0, spec=spec, now=20)
    assert (status.slices, status.slices_with_data, status.slices_empty, status.slices_bad) == (10, 9, 1, 1)
    assert status.sli == 8 / 9
    assert status.budget_total == 2.0  # 10 % of 10 slices of 2 minutes
    assert status.budget_consumed == 2.0 and status.consumed == 1.0 and status.remaining == 0.0


def test_ratio_timeslices_average_the_slice_ratios() -> None:
    spec = SLOSpec("90%", Budgeting.ratio_timeslices(1), RollingWindow(4))
    good, total = np.array([1.0, 50, 0, 3]), np.array([1.0, 100, 0, 4])
    status = budget_status(good, total, origin=0, spec=spec, now=4)
    assert status.sli == pytest.approx((1 + 0.5 + 0.75) / 3)
    assert status.budget_consumed == pytest.approx(0.75)  # 0 + 0.5 + 0.25 bad minutes
    assert status.budget_total == pytest.approx(0.4)


def test_no_data_is_a_state_not_nan() -> None:
    for budgeting in (Budgeting.occurrences(), Budgeting.timeslices(5, "0.9"), Budgeting.ratio_timeslices(5)):
        spec = SLOSpec("99%", budgeting, RollingWindow(60))
        status = budget_status(np.zeros(60), np.zeros(60), origin=0, spec=spec, now=60)
        assert status.no_data
        assert status.sli is status.burn_rate is status.consumed is status.remaining is None
        assert status.budget_consumed is None
        # Timeslices know their budget without data; Occurrences' budget depends on traffic.
        assert status.budget_total == (None if budgeting.method is Method.OCCURRENCES else pytest.approx(0.6))


def test_exclusions_are_no_data_not_good() -> None:
    spec = SLOSpec("99%", Budgeting.occurrences(), RollingWindow(10))
    total = np.full(10, 10.0)
    good = np.full(10, 9.0)
    kept = budget_status(good, total, origin=0, spec=spec, now=10, exclusions=[(0, 5)])
    assert kept.events_total == 50 and kept.error_ratio == pytest.approx(0.1)  # not diluted by 50 good events
    gone = budget_status(good, total, origin=0, spec=spec, now=10, exclusions=[(-5, 20)])
    assert gone.no_data


def test_one_bad_sample_does_not_poison_the_window() -> None:
    spec = SLOSpec("99%", Budgeting.occurrences(), RollingWindow(10))
    total, good = np.full(10, 10.0), np.full(10, 10.0)
    total[4], good[6] = math.nan, math.inf
    status = budget_status(good, total, origin=0, spec=spec, now=10)
    assert status.events_total == 80 and status.sli == 1.0


def test_totals_from_elsewhere() -> None:
    spec = SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(43200))
    span = window_span(spec.window, 43200)
    [status, empty] = budget_from_totals(WindowTotals.from_events([999_000, 0], [1_000_000, 0]), spec, span)
    assert status.consumed == 1.0 and status.budget_total == 1000.0
    assert empty.no_data
    direct = window_totals(np.ones(5), np.ones(5), origin=0, start=[0, 2], end=[5, 4], budgeting=spec.budgeting)
    assert direct.events.tolist() == [5.0, 2.0]
