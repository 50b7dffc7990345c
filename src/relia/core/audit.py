"""The audit log: every write through the API, CLI, web or config apply records who, what, when, before
and after."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
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
    entry = AuditEntry(**entry_row(actor=actor, action=action, kind=kind, key=key, before=before, after=after, now=now))
    session.add(entry)
    return entry


def entry_row(
    *,
    actor: Principal,
    action: str,
    kind: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """One entry for ``record_many``: the same fields as ``record``."""
    return {
        "at": now,
        "actor": actor.name,
        "actor_user_id": actor.user_id,
        "via": str(actor.via),
        "action": action,
        "object_kind": kind,
        "object_key": key,
        "before": before,
        "after": after,
        "request_id": actor.request_id,
    }


def record_many(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Record ``entry_row`` entries in one statement, after what the session already holds (ids in order)."""
    if entries:
        session.flush()
        session.execute(insert(AuditEntry.__table__), list(entries))
