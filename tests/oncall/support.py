"""Helpers for the on-call API and service tests: schedule bodies for the ``org`` fixture's people (alice and
bob on payments, carol on search) and snapshots that prove a refused request changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from relia.core.db import Database
from relia.core.models import AuditEntry
from relia.oncall.models import CalendarFeed, Schedule, ShiftEvent, SwapRequest

API = "/api/v1"


def weekly_layer(name: str = "primary", participants: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A weekly rotation handing off on Mondays at 00:00 UTC (2026-03-02 is a Monday, the test clock's day)."""
    return {
        "name": name,
        "rotation": {"participants": participants or ["alice", "bob"], "turn": "1w", "handoff": "2026-03-02T00:00"},
        **extra,
    }


def schedule_body(name: str = "payments-primary", *, team: str = "payments", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "team": team, "timeZone": "UTC", "layers": [weekly_layer()]}
    body.update(spec)
    return body


def counts(db: Database) -> dict[str, int]:
    """Rows of every on-call table and of the audit log."""
    with db.reader() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Schedule, SwapRequest, ShiftEvent, CalendarFeed, AuditEntry)
        }


def versions(db: Database) -> dict[str, int]:
    with db.reader() as session:
        return dict(session.execute(select(Schedule.name, Schedule.version)).all())
