"""Escalation pages: the list of escalation policies by team, one policy (its steps as a timeline, the services
it pages for, live groups, its history, and an editor for the team's managers), and one alert group's escalation
with its delivery log (the link every page message carries).

Thin routes as elsewhere: read through ``relia.escalation.service``, write only through it with the signed-in
user's rights. The editor takes the policy's spec as YAML (the same document ``relia apply`` reads), so the page
and config as code never disagree about what a policy can say; every page works without JavaScript.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from relia.api.deps import SessionDep
from relia.catalog.models import Service, Team
from relia.core.auth import Principal, Scope
from relia.core.errors import ReliaError
from relia.core.models import AuditEntry
from relia.core.schemas import SLUG_PATTERN
from relia.escalation import rules, service
from relia.escalation.models import EscalationPolicy, EscalationPolicyService
from relia.escalation.schemas import EscalationPolicySpec, spec_json
from relia.notify import pages as notify_pages  # noqa: F401  (registers the delivery log's template helpers)
from relia.notify import service as notify
from relia.notify.rules import format_seconds
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
Name = Annotated[str, Path(max_length=63)]

# Each status in words, a shape and a colour (never colour alone), as on the other pages.
ESCALATION_STATES: dict[str, dict[str, str]] = {
    "active": {"label": "escalating", "shape": "▲", "css": "status-bad"},
    "acknowledged": {"label": "acknowledged", "shape": "●", "css": "status-warn"},
    "snoozed": {"label": "snoozed", "shape": "◐", "css": "status-muted"},
    "exhausted": {"label": "every step ran, nobody acknowledged", "shape": "✖", "css": "status-bad"},
    "resolved": {"label": "resolved", "shape": "✔", "css": "status-good"},
    "none": {"label": "pages nobody", "shape": "✖", "css": "status-bad"},
}
SOURCES = {
    "service": "this policy names the service",
    "team-default": "the team's default policy",
    "handoff": "the pager was handed to another team",
    "fallback": "no policy: every member of the team is paged",
    "none": "nobody to page",
}
templates.env.globals["escalation_states"] = ESCALATION_STATES
templates.env.globals["escalation_sources"] = SOURCES


STARTER_SPEC = """steps:
  - notify: {users: []}
  - wait: 5m
  - notify: {teams: [TEAM]}
  - wait: 15m
repeat: 1
ackTimeout: 30m
"""


def _may_manage(viewer: Principal, team_id: int) -> bool:
    return viewer.scope >= Scope.write and (viewer.acts_as_admin or team_id in viewer.managed_team_ids)


def _managed_teams(session: Session, viewer: Principal) -> list[Team]:
    teams = session.scalars(select(Team).order_by(Team.slug)).all()
    return [team for team in teams if _may_manage(viewer, team.id)]


def _spec_yaml(spec: dict[str, Any]) -> str:
    """The spec as a person edits it: the team and the default flag are separate fields of the form."""
    body = {key: value for key, value in spec.items() if key not in ("team", "default")}
    return yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [
            f"{'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        ]
    if isinstance(exc, ReliaError):
        if exc.errors:
            return [f"{error.path}: {error.message}" for error in exc.errors]
        return [exc.detail]
    return [str(exc)]


def _parse_form(team: str, default: bool, spec_text: str) -> EscalationPolicySpec:
    try:
        body = yaml.safe_load(spec_text) if spec_text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ReliaError(f"The spec is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(body, dict):
        raise ReliaError("The spec must be a mapping with steps: (and optionally repeat:, ackTimeout:, services:).")
    return EscalationPolicySpec.model_validate({**body, "team": team, "default": default})


# ------------------------------------------------------------------------------------------------- list


@router.get("/escalation-policies", response_class=HTMLResponse)
@page
def policies_page(request: Request, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    live = service.live_group_counts(session)
    rows = service.list_policies(session)
    teams = session.scalars(select(Team).order_by(Team.slug)).all()
    by_team: dict[str, list[dict[str, Any]]] = {team.slug: [] for team in teams}
    for policy, slug in rows:
        by_team[slug].append(
            {
                "policy": policy,
                "preview": service.preview_out(policy.spec),
                "live": live.get(policy.id, 0),
            }
        )
    now = request.app.state.clock.now()
    return _render(
        request,
        "escalation/list.html",
        viewer,
        teams=teams,
        by_team=by_team,
        health=notify.pipeline_health(session, now=now),
        escalations=service.list_escalations(session, limit=20),
        managed=_managed_teams(session, viewer),
    )


# ------------------------------------------------------------------------------------------------ detail


def _policy_context(session: Session, policy: EscalationPolicy) -> dict[str, Any]:
    team = session.get(Team, policy.team_id)
    assert team is not None
    # The team's own services and those it holds the pager of (listed by the policy).
    listed = select(EscalationPolicyService.service_id).where(EscalationPolicyService.policy_id == policy.id)
    services = session.scalars(
        select(Service).where(or_(Service.owner_team_id == team.id, Service.id.in_(listed))).order_by(Service.slug)
    ).all()
    paging = []
    for svc in services:
        found = service.resolve_policy(session, svc.id)
        if found.policy is not None and found.policy.id == policy.id:
            paging.append({"service": svc.slug, "source": found.source, "detail": found.detail})
    history = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_kind == "EscalationPolicy", AuditEntry.object_key == policy.name)
        .order_by(AuditEntry.id.desc())
        .limit(10)
    ).all()
    plan = rules.compile_plan(policy.spec)
    return {
        "policy": policy,
        "team": team,
        "preview": service.preview_out(policy.spec),
        "plan": plan,
        "steps": policy.spec.get("steps", []),
        "paging": paging,
        "live": [
            esc
            for esc in service.list_escalations(session, policy=policy.name, limit=50)
            if esc.status in ("active", "acknowledged", "snoozed")
        ],
        "history": history,
        "format_seconds": format_seconds,
    }


def _detail(
    request: Request,
    session: Session,
    viewer: Principal,
    policy: EscalationPolicy,
    *,
    errors: list[str] | None = None,
    spec_text: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    context = _policy_context(session, policy)
    return _render(
        request,
        "escalation/detail.html",
        viewer,
        status_code=status_code,
        may_manage=_may_manage(viewer, policy.team_id),
        spec_text=spec_text if spec_text is not None else _spec_yaml(policy.spec),
        errors=errors or [],
        notice=notice,
        **context,
    )


@router.get("/escalation-policies/-/new", response_class=HTMLResponse)
@page
def new_policy_page(
    request: Request, session: SessionDep, team: Annotated[str | None, Query(max_length=63)] = None
) -> Response:
    viewer = _viewer(request, session)
    managed = _managed_teams(session, viewer)
    chosen = team or (managed[0].slug if managed else "")
    return _render(
        request,
        "escalation/new.html",
        viewer,
        managed=managed,
        team=chosen,
        name="",
        default=False,
        spec_text=STARTER_SPEC.replace("TEAM", chosen or "your-team"),
        errors=[],
    )


@router.post("/escalation-policies/-/new", response_class=HTMLResponse)
@page
def create_policy_form(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=63)] = "",
    team: Annotated[str, Form(max_length=63)] = "",
    default: Annotated[str, Form(max_length=10)] = "",
    spec: Annotated[str, Form(max_length=100_000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    now = request.app.state.clock.now()
    name = name.strip()
    try:
        if session.scalar(select(EscalationPolicy.id).where(EscalationPolicy.name == name)) is not None:
            raise ReliaError(f"name: a policy {name!r} exists already")
        if not re.fullmatch(SLUG_PATTERN, name):
            raise ReliaError("name: lower-case letters, digits and dashes, starting and ending with a letter or digit")
        parsed = _parse_form(team, bool(default), spec)
        service.upsert_policy(session, actor=viewer, name=name, spec=parsed, now=now)
        session.commit()
    except (ValidationError, ReliaError) as exc:
        session.rollback()
        return _render(
            request,
            "escalation/new.html",
            viewer,
            status_code=422,
            managed=_managed_teams(session, viewer),
            team=team,
            name=name,
            default=bool(default),
            spec_text=spec,
            errors=_problems(exc),
        )
    return RedirectResponse(f"/escalation-policies/{name}?saved=created", status_code=303)


@router.get("/escalation-policies/{name}", response_class=HTMLResponse)
@page
def policy_page(
    request: Request, name: Name, session: SessionDep, saved: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    viewer = _viewer(request, session)
    policy = service.get_policy(session, name)
    notice = {"created": "Policy created.", "updated": "Policy saved."}.get(saved or "")
    return _detail(request, session, viewer, policy, notice=notice)


@router.post("/escalation-policies/{name}", response_class=HTMLResponse)
@page
def update_policy_form(
    request: Request,
    name: Name,
    session: SessionDep,
    spec: Annotated[str, Form(max_length=100_000)] = "",
    default: Annotated[str, Form(max_length=10)] = "",
    version: Annotated[int, Form(ge=0)] = 0,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    policy = service.get_policy(session, name)
    team = session.get(Team, policy.team_id)
    assert team is not None
    try:
        parsed = _parse_form(team.slug, bool(default), spec)
        if spec_json(parsed) != policy.spec or version != policy.version:
            service.upsert_policy(
                session,
                actor=viewer,
                name=name,
                spec=parsed,
                now=request.app.state.clock.now(),
                expected_version=version or None,
            )
            session.commit()
    except (ValidationError, ReliaError) as exc:
        session.rollback()
        policy = service.get_policy(session, name)
        status_code = exc.status if isinstance(exc, ReliaError) and exc.status in (403, 409) else 422
        return _detail(request, session, viewer, policy, errors=_problems(exc), spec_text=spec, status_code=status_code)
    return RedirectResponse(f"/escalation-policies/{name}?saved=updated", status_code=303)


@router.post("/escalation-policies/{name}/delete", response_class=HTMLResponse)
@page
def delete_policy_form(
    request: Request, name: Name, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    service.delete_policy(session, actor=viewer, name=name, now=request.app.state.clock.now())
    session.commit()
    return RedirectResponse("/escalation-policies", status_code=303)


# ----------------------------------------------------------------------------------------- escalations


@router.get("/escalations/{group_id}", response_class=HTMLResponse)
@page
def escalation_page(request: Request, group_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    esc = service.get_escalation(session, group_id)
    out = service.escalation_out(session, esc)
    preview = service.preview_out(esc.snapshot) if esc.snapshot else []
    return _render(request, "escalation/group.html", viewer, esc=out, preview=preview)
