"""Policy pages: every budget policy and what it has in force, overrides with their approve and reject buttons,
the velocity report, and the policy section of a service page.

Thin routes as elsewhere: read through ``relia.policy.service`` and ``relia.policy.velocity``, write only through
the service functions with the signed-in user's rights, and answer a form with a redirect (or the same page
with the refusal next to the form). Every page works without JavaScript."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.api.deps import SessionDep
from relia.catalog.models import Service
from relia.core.auth import Principal, Scope
from relia.core.errors import ReliaError
from relia.core.models import TimelineEvent
from relia.policy import rules, service, velocity
from relia.policy.schemas import OverrideCreate
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
Id = Annotated[int, Path(ge=1, le=2**62)]

KINDS: dict[str, dict[str, str]] = {
    "freeze": {"label": "frozen", "shape": "✖", "css": "status-bad"},
    "approval": {"label": "approval required", "shape": "◆", "css": "status-warn"},
    "warn": {"label": "warning", "shape": "▲", "css": "status-warn"},
}
OVERRIDE_STATES: dict[str, dict[str, str]] = {
    "pending": {"label": "awaiting approval", "shape": "○", "css": "status-warn"},
    "approved": {"label": "approved", "shape": "✔", "css": "status-good"},
    "rejected": {"label": "rejected", "shape": "✖", "css": "status-bad"},
    "expired": {"label": "expired", "shape": "\N{EN DASH}", "css": "status-muted"},
}
VERDICTS: dict[str, dict[str, str]] = {
    "faster": {"label": "room to ship faster", "shape": "▲", "css": "status-good"},
    "on-track": {"label": "on track", "shape": "●", "css": "status-good"},
    "slow-down": {"label": "slow down", "shape": "▼", "css": "status-bad"},
    "unknown": {"label": "not enough data", "shape": "○", "css": "status-muted"},
}
PERIODS = ("7d", "14d", "28d", "30d", "90d")
DURATIONS = ("1h", "4h", "12h", "1d", "3d", "7d")
NOTICES = {
    "requested": "Override requested. Someone else with rights on the service must approve it.",
    "approved": "Override approved: the gate lets that version through until it expires.",
    "rejected": "Override rejected.",
    "closed": "Action item closed.",
}
templates.env.globals["policy_kinds"] = KINDS
templates.env.globals["override_states"] = OVERRIDE_STATES
templates.env.globals["velocity_verdicts"] = VERDICTS
templates.env.filters["policy_percent"] = lambda value: "no data" if value is None else rules.percent(value)


def _why_not(viewer: Principal) -> str | None:
    if viewer.scope < Scope.write:
        return "You are signed in with a read-only credential: you can read overrides but not request or decide them."
    return None


# ----------------------------------------------------------------------------------------------- policies


@router.get("/policies", response_class=HTMLResponse)
@page
def policies_page(request: Request, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    now = request.app.state.clock.now()
    policies = [
        {
            "name": name,
            "built_in": row is None,
            "spec": spec,
            "summary": service.policy_summary(spec),
            "scope": _scope_text(spec),
            "states": service.policy_states(session, policy=name),
            "config_managed": bool(row and row.config_managed),
        }
        for name, spec, row in service.effective_policies(session)
    ]
    return _render(
        request,
        "policy/policies.html",
        viewer,
        policies=policies,
        # Per service, the most restrictive first (the list comes newest first, and the sort keeps that within).
        restrictions=sorted(
            service.list_restrictions(session, active=True),
            key=lambda item: (item["service"], rules.RESTRICTION_RANK.get(item["kind"], 9)),
        ),
        handoffs=service.list_handoffs(session, active=True),
        pending=service.list_overrides(session, now=now, status="pending"),
        items=service.list_action_items(session, status="open"),
    )


def _scope_text(spec: Any) -> str:
    scope = spec.scope
    if scope.organisation:
        return "the whole organisation"
    if scope.service:
        return f"service {scope.service}"
    return f"team {scope.team}'s services"


# ---------------------------------------------------------------------------------------------- overrides


def _services(session: Session, viewer: Principal) -> list[tuple[str, str]]:
    """(slug, name) of the services the viewer may request overrides for."""
    rows = session.execute(select(Service.slug, Service.name, Service.owner_team_id).order_by(Service.name)).all()
    return [(slug, name) for slug, name, team in rows if viewer.can_change_team(team)]


def _overrides_page(
    request: Request,
    session: Session,
    viewer: Principal,
    *,
    notice: str | None = None,
    form_errors: list[str] | None = None,
    form_values: dict[str, str] | None = None,
    decide_error: str | None = None,
    status_code: int = 200,
) -> Response:
    now = request.app.state.clock.now()
    overrides = service.list_overrides(session, now=now, limit=200)
    pending = [item for item in overrides if item["status"] == "pending"]
    decided = [item for item in overrides if item["status"] != "pending"]
    may_decide = {
        item["id"]: _may_decide(session, viewer, item["service"]) and item["requested_by"] != viewer.name
        for item in pending
    }
    return _render(
        request,
        "policy/overrides.html",
        viewer,
        status_code=status_code,
        pending=pending,
        decided=decided,
        may_decide=may_decide,
        services=_services(session, viewer),
        durations=DURATIONS,
        notice=notice,
        form_errors=form_errors or [],
        form_values=form_values or {},
        decide_error=decide_error,
        refusal=_why_not(viewer),
        now=now,
    )


def _may_decide(session: Session, viewer: Principal, slug: str) -> bool:
    team = session.scalar(select(Service.owner_team_id).where(Service.slug == slug))
    return viewer.can_change_team(team)


@router.get("/overrides", response_class=HTMLResponse)
@page
def overrides_page(
    request: Request, session: SessionDep, notice: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    viewer = _viewer(request, session)
    return _overrides_page(request, session, viewer, notice=NOTICES.get(notice or ""))


@router.post("/overrides", response_class=HTMLResponse)
@page
def request_override_form(
    request: Request,
    session: SessionDep,
    service_slug: Annotated[str, Form(alias="service", max_length=63)] = "",
    version: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    duration: Annotated[str, Form(max_length=8)] = "4h",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    values = {"service": service_slug, "version": version, "reason": reason, "duration": duration}
    try:
        data = OverrideCreate.model_validate(
            {"service": service_slug, "version": version.strip(), "reason": reason.strip(), "duration": duration}
        )
        service.request_override(session, actor=viewer, data=data, now=request.app.state.clock.now())
        session.commit()
    except ValidationError as exc:
        problems = [_validation_message(error) for error in exc.errors()]
        return _overrides_page(request, session, viewer, form_errors=problems, form_values=values, status_code=422)
    except ReliaError as exc:
        session.rollback()
        return _overrides_page(
            request,
            session,
            viewer,
            form_errors=[f"Nothing was changed: {exc.detail}"],
            form_values=values,
            status_code=exc.status,
        )
    return RedirectResponse("/overrides?notice=requested", status_code=303)


def _validation_message(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]).capitalize()
    message = str(error["msg"]).removeprefix("Value error, ")
    if error.get("type") == "string_pattern_mismatch" and field == "Duration":
        message = "choose one of the offered durations"
    return f"{field}: {message}"


def _decide(request: Request, session: Session, override_id: int, approve: bool, note: str, csrf: str) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf)
    try:
        service.decide_override(
            session,
            actor=viewer,
            override_id=override_id,
            approve=approve,
            note=note.strip(),
            now=request.app.state.clock.now(),
        )
        session.commit()
    except ReliaError as exc:
        session.rollback()
        message = f"Override #{override_id} was not changed: {exc.detail}"
        return _overrides_page(request, session, viewer, decide_error=message, status_code=exc.status)
    return RedirectResponse(f"/overrides?notice={'approved' if approve else 'rejected'}", status_code=303)


@router.post("/overrides/{override_id}/approve", response_class=HTMLResponse)
@page
def approve_override_form(
    request: Request,
    override_id: Id,
    session: SessionDep,
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    return _decide(request, session, override_id, True, note, csrf_token)


@router.post("/overrides/{override_id}/reject", response_class=HTMLResponse)
@page
def reject_override_form(
    request: Request,
    override_id: Id,
    session: SessionDep,
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    return _decide(request, session, override_id, False, note, csrf_token)


@router.post("/action-items/{item_id}/close", response_class=HTMLResponse)
@page
def close_action_item_form(
    request: Request,
    item_id: Id,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    _row, slug = service.close_action_item(session, actor=viewer, item_id=item_id, now=request.app.state.clock.now())
    session.commit()
    return RedirectResponse(f"/services/{quote(slug)}?notice=closed#policy-h", status_code=303)


# ----------------------------------------------------------------------------------------------- velocity


@router.get("/reports/velocity", response_class=HTMLResponse)
@page
def velocity_page(
    request: Request,
    session: SessionDep,
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
    period: Annotated[str, Query(max_length=8)] = "30d",
) -> Response:
    viewer = _viewer(request, session)
    services = session.execute(select(Service.slug, Service.name).order_by(Service.name)).all()
    report = None
    error = None
    status_code = 200
    if service_slug:
        try:
            report = velocity.velocity_report(
                session, service=service_slug, period=period, now=request.app.state.clock.now()
            )
        except ReliaError as exc:
            error, status_code = exc.detail, exc.status
    return _render(
        request,
        "policy/velocity.html",
        viewer,
        status_code=status_code,
        services=services,
        service_slug=service_slug or "",
        period=period,
        periods=PERIODS if period in PERIODS else (*PERIODS, period),
        report=report,
        charts={item["slo"] + "/" + item["objective"]: _sparkline(item["points"]) for item in report["budgets"]}
        if report
        else {},
        error=error,
    )


SPARK_WIDTH, SPARK_HEIGHT = 240, 40


def _sparkline(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The budget over the period as an SVG polyline (drawn without JavaScript), between 0 % and 100 % (more
    when the budget went below zero)."""
    values = [point["budgetRemaining"] for point in points]
    known = [value for value in values if value is not None]
    if len(known) < 2:
        return {"path": "", "zero": None}
    low, high = min(0.0, *known), max(1.0, *known)
    step = SPARK_WIDTH / max(1, len(values) - 1)
    parts: list[str] = []
    pen = False
    for index, value in enumerate(values):
        if value is None:
            pen = False
            continue
        y = (high - value) / (high - low) * SPARK_HEIGHT
        parts.append(f"{'L' if pen else 'M'}{index * step:.1f} {y:.1f}")
        pen = True
    zero = (high - 0.0) / (high - low) * SPARK_HEIGHT
    return {"path": " ".join(parts), "zero": round(zero, 1), "width": SPARK_WIDTH, "height": SPARK_HEIGHT}


# -------------------------------------------------------------------------------------------- service page


def service_panel(session: Session, viewer: Principal, service_slug: str, now: datetime) -> dict[str, Any]:
    """The policy section of a service page: what is in force, which policies apply, pending overrides, open
    action items, and recent policy events."""
    status = service.service_status(session, service=service_slug, now=now)
    svc_id = session.scalar(select(Service.id).where(Service.slug == service_slug))
    owner = session.scalar(select(Service.owner_team_id).where(Service.slug == service_slug))
    events = session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.service_id == svc_id, TimelineEvent.type.startswith("policy.", autoescape=True))
        .order_by(TimelineEvent.id.desc())
        .limit(10)
    ).all()
    return {**status, "events": list(events), "can_edit": viewer.can_change_team(owner)}


__all__ = ["router", "service_panel"]
