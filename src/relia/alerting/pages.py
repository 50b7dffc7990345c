"""Alert pages: the list of alert groups (open ones first), and one group's page with its alerts, its
acknowledge / snooze / resolve buttons, the delivery log of its notifications, and its history.

Thin routes as elsewhere: read through ``relia.alerting.service``, change through ``relia.alerting.groups``
with the signed-in user's rights, and answer a form post with a redirect (post/redirect/get), so every action
works without JavaScript and reloading never repeats it. States are shown as words, a shape and a colour.
"""

from __future__ import annotations

import importlib
import importlib.util
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.alerting import groups, rules, service
from relia.alerting.models import AlertGroup
from relia.api.deps import SessionDep
from relia.catalog.models import Service
from relia.core.auth import Scope
from relia.core.errors import ReliaError
from relia.core.models import TimelineEvent
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
GroupId = Annotated[int, Path(ge=1, le=2**62)]
PAGE_SIZE = 100
HISTORY_LIMIT = 50

GROUP_STATES: dict[str, dict[str, str]] = {
    "triggered": {"label": "triggered", "shape": "▲", "css": "status-bad"},
    "acknowledged": {"label": "acknowledged", "shape": "●", "css": "status-warn"},
    "snoozed": {"label": "snoozed", "shape": "◌", "css": "status-muted"},
    "resolved": {"label": "resolved", "shape": "✔", "css": "status-good"},
}
ALERT_STATES: dict[str, dict[str, str]] = {
    "firing": {"label": "firing", "shape": "▲", "css": "status-bad"},
    "resolved": {"label": "resolved", "shape": "✔", "css": "status-good"},
    "suppressed": {"label": "suppressed", "shape": "◌", "css": "status-muted"},
}
SEVERITIES: dict[str, dict[str, str]] = {
    "critical": {"label": "critical", "shape": "◆", "css": "status-bad"},
    "error": {"label": "error", "shape": "◇", "css": "status-bad"},
    "warning": {"label": "warning", "shape": "△", "css": "status-warn"},
    "info": {"label": "info", "shape": "·", "css": "status-muted"},
}
STATE_FILTERS = {
    "open": "Open (not resolved)",
    "triggered": "Triggered",
    "acknowledged": "Acknowledged",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
    "all": "All",
}
SNOOZE_CHOICES = {"30m": "30 minutes", "1h": "1 hour", "4h": "4 hours", "12h": "12 hours", "1d": "1 day"}
NOTICES = {
    "acknowledged": "Acknowledged: escalation stops for this group.",
    "resolved": "Resolved, with every alert of it that still fired.",
    "snoozed": "Snoozed: escalation pauses until the snooze ends, then the group is triggered again.",
}
templates.env.globals["alert_group_states"] = GROUP_STATES
templates.env.globals["alert_states"] = ALERT_STATES
templates.env.globals["alert_severities"] = SEVERITIES


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


templates.env.filters["alerting_utc"] = _utc


# ------------------------------------------------------------------------------------------------- list


@router.get("/alerts", response_class=HTMLResponse)
@page
def alert_groups_page(
    request: Request,
    session: SessionDep,
    state: Annotated[str, Query(max_length=20)] = "open",
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    viewer = _viewer(request, session)
    state = state if state in STATE_FILTERS else "open"
    found, next_cursor = service.list_groups(
        session,
        state=None if state == "all" else state,
        service=service_slug or None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    names = service.Names(session, found)
    services = session.execute(select(Service.slug, Service.name).order_by(Service.slug)).all()
    counts = service.group_counts(session)
    next_url = None
    if next_cursor:
        next_url = "/alerts?" + urlencode(
            {
                key: value
                for key, value in {"state": state, "service": service_slug, "cursor": next_cursor}.items()
                if value
            }
        )
    return _render(
        request,
        "alerting/list.html",
        viewer,
        rows=[(group, names.services.get(group.service_id, "?")) for group in found],
        services=services,
        state=state,
        service_slug=service_slug or "",
        state_filters=STATE_FILTERS,
        counts=counts,
        open_count=sum(counts.get(name, 0) for name in rules.OPEN_STATES),
        next_url=next_url,
    )


# ------------------------------------------------------------------------------------------------ group


def delivery_log(session: Session, group_id: int) -> list[dict[str, Any]] | None:
    """The notifications of the group from the notification domain, when it is installed (None: it is not).

    Looked up when needed rather than imported: the notification domain is optional here, and an import error
    inside it must surface, not read as "not installed"."""
    if importlib.util.find_spec("relia.notify.service") is None:
        return None
    deliveries = getattr(importlib.import_module("relia.notify.service"), "deliveries_for_group", None)
    if deliveries is None:
        return None
    return [_delivery_row(item) for item in deliveries(session, group_id)]


def _field(item: Any, *names: str) -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def _delivery_row(item: Any) -> dict[str, Any]:
    """One notification as the log shows it, whatever its exact shape (the other domain owns it)."""
    attempts = _field(item, "attempts") or []
    return {
        "at": _field(item, "paged_at", "created_at", "at"),
        "user": _field(item, "user", "recipient"),
        "channel": " · ".join(str(part) for part in (_field(item, "kind"), _field(item, "contact_method")) if part),
        "step": _field(item, "step"),
        "status": str(_field(item, "status") or "—"),
        "delivered_at": _field(item, "delivered_at"),
        "note": _field(item, "note", "detail", "last_error"),
        "attempts": len(attempts) if isinstance(attempts, list) else attempts,
    }


def _history(session: Session, group: AlertGroup) -> list[TimelineEvent]:
    events = session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.service_id == group.service_id, TimelineEvent.type.startswith("alert.group."))
        .where(TimelineEvent.at >= group.opened_at)
        .order_by(TimelineEvent.id.desc())
        .limit(500)
    ).all()
    return [event for event in events if (event.data or {}).get("group_id") == group.id][:HISTORY_LIMIT]


def _group_page(
    request: Request,
    session: Session,
    viewer: Any,
    group_id: int,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    group = groups.get_group(session, group_id)
    alerts = service.group_alerts(session, group.id)
    names = service.Names(session, [group, *alerts])
    return _render(
        request,
        "alerting/group.html",
        viewer,
        status_code=status_code,
        group=group,
        service_slug=names.services.get(group.service_id, "?"),
        integration=names.integrations.get(group.integration_id) if group.integration_id else None,
        alerts=alerts,
        deliveries=delivery_log(session, group.id),
        history=_history(session, group),
        may_act=viewer.scope >= Scope.write,
        is_open=group.state in rules.OPEN_STATES,
        snooze_choices=SNOOZE_CHOICES,
        notice=notice,
        error=error,
    )


@router.get("/alerts/{group_id}", response_class=HTMLResponse)
@page
def alert_group_page(
    request: Request,
    group_id: GroupId,
    session: SessionDep,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    viewer = _viewer(request, session)
    return _group_page(request, session, viewer, group_id, notice=NOTICES.get(notice or ""))


def _act(request: Request, session: Session, group_id: int, csrf_token: str, action: str, change: Any) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    try:
        change(viewer, request.app.state.clock.now())
        session.commit()
    except ReliaError as exc:
        session.rollback()
        return _group_page(
            request, session, viewer, group_id, error=f"Nothing was changed: {exc.detail}", status_code=exc.status
        )
    return RedirectResponse(f"/alerts/{group_id}?notice={action}", status_code=303)


@router.post("/alerts/{group_id}/acknowledge", response_class=HTMLResponse)
@page
def acknowledge_form(
    request: Request, group_id: GroupId, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    return _act(
        request,
        session,
        group_id,
        csrf_token,
        "acknowledged",
        lambda viewer, now: groups.acknowledge(session, actor=viewer, group_id=group_id, now=now),
    )


@router.post("/alerts/{group_id}/resolve", response_class=HTMLResponse)
@page
def resolve_form(
    request: Request, group_id: GroupId, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    return _act(
        request,
        session,
        group_id,
        csrf_token,
        "resolved",
        lambda viewer, now: groups.resolve(session, actor=viewer, group_id=group_id, now=now),
    )


@router.post("/alerts/{group_id}/snooze", response_class=HTMLResponse)
@page
def snooze_form(
    request: Request,
    group_id: GroupId,
    session: SessionDep,
    duration: Annotated[str, Form(max_length=8)] = "1h",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if duration not in SNOOZE_CHOICES:
        duration = "1h"
    return _act(
        request,
        session,
        group_id,
        csrf_token,
        "snoozed",
        lambda viewer, now: groups.snooze(
            session, actor=viewer, group_id=group_id, now=now, duration=rules.parse_duration(duration)
        ),
    )
