"""Helpers for SLO tests: create SLOs and push minute counts through the service layer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from relia.slo import service
from relia.slo.schemas import EventBatch, SLOCreate
from tests.factories import OPERATOR


def slo_body(name: str = "checkout-availability", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "service": "checkout",
        "indicator": {"ratio": {}},
        "window": {"rolling": "30d"},
        "objectives": [{"target": 0.999}],
    }
    body.update(spec)
    return body


def create(db, clock, name: str = "checkout-availability", **spec: Any) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        service.create_slo(
            session, actor=OPERATOR, data=SLOCreate.model_validate(slo_body(name, **spec)), now=clock.now()
        )


def push(
    db,
    clock,
    name: str,
    start: datetime,
    counts: list[tuple[float, float]],
    *,
    objective: str | None = None,
    key: str | None = None,
) -> tuple[int, int, bool]:  # type: ignore[no-untyped-def]
    """One point per minute from ``start``: (good, total)."""
    points = [
        {"timestamp": (start + timedelta(minutes=index)).isoformat(), "good": good, "total": total}
        for index, (good, total) in enumerate(counts)
    ]
    batch = EventBatch.model_validate({"points": points, "objective": objective, "idempotencyKey": key})
    with db.transaction() as session:
        return service.ingest(session, actor=OPERATOR, name=name, batch=batch, now=clock.now())
