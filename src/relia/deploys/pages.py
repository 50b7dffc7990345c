"""Blue-green pages: the targets with what runs where and the recent deployments, and one deployment with its
state, environments, analysis and steps on a timeline, with promote, resume and abort buttons.

Thin routes as elsewhere: read through ``relia.deploys.service``, write only through ``service.act`` with the
signed-in user's rights, answer a form with a redirect (or the same page with the refusal next to the buttons).
Every page works without JavaScript; with htmx, a deployment under way refreshes its live part every few
seconds, except while focus is inside its action form (so typing a reason is never interrupted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from relia.api.deps import SessionDep
from relia.core.auth import Principal, Scope
from relia.core.errors import ReliaError
from relia.deploys import service
from relia.deploys.models import Deployment
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
Id = Annotated[int, Path(ge=1, le=2**62)]
RECENT = 50
REFRESH_SECONDS = 3

# Every state is words and a shape (hidden from screen readers), then colour.
STATES: dict[str, dict[str, str]] = {
    "deploying": {"label": "deploying to the idle environment", "shape": "◔", "css": "status-muted"},
    "pre_analysis": {"label": "analysing before the switch", "shape": "◑", "css": "status-muted"},
    "awaiting_promotion": {"label": "awaiting promotion", "shape": "‖", "css": "status-warn"},
    "paused": {"label": "paused for a person", "shape": "‖", "css": "status-warn"},
    "switching": {"label": "switching traffic", "shape": "⇄", "css": "status-muted"},
    "post_analysis": {"label": "analysing after the switch", "shape": "◕", "css": "status-muted"},
    "keeping_warm": {"label": "keeping the old environment warm", "shape": "◒", "css": "status-muted"},
    "aborting": {"label": "aborting", "shape": "▼", "css": "status-warn"},
    "rolling_back": {"label": "rolling back", "shape": "↩", "css": "status-warn"},
    "succeeded": {"label": "succeeded", "shape": "✔", "css": "status-good"},
    "aborted": {"label": "aborted before the switch", "shape": "■", "css": "status-muted"},
    "rolled_back": {"label": "rolled back", "shape": "↩", "css": "status-warn"},
    "failed": {"label": "failed: switch by hand", "shape": "✖", "css": "status-bad"},
}
VERDICTS: dict[str, dict[str, str]] = {
    "successful": {"label": "successful", "shape": "●", "css": "status-good"},
    "failed": {"label": "failed", "shape": "✖", "css": "status-bad"},
    "error": {"label": "error", "shape": "!", "css": "status-bad"},
    "inconclusive": {"label": "inconclusive", "shape": "?", "css": "status-warn"},
    "running": {"label": "running", "shape": "○", "css": "status-muted"},
}
VERBS = {
    "promote": "Promote",
    "resume": "Resume analysis",
    "abort": "Abort",
}
NOTICES = {
    "promote": "Promoted. The release gate is checked again, then traffic switches.",
    "resume": "Resumed: the analysis starts again.",
    "abort": "Abort requested. Traffic stays on, or goes back to, the old environment.",
}
templates.env.globals["deploy_states"] = STATES
templates.env.globals["deploy_verdicts"] = VERDICTS


def utc_seconds(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


templates.env.filters["utc_seconds"] = utc_seconds


def _may_act(viewer: Principal, deployment: Deployment) -> bool:
    return viewer.can_change_team(deployment.service.owner_team_id)


def _why_not(viewer: Principal, deployment: Deployment) -> str:
    if viewer.scope < Scope.write:
        return "You are signed in with a read-only credential, so you can follow this deployment but not change it."
    team = deployment.service.owner_team.name
    return f"Only members of {team} (or an administrator) may promote, resume or abort this deployment."


# ------------------------------------------------------------------------------------------------- the list


@router.get("/deploys", response_class=HTMLResponse)
@page
def deploys_page(
    request: Request,
    session: SessionDep,
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
) -> Response:
    viewer = _viewer(request, session)
    targets = service.list_targets(session)
    deployments, more = service.list_deployments(session, service=service_slug or None, limit=RECENT)
    return _render(
        request,
        "deploys/list.html",
        viewer,
        targets=[
            {
                "target": target,
                "versions": service.environment_versions(target),
                "spec": service.parsed_spec(target.spec),
            }
            for target in targets
        ],
        deployments=deployments,
        more=more is not None,
        service_slug=service_slug or "",
    )


# ------------------------------------------------------------------------------------------- one deployment


@router.get("/deploys/{deployment_id}", response_class=HTMLResponse)
@page
def deployment_page(
    request: Request,
    deployment_id: Id,
    session: SessionDep,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    viewer = _viewer(request, session)
    headers = request.headers
    partial = bool(headers.get("hx-request")) and not headers.get("hx-history-restore-request")
    response = _deployment_page(
        request, session, viewer, deployment_id, notice=NOTICES.get(notice or ""), partial=partial
    )
    response.headers["Vary"] = "HX-Request, HX-History-Restore-Request"
    return response


def _deployment_page(
    request: Request,
    session: Session,
    viewer: Principal,
    deployment_id: int,
    *,
    notice: str | None = None,
    refusal: str | None = None,
    partial: bool = False,
    status_code: int = 200,
) -> Response:
    deployment = service.get_deployment(session, deployment_id)
    spec = service.parsed_spec(deployment.spec)
    found = service.measurements(session, deployment.id)
    may_act = _may_act(viewer, deployment)
    target = deployment.target
    versions = service.environment_versions(target)
    return _render(
        request,
        "deploys/_live.html" if partial else "deploys/detail.html",
        viewer,
        status_code=status_code,
        deployment=deployment,
        spec=spec,
        target=target,
        environments=[
            {
                "name": name,
                "upstream": spec.environments.of(name).upstream,
                "health_url": spec.environments.of(name).health_url,
                "version": versions[name],
                "live": target.live_environment == name,
                "role": "new" if name == deployment.to_environment else "old",
            }
            for name in ("blue", "green")
        ],
        analysis=service.analysis_status(deployment, found),
        measurements=list(reversed(found))[:100],
        measurement_count=len(found),
        steps=service.steps(session, deployment.id),
        verbs=[(verb, VERBS[verb]) for verb in service.allowed_verbs(deployment)],
        may_act=may_act,
        why_not=None if may_act else _why_not(viewer, deployment),
        active=deployment.finished_at is None,
        refresh_seconds=REFRESH_SECONDS,
        notice=notice,
        refusal=refusal,
        facts=_facts(deployment, spec),
    )


def _facts(deployment: Deployment, spec: Any) -> list[tuple[str, str]]:
    """The deployment in a few sentences for a description list."""
    facts = [
        ("Version", f"{deployment.version} to {deployment.to_environment}"
         + (f", replacing {deployment.previous_version} on {deployment.from_environment}"
            if deployment.previous_version else f"; {deployment.from_environment} was live")),
        ("Change type", deployment.change_type),
        ("Promotion", "automatic once the analysis passes" if spec.promotion.mode == "automatic"
         else f"by a person within {spec.promotion.timeout}, else {spec.promotion.on_timeout} (the stated default)"),
        ("Keep warm", f"{deployment.from_environment} stays ready for {spec.keep_warm} after the switch"),
        ("Started", f"{utc_seconds(deployment.created_at)} UTC by {deployment.created_by}"),
    ]  # fmt: skip
    if deployment.promotion_deadline:
        facts.append(("Decide by", f"{utc_seconds(deployment.promotion_deadline)} UTC"))
    if deployment.warm_until:
        facts.append(("Warm until", f"{utc_seconds(deployment.warm_until)} UTC"))
    if deployment.finished_at:
        facts.append(("Finished", f"{utc_seconds(deployment.finished_at)} UTC"))
    if deployment.variables:
        facts.append(("Variables", ", ".join(f"{key}={value}" for key, value in sorted(deployment.variables.items()))))
    return facts


def _verb_form(verb: str) -> Any:
    def submit(
        request: Request,
        deployment_id: Id,
        session: SessionDep,
        reason: Annotated[str, Form(max_length=2000)] = "",
        revision: Annotated[int | None, Form(ge=1)] = None,
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        viewer = _viewer(request, session)
        _check_csrf(request, csrf_token)
        try:
            service.act(
                session,
                actor=viewer,
                deployment_id=deployment_id,
                verb=verb,
                now=request.app.state.clock.now(),
                reason=reason.strip(),
                # Promote and resume are decisions about what the page showed; abort is never refused as stale.
                revision=revision if verb != "abort" else None,
            )
            session.commit()
        except ReliaError as exc:
            session.rollback()
            message = f"Nothing was changed: {exc.detail}"
            return _deployment_page(request, session, viewer, deployment_id, refusal=message, status_code=exc.status)
        return RedirectResponse(f"/deploys/{deployment_id}?notice={verb}#state-h", status_code=303)

    submit.__name__ = f"{verb}_form"
    return submit


for _verb in VERBS:
    router.post(f"/deploys/{{deployment_id}}/{_verb}", response_class=HTMLResponse)(page(_verb_form(_verb)))
