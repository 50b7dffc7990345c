"""Helpers for the policy tests: SLOs created and fed through the API, the worker's evaluation steps run on the
simulated clock, gate checks and policies over HTTP.

The usual SLO here: ``checkout-availability`` on service ``checkout`` (team payments), rolling 1 day, target
99 %, pushed as pre-counted minutes. Each minute carries 100 events, so 1 % of the minutes' events is the budget:
a good hour is 6,000 events with room for 60 bad ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.core.models import AuditEntry, TimelineEvent
from relia.policy import jobs as policy_jobs
from relia.slo.evaluator import Evaluator

API = "/api/v1"
SLO = "checkout-availability"


def slo_body(name: str = SLO, service: str = "checkout", **spec: Any) -> dict[str, Any]:
    return {
        "name": name,
        "service": service,
        "indicator": {"ratio": {}},
        "window": {"rolling": "1d"},
        "objectives": [{"target": 0.99}],
        **spec,
    }


def create_slo(client: Any, headers: dict[str, str], name: str = SLO, service: str = "checkout", **spec: Any) -> None:
    response = client.post(f"{API}/slos", headers=headers, json=slo_body(name, service, **spec))
    assert response.status_code == 201, response.text


def push(
    client: Any,
    headers: dict[str, str],
    start: datetime,
    bad: list[float],
    *,
    name: str = SLO,
    total: float = 100,
) -> None:
    """One pre-counted point per minute from ``start``: ``bad[i]`` bad events out of ``total``."""
    points = [
        {"timestamp": (start + timedelta(minutes=index)).isoformat(), "bad": count, "total": total}
        for index, count in enumerate(bad)
    ]
    for first in range(0, len(points), 10_000):
        response = client.post(
            f"{API}/slos/{name}/events", headers=headers, json={"points": points[first : first + 10_000]}
        )
        assert response.status_code == 200, response.text


class Worker:
    """The two tick steps that matter here, in the worker's order: the SLO evaluator (40), then the policies
    (45). One instance per test: the evaluator keeps its running totals between ticks like a worker does."""

    def __init__(self, db: Database, clock: SimulatedClock) -> None:
        self.db, self.clock = db, clock
        self.evaluator = Evaluator()

    def tick(self) -> Any:
        self.evaluator.tick(self.db, self.clock)
        return policy_jobs.evaluate(self.db, self.clock)

    def advance(self, minutes: float) -> Any:
        self.clock.advance(timedelta(minutes=minutes))
        return self.tick()


def gate(client: Any, headers: dict[str, str], service: str = "checkout", change_type: str = "feature", **extra: Any):  # type: ignore[no-untyped-def]
    body = {"service": service, "version": extra.pop("version", "v1.0.0"), "changeType": change_type, **extra}
    response = client.post(f"{API}/gates/check", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def put_policy(client: Any, headers: dict[str, str], name: str, spec: dict[str, Any], status: int | None = None):  # type: ignore[no-untyped-def]
    response = client.put(f"{API}/budget-policies/{name}", headers=headers, json=spec)
    if status is not None:
        assert response.status_code == status, response.text
    return response


def events(db: Database, prefix: str = "policy.") -> list[tuple[str, str | None, str]]:
    """(type, service slug, summary) of the timeline events whose type starts with ``prefix``, oldest first."""
    from relia.catalog.models import Service

    with db.reader() as session:
        rows = session.execute(
            select(TimelineEvent.type, Service.slug, TimelineEvent.summary)
            .outerjoin(Service, TimelineEvent.service_id == Service.id)
            .where(TimelineEvent.type.startswith(prefix))
            .order_by(TimelineEvent.id)
        ).all()
    return [(kind, slug, summary) for kind, slug, summary in rows]


def event_types(db: Database, prefix: str = "policy.") -> list[str]:
    return [kind for kind, _, _ in events(db, prefix)]


def audit_actions(db: Database, kind: str) -> list[tuple[str, str, str]]:
    """(action, key, actor) of the audit entries of one object kind, oldest first."""
    with db.reader() as session:
        return [
            (action, key, actor)
            for action, key, actor in session.execute(
                select(AuditEntry.action, AuditEntry.object_key, AuditEntry.actor)
                .where(AuditEntry.object_kind == kind)
                .order_by(AuditEntry.id)
            ).all()
        ]


def exhaust(client: Any, headers: dict[str, str], clock: SimulatedClock, worker: Worker, *, name: str = SLO) -> None:
    """Two good hours, then ten minutes at 50 % errors: the 1-day budget of a 99 % SLO is spent several times
    over. Leaves the clock two minutes after the bad minutes, evaluated."""
    good_hours(client, headers, clock, worker, name=name)
    burn(client, headers, clock, worker, name=name)


def good_hours(client: Any, headers: dict[str, str], clock: SimulatedClock, worker: Worker, *, name: str = SLO) -> None:
    """The two error-free hours before now, evaluated."""
    push(client, headers, clock.now() - timedelta(hours=2), [0] * 120, name=name)
    worker.tick()


def burn(client: Any, headers: dict[str, str], clock: SimulatedClock, worker: Worker, *, name: str = SLO) -> None:
    """Ten minutes at 50 % errors (the clock moves over them), then two more minutes, evaluated."""
    clock.advance(timedelta(minutes=10))
    push(client, headers, clock.now() - timedelta(minutes=10), [50] * 10, name=name)
    worker.advance(2)


def recover(client: Any, headers: dict[str, str], clock: SimulatedClock, *, name: str = SLO) -> None:
    """Ten minutes of heavy, error-free traffic (10,000 events a minute): the budget is back above 50 %."""
    start = clock.now() - timedelta(minutes=10)
    push(client, headers, start, [0] * 10, name=name, total=10_000)
