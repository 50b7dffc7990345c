"""The audit log: every write through the API, CLI, web or config apply records who, what, when, before
and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relia.core.auth import Principal
from relia.core.models import AuditEntry


def record(
    session: Session,
    *,
    actor: Principal,
    action: str,
    kind: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> AuditEntry:
    entry = AuditEntry(
        at=now,
        actor=actor.name,
        actor_user_id=actor.user_id,
        via=str(actor.via),
        action=action,
        object_kind=kind,
        object_key=key,
        before=before,
        after=after,
        request_id=actor.request_id,
    )
    session.add(entry)
    return entry
