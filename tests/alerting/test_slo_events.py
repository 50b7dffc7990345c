"""Relia's own burn-rate alerts: the SLO evaluator's ``slo.alert.fired`` / ``slo.alert.resolved`` hooks open and
resolve alert groups of the SLO's service, in the evaluator's transaction; page and ticket are apart."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from relia import domains
from relia.alerting.models import Alert, AlertGroup
from relia.catalog.models import Service
from relia.core import hooks
from tests.alerting.support import make_silence


def _emit(db, clock, event: str, severity: str, objective: str = "default") -> None:  # type: ignore[no-untyped-def]
    domains.load_jobs()
    with db.transaction() as session:
        service_id = session.scalar(select(Service.id).where(Service.slug == "checkout"))
        hooks.emit(
            session,
            event,
            service_id=service_id,
            slo="checkout-availability",
            objective=objective,
            summary=f"{severity.capitalize()} alert on checkout-availability: error budget burning",
            at=clock.now(),
            data={"severity": severity, "tier": "1h/5m", "budget_remaining": 0.4},
        )


def test_page_and_ticket_burns_become_groups_and_resolve_with_the_slo(db, clock, org):
    _emit(db, clock, "slo.alert.fired", "ticket")
    clock.advance(timedelta(minutes=5))
    _emit(db, clock, "slo.alert.fired", "page")
    _emit(db, clock, "slo.alert.fired", "page")  # the evaluator never repeats, but a repeat changes nothing

    with db.reader() as session:
        found = session.scalars(select(AlertGroup).order_by(AlertGroup.id)).all()
        assert [(group.severity, group.state, group.source) for group in found] == [
            ("warning", "triggered", "slo"),
            ("critical", "triggered", "slo"),
        ]
        page = session.scalars(select(Alert).where(Alert.severity == "critical")).one()
        assert page.labels == {
            "alertname": "SLOBurnRate",
            "slo": "checkout-availability",
            "objective": "default",
            "severity": "page",
            "service": "checkout",
        }
        assert page.integration_id is None and page.occurrences == 2
        assert page.details["budget_remaining"] == 0.4

    clock.advance(timedelta(minutes=30))
    _emit(db, clock, "slo.alert.resolved", "page")

    with db.reader() as session:
        states = session.execute(select(AlertGroup.severity, AlertGroup.state, AlertGroup.resolution)).all()
        assert sorted(tuple(row) for row in states) == [
            ("critical", "resolved", "source"),
            ("warning", "triggered", None),
        ]


def test_a_maintenance_window_silences_slo_alerts_too(db, clock, org):
    now = clock.now()
    make_silence(
        db,
        clock,
        "checkout-window",
        service="checkout",
        startsAt=now.isoformat(),
        endsAt=(now + timedelta(hours=1)).isoformat(),
        comment="planned failover",
    )
    _emit(db, clock, "slo.alert.fired", "page")
    with db.reader() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.group_id is None and alert.suppressed_by_silence_id is not None
        assert session.scalars(select(AlertGroup)).all() == []
