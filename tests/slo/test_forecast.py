"""Time to exhaustion and budget left at the end of the period, at a constant burn rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relia.slo.rules import (
    Budgeting,
    CalendarWindow,
    RollingWindow,
    SLOSpec,
    alert_policy,
    budget_status,
    evaluate_slo,
    evaluate_slos,
    forecast,
    remaining_at_period_end,
    time_to_exhaustion,
)
from tests.slo import reference

DAY = 1440
MAYBE = st.one_of(st.none(), st.floats(-3, 3, allow_nan=False))


@given(MAYBE, MAYBE, st.integers(1, 10**6))
@settings(max_examples=100, deadline=None)
def test_time_to_exhaustion_matches_the_reference(remaining, burn, period) -> None:
    assert time_to_exhaustion(remaining, burn, period) == reference.time_to_exhaustion(remaining, burn, period)


@pytest.mark.parametrize(("burn", "minutes"), [(1, 30 * DAY), (2, 15 * DAY), (10, 3 * DAY), (1000, 43.2)])
def test_workbook_table_5_4(burn: float, minutes: float) -> None:
    # 99.9 % over 30 days: burning at 1x, 2x, 10x, 1000x empties a full budget in 30 d, 15 d, 3 d, 43 min.
    assert time_to_exhaustion(1.0, burn, 30 * DAY) == pytest.approx(minutes)


def test_five_nines_exhausts_in_26_seconds() -> None:
    burn = 1 / float(SLOSpec("99.999%", Budgeting.occurrences(), RollingWindow(30 * DAY)).budget)
    assert time_to_exhaustion(1.0, burn, 30 * DAY) * 60 == pytest.approx(25.92)


def test_edges() -> None:
    assert time_to_exhaustion(0.0, 5.0, 100) == 0.0
    assert time_to_exhaustion(-0.5, 5.0, 100) == 0.0
    assert time_to_exhaustion(0.5, 0.0, 100) is None
    assert time_to_exhaustion(None, 1.0, 100) is None
    assert time_to_exhaustion(0.5, 2.0, 100) == 25.0


@given(MAYBE, MAYBE, st.integers(1, 10**6), st.one_of(st.none(), st.integers(0, 10**6)))
@settings(max_examples=100, deadline=None)
def test_remaining_at_period_end_follows_its_definition(remaining, burn, period, left) -> None:
    got = remaining_at_period_end(remaining, burn, period_minutes=period, minutes_left=left)
    if remaining is None or burn is None:
        assert got is None
    elif left is None:  # rolling: one more full period at this burn replaces the whole window
        assert got == 1 - burn
    else:
        assert got == pytest.approx(remaining - burn * left / period)


def test_remaining_at_period_end() -> None:
    assert remaining_at_period_end(0.6, 2.0, period_minutes=100, minutes_left=10) == pytest.approx(0.4)
    assert remaining_at_period_end(0.6, 2.0, period_minutes=100) == -1.0  # rolling: 1 - br
    assert remaining_at_period_end(0.6, 0.5, period_minutes=100) == 0.5
    assert remaining_at_period_end(None, 2.0, period_minutes=100) is None
    assert remaining_at_period_end(0.6, None, period_minutes=100, minutes_left=1) is None


def test_forecast_of_a_calendar_status() -> None:
    spec = SLOSpec("99%", Budgeting.occurrences(), CalendarWindow("week", "UTC"))
    monday = (4 + 7 * 2857) * DAY  # 1970-01-05 was a Monday, and so is every 7th day after it
    now = monday + 2 * DAY
    total = np.full(2 * DAY, 100.0)
    good = total - 1  # 1 % errors on a 99 % target: burn rate 1, the budget of the events so far is spent
    status = budget_status(good, total, origin=monday, spec=spec, now=now)
    assert status.minutes_left == 5 * DAY and status.period_minutes == 7 * DAY
    result = forecast(status, burn_rate=1.0)
    assert status.remaining == pytest.approx(0.0, abs=1e-12)
    assert result.minutes_to_exhaustion == 0.0
    assert result.remaining_at_period_end == pytest.approx(-5 / 7)


def test_evaluate_combines_budget_alerts_and_forecast() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * DAY)))
    length = 30 * DAY
    total = np.full(length, 100.0)
    good = total.copy()
    good[-30:] = 90  # 10 % errors for the last 30 minutes
    result = evaluate_slo(good, total, origin=0, now=length, policy=policy)
    assert result.alerts.page_tier == "page-quick"
    assert result.budget.consumed == pytest.approx(300 / 4320)
    assert result.forecast.burn_rate == pytest.approx(50.0)  # 5 % over the last hour
    assert result.forecast.minutes_to_exhaustion == pytest.approx((1 - 300 / 4320) * length / 50)
    assert result.forecast.remaining_at_period_end == pytest.approx(-49)
    rows = evaluate_slos(np.stack([good, total]), np.stack([total, total]), origin=0, now=length, policy=policy)
    assert rows[0] == result and not rows[1].alerts.page and rows[1].budget.consumed == 0
    quiet = evaluate_slo(good, total, origin=0, now=length + 61, policy=policy)  # no data in the last hour
    assert quiet.forecast.burn_rate is None and quiet.forecast.minutes_to_exhaustion is None
    assert not quiet.budget.no_data
