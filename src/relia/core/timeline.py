"""The timeline: one append-only, typed event log keyed by service (and later incident)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from relia.core.models import TimelineEvent


def append(
    session: Session,
    *,
    type: str,
    at: datetime,
    summary: str,
    service_id: int | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    event = TimelineEvent(**event_row(type=type, at=at, summary=summary, service_id=service_id, actor=actor, data=data))
    session.add(event)
    return event


def event_row(
    *,
    type: str,
    at: datetime,
    summary: str,
    service_id: int | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event for ``append_many``: the same fields as ``append``."""
    return {"type": type, "at": at, "summary": summary, "service_id": service_id, "actor": actor, "data": data or {}}


def append_many(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Append ``event_row`` events in one statement (a policy starting thousands of restrictions at once),
    after what the session already holds, so the ids keep the order things happened in."""
    if events:
        session.flush()
        session.execute(insert(TimelineEvent.__table__), list(events))
