"""Back-testing alert rules: the SRE Workbook's numbers, and every transition against a reference replay."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from relia.slo.rules import (
    AlertCatalog,
    AlertTier,
    Budgeting,
    CalendarWindow,
    Method,
    RollingWindow,
    Severity,
    SLOSpec,
    alert_policy,
    alert_status,
    backtest,
)
from tests.slo import reference

DAY = 86_400  # seconds


def outage_series(days: int, outage: int, after: int, *, rate: float = 1.0):
    """One step per second: ``days`` of clean history before t = 0, then ``outage`` seconds of 100 %
    errors, then clean traffic until ``outage + after``."""
    history = days * DAY
    total = np.full(history + outage + after, rate)
    good = total.copy()
    good[history : history + outage] = 0
    return good, total, -history


def test_workbook_full_outage_pages_after_52_seconds() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * 1440)))
    good, total, origin = outage_series(30, outage=600, after=3600)
    result = backtest(good, total, policy=policy, step_seconds=1, origin_seconds=origin, evaluate_from=-60)

    first = result.events[0]
    assert (first.severity, first.kind, first.tier) == (Severity.PAGE, "fired", "page-quick")
    assert first.time == 52  # the Workbook's 51.84 s, within one 1-second step
    assert 51.84 <= first.time < 51.84 + 1
    assert round(first.budget_spent, 2) == 0.02  # 52 s of a 2,592 s budget: 2 %
    assert first.long_burn == pytest.approx(52 / 3600 / 0.001)
    assert first.short_burn == pytest.approx(52 / 300 / 0.001)

    # The 1h/5m tier stops within its short window (5 min) once the outage ends at 600 s.
    quick_reset = next(e for e in result.tier_events if e.tier == "page-quick" and e.kind == "reset")
    assert 600 < quick_reset.time <= 600 + 300
    # The page as a whole waits for the 6h/30m tier too: within that tier's short window (30 min).
    page_reset = next(e for e in result.events if e.severity is Severity.PAGE and e.kind == "reset")
    assert (page_reset.tier, page_reset.time) == ("page-slow", 2390)
    assert 600 + 300 < page_reset.time <= 600 + 1800
    # Tickets: 10 % of the budget in a day takes 259.2 s of full outage.
    ticket = next(e for e in result.events if e.severity is Severity.TICKET)
    assert (ticket.kind, ticket.tier, ticket.time) == ("fired", "ticket-quick", 260)
    assert result.firing(Severity.PAGE)[result.times < 52].sum() == 0


def test_a_page_only_on_the_quick_tier_resets_within_five_minutes() -> None:
    spec = SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * 1440))
    policy = alert_policy(spec, tiers=["page-quick"])
    good, total, origin = outage_series(1, outage=600, after=1200, rate=10)
    result = backtest(good, total, policy=policy, step_seconds=1, origin_seconds=origin, evaluate_from=1)
    assert [(e.kind, e.time) for e in result.events] == [("fired", 52), ("reset", 896)]


def test_workbook_full_outage_on_28_days_pages_after_49_seconds() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(28 * 1440)))
    good, total, origin = outage_series(4, outage=120, after=0)
    result = backtest(good, total, policy=policy, step_seconds=1, origin_seconds=origin, evaluate_from=1)
    assert result.events[0].time == 49  # 48.4 s in the reference table


def test_workbook_ten_minute_burst_of_15_percent_errors() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * 1440)))
    minutes = 4 * 1440 + 120
    total = np.full(minutes, 1000.0)
    good = total.copy()
    start = 4 * 1440  # errors from t = 0 to t = 600 s
    good[start : start + 10] = 850
    result = backtest(good, total, policy=policy, step_seconds=60, origin_seconds=-start * 60, evaluate_from=60)
    short, _ = result.burn_rates(5)
    long, _ = result.burn_rates(60)
    times = result.times
    threshold = 14.4
    assert short[times == 60][0] > threshold  # the 5-minute window is over the threshold at once
    assert times[np.argmax(long > threshold)] == 360  # the hour is over it after ~5 min (5.76 min)
    assert [(e.kind, e.tier, e.time) for e in result.events] == [
        ("fired", "page-quick", 360),
        ("reset", "page-quick", 900),  # the short window clears 5 minutes after the errors stop
    ]
    assert long[times == 59 * 60][0] > threshold  # without the short window the page would last an hour
    assert long[times == 65 * 60][0] < threshold


def test_five_minute_steps() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * 1440)), tiers=["page-quick"])
    total = np.ones(48)
    good = total.copy()
    good[24:30] = 0  # 30 minutes of full outage, from t = 0
    result = backtest(good, total, policy=policy, step_seconds=300, origin_seconds=-24 * 300)
    assert [(e.kind, e.time) for e in result.events] == [("fired", 300), ("reset", 2100)]
    assert result.events[0].budget_spent == pytest.approx(300 / (0.001 * 48 * 300) * 48 / 25)


def test_steps_must_divide_the_windows() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * 1440)))
    with pytest.raises(ValueError, match="window 5m"):
        backtest(np.ones(10), np.ones(10), policy=policy, step_seconds=7)
    sliced = alert_policy(SLOSpec("99.9%", Budgeting.timeslices(1, "0.9"), RollingWindow(30 * 1440)))
    with pytest.raises(ValueError, match="slice length"):
        backtest(np.ones(10), np.ones(10), policy=sliced, step_seconds=45)
    with pytest.raises(ValueError, match="origin_seconds"):
        backtest(np.ones(10), np.ones(10), policy=policy, step_seconds=60, origin_seconds=30)
    with pytest.raises(ValueError, match="evaluate_from"):
        backtest(np.ones(10), np.ones(10), policy=policy, evaluate_from=3600)


def test_exclusions_silence_a_maintenance_window() -> None:
    policy = alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), RollingWindow(30 * 1440)), tiers=["page-quick"])
    total = np.ones(240)
    good = total.copy()
    good[100:130] = 0  # a 30-minute outage inside declared maintenance
    plain = backtest(good, total, policy=policy)
    assert [e.kind for e in plain.events] == ["fired", "reset"]
    excused = backtest(good, total, policy=policy, exclusions=[(99 * 60, 131 * 60)])
    assert excused.events == ()


def test_calendar_budget_spent() -> None:
    spec = SLOSpec("99%", Budgeting.occurrences(), CalendarWindow("week", "UTC"))
    policy = alert_policy(spec, tiers=["page-quick"])
    monday = (4 + 7 * 2857) * 1440
    total = np.ones(3 * 1440)
    good = total.copy()
    good[2 * 1440 :] = 0  # from Wednesday 00:00 everything fails
    result = backtest(good, total, policy=policy, origin_seconds=monday * 60)
    fired = result.events[0]
    # The 7-day catalog's quick page needs 8 % of the budget in an hour: 13.44 % errors, 9 bad minutes.
    assert fired.time == (monday + 2 * 1440 + 9) * 60
    # Spent this week: 9 bad minutes against 1 % of the 2 days and 9 minutes of events so far.
    assert fired.budget_spent == pytest.approx(9 / (0.01 * (2 * 1440 + 9)))


# ------------------------------------------------------------------------------------------- property test


BUDGETINGS = st.one_of(
    st.just(Budgeting.occurrences()),
    st.builds(Budgeting.timeslices, st.sampled_from([1, 2]), st.sampled_from(["0.9", "1"])),
    st.builds(Budgeting.ratio_timeslices, st.sampled_from([1, 2])),
)


@given(
    step=st.sampled_from([60, 30, 20]),
    budgeting=BUDGETINGS,
    windows=st.lists(st.tuples(st.integers(1, 8), st.integers(1, 8)), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    start_minute=st.integers(-100, 100),
    length=st.integers(1, 200),
    min_events=st.sampled_from([0, 20]),
)
@settings(max_examples=40, deadline=None)
def test_backtest_matches_a_reference_replay(step, budgeting, windows, seed, start_minute, length, min_events):
    period = 60
    tiers = tuple(
        AlertTier(
            f"{'page' if i % 2 == 0 else 'ticket'}-{i}",
            Severity.PAGE if i % 2 == 0 else Severity.TICKET,
            Fraction(50),
            max(a, b),
            min(a, b),
        )
        for i, (a, b) in enumerate(windows)
    )
    spec = SLOSpec("90%", budgeting, RollingWindow(period))
    policy = alert_policy(spec, catalog=AlertCatalog("tiny", period, tiers), min_events=min_events)
    rng = np.random.default_rng(seed)
    total = rng.integers(0, 12, length).astype(float)
    good = total - rng.binomial(total.astype(np.int64), rng.choice([0.0, 0.05, 0.5, 1.0], length))
    origin = start_minute * 60 // step
    result = backtest(good, total, policy=policy, step_seconds=step, origin_seconds=origin * step)

    per_minute = 60 // step
    data = reference.cleaned(good.tolist(), total.tolist(), origin)
    method, size = budgeting.method.value, budgeting.slice_minutes * per_minute
    state = {rule.name: False for rule in policy.rules} | {"page": False, "ticket": False}
    expected_tiers, expected = [], []
    for end in range(origin + 1, origin + length + 1):
        if budgeting.method is Method.RATIO_TIMESLICES:
            for rule in policy.rules:
                for window in (rule.tier.long_minutes, rule.tier.short_minutes):
                    assume(not reference.near_tie(data, end, window * per_minute, rule.threshold, size))
        now = {
            rule.name: reference.tier_fires(
                data,
                end,
                long=rule.tier.long_minutes * per_minute,
                short=rule.tier.short_minutes * per_minute,
                threshold=rule.threshold,
                method=method,
                slice_minutes=size,
                slice_target=budgeting.slice_target,
                min_events=min_events,
            )
            for rule in policy.rules
        }
        for rule in policy.rules:
            if now[rule.name] != state[rule.name]:
                expected_tiers.append((end * step, "fired" if now[rule.name] else "reset", rule.name))
        for severity in ("page", "ticket"):
            names = [rule.name for rule in policy.rules if rule.severity == severity]
            firing = [name for name in names if now[name]]
            if bool(firing) != state[severity]:
                held = firing or [name for name in names if state[name]]
                expected.append((end * step, "fired" if firing else "reset", held[0]))
            state[severity] = bool(firing)
        state |= now

    def order(item):
        return (item[0], item[1] == "fired", item[2])

    assert [(e.time, e.kind, e.tier) for e in result.tier_events] == sorted(expected_tiers, key=order)
    assert [(e.time, e.kind, e.tier) for e in result.events] == sorted(expected, key=order)
    for event in result.tier_events:
        end = event.time // step
        spent = reference.budget(
            data,
            start=end - period * per_minute,
            end=end,
            period_start=end - period * per_minute,
            period_end=end,
            target=spec.target,
            method=method,
            slice_minutes=size,
            slice_target=budgeting.slice_target,
        ).get("consumed")
        assert event.budget_spent == (None if spent is None else pytest.approx(float(spent)))
    if step == 60:  # the back-test and the one-time evaluation agree at every step
        for index in range(0, length, 17):
            end = origin + index + 1
            status = alert_status(good, total, origin=origin, now=end, policy=policy)
            assert status.page == bool(result.firing("page")[index])
            assert [t.firing for t in status.tiers] == [bool(result.firing(r.name)[index]) for r in policy.rules]
