"""The timeline: one append-only, typed event log keyed by service (and later incident)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    event = TimelineEvent(type=type, at=at, summary=summary, service_id=service_id, actor=actor, data=data or {})
    session.add(event)
    return event
