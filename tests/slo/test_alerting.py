"""Alert window catalogs, burn factors and thresholds, lints, and multiwindow multi-burn-rate decisions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from relia.slo.rules import (
    CUSTOM_7D,
    GOOGLE_28D,
    GOOGLE_30D,
    AlertCatalog,
    AlertTier,
    Budgeting,
    CalendarWindow,
    Method,
    RollingWindow,
    Severity,
    SLOSpec,
    WindowTotals,
    alert_catalog,
    alert_catalog_from_sloth,
    alert_from_totals,
    alert_policy,
    alert_status,
    alert_statuses,
    time_to_exhaustion,
    totals_by_window,
)
from tests.conformance import CONFORMANCE
from tests.slo import reference

WINDOWS = CONFORMANCE / "sloth" / "windows"
DAY = 1440


def spec(target: str = "99.9%", days: int = 30, budgeting: Budgeting | None = None) -> SLOSpec:
    return SLOSpec(target, budgeting or Budgeting.occurrences(), RollingWindow(days * DAY))


# ------------------------------------------------------------------------------------- catalogs and factors


def test_google_30d_factors_and_thresholds_b3() -> None:
    policy = alert_policy(spec())
    assert policy.catalog is GOOGLE_30D
    assert [(r.name, r.tier.long_minutes, r.tier.short_minutes) for r in policy.rules] == [
        ("page-quick", 60, 5),
        ("page-slow", 360, 30),
        ("ticket-quick", 1440, 120),
        ("ticket-slow", 4320, 360),
    ]
    assert [r.factor for r in policy.rules] == [Fraction(72, 5), 6, 3, 1]
    assert [r.factor_float for r in policy.rules] == [14.4, 6.0, 3.0, 1.0]
    assert [r.threshold_float for r in policy.rules] == [0.0144, 0.006, 0.003, 0.001]
    assert [r.severity for r in policy.rules] == [
        Severity.PAGE,
        Severity.PAGE,
        Severity.TICKET,
        Severity.TICKET,
    ]
    # Time to exhaustion of each tier is L / p: 50 h, 120 h, 240 h, 720 h.
    hours = [time_to_exhaustion(1.0, r.factor_float, 30 * DAY) / 60 for r in policy.rules]
    assert hours == pytest.approx([50, 120, 240, 720])
    assert policy.windows == (5, 30, 60, 120, 360, 1440, 4320)
    assert policy.lints() == []


def test_google_28d_factors_b3() -> None:
    policy = alert_policy(spec(days=28))
    assert policy.catalog is GOOGLE_28D
    assert [r.factor_float for r in policy.rules] == [13.44, 5.6, 2.8, 0.9333333333333333]
    assert [r.threshold_float for r in policy.rules] == [0.01344, 0.0056, 0.0028, 0.0009333333333333333]


def test_custom_7d_factors() -> None:
    policy = alert_policy(spec(days=7))
    assert policy.catalog is CUSTOM_7D
    assert [r.factor_float for r in policy.rules] == [13.44, 3.5, 1.4, 0.98]


@pytest.mark.parametrize(
    ("name", "factors"),
    [
        ("google-30d.yaml", [14.4, 6, 3, 1]),
        ("google-28d.yaml", [13.44, 5.6, 2.8, 0.9333333333333333]),
        ("custom-7d.yaml", [13.44, 3.5, 1.4, 0.98]),
        ("custom-30d.yaml", [14.4, 4.8, 3, 1]),
    ],
)
def test_sloth_catalog_files(name: str, factors: list[float]) -> None:
    catalog = alert_catalog_from_sloth(yaml.safe_load((WINDOWS / name).read_text()))
    policy = alert_policy(spec(days=catalog.period_minutes // DAY), catalog=catalog)
    assert [r.factor_float for r in policy.rules] == factors
    if catalog.period_minutes in (7 * DAY, 28 * DAY) or name == "google-30d.yaml":
        assert catalog.tiers == alert_catalog(catalog.period_minutes).tiers


def test_sloth_catalog_refuses_incomplete_documents() -> None:
    with pytest.raises(ValueError, match="AlertWindows"):
        alert_catalog_from_sloth({"kind": "SLO"})
    with pytest.raises(ValueError, match=r"spec\.page\.quick"):
        alert_catalog_from_sloth({"kind": "AlertWindows", "spec": {"sloPeriod": "30d"}})


def test_other_periods_scale_the_30d_windows() -> None:
    catalog = alert_catalog(90 * DAY)
    assert [(t.long_minutes, t.short_minutes) for t in catalog.tiers] == [
        (180, 15),
        (1080, 90),
        (4320, 360),
        (12960, 1080),
    ]
    assert [r.factor_float for r in alert_policy(spec(days=90)).rules] == [14.4, 6, 3, 1]
    # 14 days: 5m x 14/30 = 2.33 -> 2, 30m -> 14, 1h -> 28, 2h -> 56 (rounded half up)
    assert [(t.long_minutes, t.short_minutes) for t in alert_catalog(14 * DAY).tiers][:2] == [
        (28, 2),
        (168, 14),
    ]
    # Calendar windows use their nominal length: a month is 30 days.
    assert alert_policy(SLOSpec("99.9%", Budgeting.occurrences(), CalendarWindow("month", "UTC"))).catalog is GOOGLE_30D


def test_lint_windows_that_round_to_zero() -> None:
    policy = alert_policy(spec(days=1))  # 5m x 1/30 rounds to 0
    quick = policy.rules[0]
    assert quick.tier.short_minutes == 0 and not quick.can_fire
    assert [(lint.code, lint.severity) for lint in policy.lints()] == [("alert-window-zero", "error")]
    assert "page-quick" in policy.lints()[0].message
    tiny = alert_policy(spec(days=1), catalog=alert_catalog(300))  # 5 hours: every long window rounds to 0 too
    assert all(r.factor is None and not r.can_fire for r in tiny.rules[:1])


def test_lint_a_90_percent_target_can_never_page_on_the_quick_tier() -> None:
    policy = alert_policy(spec("90%"))
    assert [r.can_fire for r in policy.rules] == [False, True, True, True]
    [lint] = policy.lints()
    assert lint.code == "alert-tier-never-fires"
    assert "14.4" in lint.message and "page-quick" in lint.message
    # A full outage never fires it, and the other tiers still do.
    status = alert_status(np.zeros(5000), np.ones(5000), origin=0, now=5000, policy=policy)
    assert not status.tier("page-quick").firing
    assert status.page and status.page_tier == "page-slow"


def test_lint_windows_shorter_than_a_slice() -> None:
    policy = alert_policy(spec(budgeting=Budgeting.timeslices(10, "0.99")))
    codes = [lint.code for lint in policy.lints()]
    assert codes == ["alert-window-below-slice"]
    assert "page-quick" in policy.lints()[0].message


def test_policy_tier_selection_and_validation() -> None:
    policy = alert_policy(spec(), tiers=["page-quick"], min_events=10)
    assert [r.name for r in policy.rules] == ["page-quick"] and policy.windows == (5, 60)
    with pytest.raises(ValueError, match="unknown alert tiers"):
        alert_policy(spec(), tiers=["page-fast"])
    with pytest.raises(ValueError, match="min_events"):
        alert_policy(spec(), min_events=-1)


# ------------------------------------------------------------------------------------------------ decisions


def test_both_windows_must_exceed() -> None:
    policy = alert_policy(spec(), tiers=["page-quick"])
    total = np.full(120, 100.0)
    good = total.copy()
    good[-5:] = 97  # 3 % errors in the last 5 minutes only: the 1 h ratio is 0.25 %, under 1.44 %
    status = alert_status(good, total, origin=0, now=120, policy=policy)
    assert not status.page
    assert status.tier("page-quick").short_burn == pytest.approx(30)
    assert status.tier("page-quick").long_burn == pytest.approx(2.5)
    good[-60:] = 98  # 2 % for the whole hour
    status = alert_status(good, total, origin=0, now=120, policy=policy)
    assert status.page and status.page_tier == "page-quick"
    assert (status.tier("page-quick").long_events, status.tier("page-quick").short_events) == (6000, 500)


def test_threshold_is_strict_and_exact() -> None:
    # An error ratio of exactly 1.44 % does not fire: 0.0144 is compared as 9/625, not as a float.
    policy = alert_policy(spec(), tiers=["page-quick"])
    total = np.full(60, 625.0)
    at_threshold = total - 9
    assert not alert_status(at_threshold, total, origin=0, now=60, policy=policy).page
    assert alert_status(at_threshold - 0.5, total, origin=0, now=60, policy=policy).page


def test_min_events_guard() -> None:
    policy = alert_policy(spec(), tiers=["page-quick"], min_events=100)
    good, total = np.zeros(60), np.ones(60)  # a full outage, but only 5 events in the short window
    assert not alert_status(good, total, origin=0, now=60, policy=policy).page
    assert alert_status(good, total * 20, origin=0, now=60, policy=policy).page


def test_no_data_never_fires() -> None:
    status = alert_status(np.zeros(5000), np.zeros(5000), origin=0, now=5000, policy=alert_policy(spec()))
    assert not status.page and not status.ticket
    assert all(t.long_burn is None and t.short_burn is None for t in status.tiers)


def test_totals_from_elsewhere_and_by_window() -> None:
    policy = alert_policy(spec())
    # 10 % errors everywhere
    sums = {m: WindowTotals.from_events(m * 90.0, m * 100.0) for m in policy.windows}
    [status] = alert_from_totals(sums, policy)
    assert status.page_tier == "page-quick" and status.ticket_tier == "ticket-quick"
    with pytest.raises(ValueError, match="missing totals"):
        alert_from_totals({5: sums[5]}, policy)
    good, total = np.full(5000, 90.0), np.full(5000, 100.0)
    computed = totals_by_window(
        good, total, origin=0, now=5000, windows=policy.windows, budgeting=Budgeting.occurrences()
    )
    assert alert_from_totals(computed, policy) == [alert_status(good, total, origin=0, now=5000, policy=policy)]


# ------------------------------------------------------------------------------------------- property tests


TIER = st.tuples(st.sampled_from(["1", "2", "5", "10", "50"]), st.integers(1, 90), st.integers(1, 90))
BUDGETINGS = st.one_of(
    st.just(Budgeting.occurrences()),
    st.builds(Budgeting.timeslices, st.sampled_from([1, 2, 5]), st.sampled_from(["0.9", "0.99", "1"])),
    st.builds(Budgeting.ratio_timeslices, st.sampled_from([1, 3])),
)


@given(
    tiers=st.lists(TIER, min_size=1, max_size=4),
    period=st.integers(200, 3000),
    budgeting=BUDGETINGS,
    target=st.sampled_from(["90%", "95%", "99%", "99.9%"]),
    seed=st.integers(0, 2**32 - 1),
    now=st.integers(-5000, 5000),
    before=st.integers(0, 150),
    errors=st.sampled_from([0.0, 0.02, 0.2, 1.0]),
    no_data=st.sampled_from([0.0, 0.3]),
    min_events=st.sampled_from([0, 50]),
)
@settings(max_examples=80, deadline=None)
def test_alert_status_matches_the_reference(
    tiers, period, budgeting, target, seed, now, before, errors, no_data, min_events
) -> None:
    catalog = AlertCatalog(
        "random",
        period,
        tuple(
            AlertTier(
                f"{'page' if i < 2 else 'ticket'}-{i}",
                Severity.PAGE if i < 2 else Severity.TICKET,
                Fraction(p),
                max(a, b),
                min(a, b),
            )
            for i, (p, a, b) in enumerate(tiers)
        ),
    )
    slo = SLOSpec(target, budgeting, RollingWindow(period))
    policy = alert_policy(slo, catalog=catalog, min_events=min_events)
    rng = np.random.default_rng(seed)
    length = 90 + before
    total = rng.integers(0, 30, length).astype(float)
    total[rng.random(length) < no_data] = 0
    good = total - rng.binomial(total.astype(np.int64), errors)
    origin = now - length
    status = alert_status(good, total, origin=origin, now=now, policy=policy)

    data = reference.cleaned(good.tolist(), total.tolist(), origin)
    size = budgeting.slice_minutes
    method = budgeting.method.value
    for rule, tier in zip(policy.rules, status.tiers, strict=True):
        threshold = reference.factor(rule.tier.budget_percent, period, rule.tier.long_minutes) * slo.budget
        if budgeting.method is Method.RATIO_TIMESLICES:
            for window in (rule.tier.long_minutes, rule.tier.short_minutes):
                assume(not reference.near_tie(data, now, window, threshold, size))
        expected = reference.tier_fires(
            data,
            now,
            long=rule.tier.long_minutes,
            short=rule.tier.short_minutes,
            threshold=threshold,
            method=method,
            slice_minutes=size,
            slice_target=budgeting.slice_target,
            min_events=min_events,
        )
        assert tier.firing is expected, rule.name
        for window, got in (
            (rule.tier.long_minutes, tier.long_burn),
            (rule.tier.short_minutes, tier.short_burn),
        ):
            want = reference.burn(data, now, window, slo.budget, method, size, budgeting.slice_target)
            assert got == (None if want is None else pytest.approx(float(want), rel=1e-9, abs=1e-12))
    pages = [t.name for t in status.tiers if t.firing and t.severity is Severity.PAGE]
    tickets = [t.name for t in status.tiers if t.firing and t.severity is Severity.TICKET]
    assert (status.page, status.page_tier) == (bool(pages), pages[0] if pages else None)
    assert (status.ticket, status.ticket_tier) == (bool(tickets), tickets[0] if tickets else None)


@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 6), budgeting=BUDGETINGS)
@settings(max_examples=25, deadline=None)
def test_alert_batches_equal_rows_one_by_one(seed: int, rows: int, budgeting: Budgeting) -> None:
    policy = alert_policy(spec(days=1, budgeting=budgeting))
    rng = np.random.default_rng(seed)
    total = rng.integers(0, 30, (rows, 300)).astype(float)
    good = total - rng.binomial(total.astype(np.int64), rng.random((rows, 1)) * 0.1)
    batch = alert_statuses(good, total, origin=7, now=300, policy=policy)
    assert batch == [alert_status(good[i], total[i], origin=7, now=300, policy=policy) for i in range(rows)]
