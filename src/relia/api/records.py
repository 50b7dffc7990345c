"""Routes over the shared records: the audit log and the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from relia.api.deps import PageDep, PrincipalDep, SessionDep
from relia.catalog.models import Service
from relia.core.errors import BadRequest, FieldError
from relia.core.models import AuditEntry, TimelineEvent
from relia.core.pagination import decode_cursor, encode_cursor
from relia.core.schemas import OutModel, Page

router = APIRouter()


class AuditEntryOut(OutModel):
    id: int
    at: datetime
    actor: str
    via: str
    action: str
    object_kind: str
    object_key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class TimelineEventOut(OutModel):
    id: int
    at: datetime
    type: str
    service: str | None
    actor: str | None
    summary: str
    data: dict[str, Any]


def _before_id(cursor: str | None) -> int | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        # Not ours (a cursor of another list, say): silently starting over would loop a client forever.
        raise BadRequest(
            "The cursor is not one this server issued.",
            errors=[FieldError("query.cursor", "not a cursor of this list")],
        )
    return value


@router.get("/audit", tags=["audit"], summary="The audit log, newest first (administrators)")
def audit_log(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=60)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
    by: Annotated[str | None, Query(max_length=200, description="Only entries by this actor")] = None,
) -> Page[AuditEntryOut]:
    actor.require_admin()
    statement = select(AuditEntry).order_by(AuditEntry.id.desc())
    before = _before_id(page.cursor)
    if before is not None:
        statement = statement.where(AuditEntry.id < before)
    if kind:
        statement = statement.where(AuditEntry.object_kind == kind)
    if key:
        statement = statement.where(AuditEntry.object_key == key)
    if by:
        statement = statement.where(AuditEntry.actor == by)
    rows = session.scalars(statement.limit(page.limit + 1)).all()
    items = [AuditEntryOut.model_validate(row) for row in rows[: page.limit]]
    return Page[AuditEntryOut](items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > page.limit else None)


@router.get("/timeline", tags=["timeline"], summary="Timeline events, newest first")
def timeline(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    service: Annotated[str | None, Query(max_length=63)] = None,
    type: Annotated[str | None, Query(max_length=80, description="Event type, or a prefix ending in '.'")] = None,
) -> Page[TimelineEventOut]:
    statement = (
        select(TimelineEvent, Service.slug)
        .outerjoin(Service, TimelineEvent.service_id == Service.id)
        .order_by(TimelineEvent.id.desc())
    )
    before = _before_id(page.cursor)
    if before is not None:
        statement = statement.where(TimelineEvent.id < before)
    if service:
        statement = statement.where(Service.slug == service)
    if type:
        statement = statement.where(
            TimelineEvent.type.startswith(type, autoescape=True) if type.endswith(".") else TimelineEvent.type == type
        )
    rows = session.execute(statement.limit(page.limit + 1)).all()
    items = [
        TimelineEventOut(
            id=event.id,
            at=event.at,
            type=event.type,
            service=slug,
            actor=event.actor,
            summary=event.summary,
            data=event.data,
        )
        for event, slug in rows[: page.limit]
    ]
    return Page[TimelineEventOut](
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > page.limit else None
    )
