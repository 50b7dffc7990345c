"""The evaluator: running totals moved forward minute by minute equal a recount from the stored minutes;
late data, definition changes, adjustments and calendar periods make it recount; transitions land on the
timeline once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from relia.core.models import TimelineEvent
from relia.slo import service
from relia.slo.evaluator import Evaluator
from relia.slo.models import ObjectiveStatus, WindowState
from relia.slo.schemas import AdjustmentCreate, SLOSpec
from tests.factories import OPERATOR
from tests.slo.support import create, push


def status(db) -> dict:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        rows = session.scalars(select(ObjectiveStatus)).all()
        return {row.objective_id: (row.state, row.budget_remaining, row.detail) for row in rows}


def timeline_types(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return [event.type for event in session.scalars(select(TimelineEvent).order_by(TimelineEvent.id))]


@pytest.mark.parametrize("method", ["Occurrences", "Timeslices", "RatioTimeslices"])
def test_moving_forward_equals_recounting(db, clock, org, method):
    objectives = [{"target": 0.99}]
    if method != "Occurrences":
        objectives = [{"target": 0.99, "timeSliceWindow": "5m", "timeSliceTarget": 0.95}]
        if method == "RatioTimeslices":
            objectives[0].pop("timeSliceTarget")
    create(
        db,
        clock,
        budgetingMethod=method,
        window={"rolling": "1d"},
        objectives=objectives,
        alerting={"noData": {"enabled": True, "after": "15m"}},
    )
    rng = random.Random(7)
    start = clock.now()
    incremental = Evaluator()
    for block in range(12):
        counts = []
        for _ in range(20):
            total = rng.choice([0, 10, 50, 100])
            counts.append((total - rng.choice([0, 0, 1, 5, total]) if total else 0, total))
        clock.advance(timedelta(minutes=20))
        push(db, clock, "checkout-availability", start + timedelta(minutes=block * 20), counts)
        incremental.tick(db, clock)
        moved = status(db)
        with db.transaction() as session:
            session.execute(WindowState.__table__.delete())
        Evaluator().tick(db, clock)
        recounted = status(db)
        assert_same_status(moved, recounted)


def assert_same_status(moved: dict, recounted: dict) -> None:
    assert moved.keys() == recounted.keys()
    for key in moved:
        (state_a, _, a), (state_b, _, b) = moved[key], recounted[key]
        assert state_a == state_b
        assert_close(a, b, "detail")


def assert_close(a: object, b: object, where: str) -> None:
    """Equal, except floats within 1e-9 (sums built in a different order differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}.{index}")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), where
    else:
        assert a == b, where


def test_late_data_is_recounted(db, clock, org):
    create(db, clock, window={"rolling": "1d"})
    start = clock.now()
    clock.advance(timedelta(minutes=61))
    push(db, clock, "checkout-availability", start, [(100, 100)] * 60)
    evaluator = Evaluator()
    evaluator.tick(db, clock)
    ((_, remaining, _),) = status(db).values()
    assert remaining == 1.0
    # A batch arriving late for minutes already counted.
    push(db, clock, "checkout-availability", start + timedelta(minutes=10), [(0, 100)] * 5)
    evaluator.tick(db, clock)
    ((_, remaining, detail),) = status(db).values()
    assert detail["events"] == {"good": 6000.0, "total": 6500.0}
    assert remaining == pytest.approx(1 - (500 / 6500) / 0.001)


def test_data_for_the_current_minute_is_not_late(db, clock, org):
    create(db, clock, window={"rolling": "1d"})
    evaluator = Evaluator()
    clock.advance(timedelta(minutes=5))
    evaluator.tick(db, clock)
    push(db, clock, "checkout-availability", clock.now() - timedelta(seconds=30), [(10, 10)])
    with db.reader() as session:
        from relia.slo.models import Objective

        assert session.scalars(select(Objective.dirty_from_minute)).one() is None


def test_page_fires_and_resolves_once_with_timeline_events(db, clock, org):
    create(db, clock)
    evaluator = Evaluator()
    start = clock.now()
    clock.advance(timedelta(minutes=61))
    push(db, clock, "checkout-availability", start, [(1000, 1000)] * 60)
    evaluator.tick(db, clock)
    assert timeline_types(db) == ["slo.created"]
    outage_start = clock.now() - timedelta(minutes=1)
    for minute in range(3):
        push(db, clock, "checkout-availability", outage_start + timedelta(minutes=minute), [(0, 1000)])
        clock.advance(timedelta(minutes=1))
        evaluator.tick(db, clock)
    ((_state, _, detail),) = status(db).values()
    assert detail["alerts"]["page"] is True and detail["alerts"]["pageTier"] == "page-quick"
    assert timeline_types(db).count("slo.alert.fired") >= 1
    fired = timeline_types(db).count("slo.alert.fired")
    # Errors stop; the 5-minute window clears and the page resolves, announced once.
    recovery = clock.now() - timedelta(minutes=1)
    for minute in range(30):
        push(db, clock, "checkout-availability", recovery + timedelta(minutes=minute), [(1000, 1000)])
        clock.advance(timedelta(minutes=1))
        evaluator.tick(db, clock)
    ((_, _, detail),) = status(db).values()
    assert detail["alerts"]["page"] is False
    assert timeline_types(db).count("slo.alert.fired") == fired
    assert timeline_types(db).count("slo.alert.resolved") >= 1


def test_budget_crossings_are_announced_once_each(db, clock, org):
    create(db, clock, window={"rolling": "1d"}, objectives=[{"target": 0.9}])
    evaluator = Evaluator()
    start = clock.now()
    clock.advance(timedelta(minutes=31))
    # 6 % errors: 60 % of a 10 % budget consumed.
    push(db, clock, "checkout-availability", start, [(94, 100)] * 30)
    evaluator.tick(db, clock)
    assert timeline_types(db).count("slo.budget.crossed") == 1
    clock.advance(timedelta(minutes=1))
    evaluator.tick(db, clock)
    assert timeline_types(db).count("slo.budget.crossed") == 1


def test_adjustment_excludes_a_period(db, clock, org):
    create(db, clock, window={"rolling": "1d"})
    start = clock.now()
    clock.advance(timedelta(minutes=61))
    push(db, clock, "checkout-availability", start, [(1000, 1000)] * 30 + [(0, 1000)] * 10 + [(1000, 1000)] * 20)
    evaluator = Evaluator()
    evaluator.tick(db, clock)
    ((state, remaining, _),) = status(db).values()
    assert state == "exhausted"
    with db.transaction() as session:
        service.add_adjustment(
            session,
            actor=OPERATOR,
            name="checkout-availability",
            now=clock.now(),
            data=AdjustmentCreate(
                start=start + timedelta(minutes=30), end=start + timedelta(minutes=40), reason="planned failover"
            ),
        )
    evaluator.tick(db, clock)
    ((state, remaining, detail),) = status(db).values()
    assert (state, remaining) == ("healthy", 1.0)
    assert detail["events"]["total"] == 50_000


def test_definition_change_recounts(db, clock, org):
    create(db, clock, window={"rolling": "1d"})
    clock.advance(timedelta(minutes=11))
    push(db, clock, "checkout-availability", clock.now() - timedelta(minutes=11), [(990, 1000)] * 10)
    evaluator = Evaluator()
    evaluator.tick(db, clock)
    ((_, remaining, _),) = status(db).values()
    assert remaining == pytest.approx(-9.0)
    with db.transaction() as session:
        slo = service.get_slo(session, "checkout-availability")
        spec = SLOSpec.model_validate({**service.slo_spec(slo), "objectives": [{"target": 0.98}]})
        service.update_slo(session, actor=OPERATOR, name="checkout-availability", spec=spec, now=clock.now())
    evaluator.tick(db, clock)
    ((_, remaining, _),) = status(db).values()
    assert remaining == pytest.approx(0.5)


def test_calendar_month_starts_afresh(db, org):
    from relia.core.clock import SimulatedClock

    clock = SimulatedClock(datetime(2026, 3, 31, 20, 0, tzinfo=UTC))
    create(db, clock, window={"calendar": "month", "timeZone": "Europe/Berlin"})
    evaluator = Evaluator()
    clock.advance(timedelta(minutes=61))
    push(db, clock, "checkout-availability", clock.now() - timedelta(minutes=61), [(0, 10)] * 60)
    evaluator.tick(db, clock)
    ((state, _, detail),) = status(db).values()
    assert state == "exhausted" and detail["window"]["start"] == "2026-02-28T23:00:00+00:00"
    # Berlin's April starts at 22:00 UTC on 31 March (summer time): the budget is whole again.
    clock.set(datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    push(db, clock, "checkout-availability", datetime(2026, 3, 31, 22, 0, tzinfo=UTC), [(10, 10)] * 20)
    evaluator.tick(db, clock)
    ((state, remaining, detail),) = status(db).values()
    assert detail["window"]["start"] == "2026-03-31T22:00:00+00:00"
    assert remaining == 1.0
    # The alert windows still hold March's errors: burning fast is about the last hours, whatever the month.
    assert (state, detail["alerts"]["ticket"]) == ("at_risk", True)
    assert detail["window"]["periodMinutes"] == 30 * 24 * 60


def test_no_data_is_a_state_and_an_optional_alert(db, clock, org):
    create(db, clock, alerting={"noData": {"enabled": True, "after": "10m"}})
    evaluator = Evaluator()
    clock.advance(timedelta(minutes=2))
    evaluator.tick(db, clock)
    ((state, remaining, detail),) = status(db).values()
    assert (state, remaining, detail["sli"]) == ("no_data", None, None)
    assert "slo.nodata.started" in timeline_types(db)
    push(db, clock, "checkout-availability", clock.now() - timedelta(minutes=1), [(5, 5)])
    clock.advance(timedelta(minutes=1))
    evaluator.tick(db, clock)
    assert "slo.nodata.ended" in timeline_types(db)


def test_a_restarted_evaluator_resumes_from_saved_totals(db, clock, org):
    create(db, clock, window={"rolling": "1d"})
    start = clock.now()
    clock.advance(timedelta(minutes=40 - clock.now().minute % 10))
    push(db, clock, "checkout-availability", start, [(99, 100)] * 30)
    first = Evaluator()
    report = first.tick(db, clock)
    assert report.recounted == 1
    before = status(db)
    clock.advance(timedelta(minutes=1))
    again = Evaluator().tick(db, clock)
    assert again.recounted == 0, "saved running totals are picked up"
    assert status(db).keys() == before.keys()


def test_evaluation_is_skipped_within_the_same_minute(db, clock, org):
    create(db, clock)
    evaluator = Evaluator()
    clock.advance(timedelta(minutes=2))
    assert evaluator.tick(db, clock).skipped is False
    clock.advance(timedelta(seconds=5))
    assert evaluator.tick(db, clock).skipped is True
