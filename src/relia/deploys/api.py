"""Blue-green routes: deploy targets, deployments, and a person's verbs (promote, abort, resume)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status
from sqlalchemy.orm import Session

from relia.api.deps import IfMatchDep, NowDep, PageDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.core.auth import Principal
from relia.core.errors import FieldError, InvalidInput
from relia.core.schemas import SLUG_PATTERN, Page
from relia.deploys import service
from relia.deploys.models import Deployment, DeployTarget
from relia.deploys.schemas import (
    AnalysisOut,
    CheckStatusOut,
    DeploymentAction,
    DeploymentCreate,
    DeploymentOut,
    DeployTargetOut,
    DeployTargetSpec,
    EnvironmentOut,
    MeasurementOut,
    StepOut,
)

router = APIRouter(tags=["deploys"])
Name = Annotated[str, Path(max_length=63)]
DeploymentId = Annotated[int, Path(ge=1, le=2**62)]


# ------------------------------------------------------------------------------------------------- targets


def target_out(target: DeployTarget, viewer: Principal) -> DeployTargetOut:
    spec = service.parsed_spec(target.spec)
    versions = service.environment_versions(target)
    return DeployTargetOut(
        name=target.name,
        service=target.service.slug,
        live=target.live_environment,
        environments=[
            EnvironmentOut(
                name=name,
                upstream=spec.environments.of(name).upstream,
                health_url=spec.environments.of(name).health_url,
                version=versions[name],
                live=name == target.live_environment,
            )
            for name in ("blue", "green")
        ],
        active_deployment=target.active_deployment_id,
        spec=service.redacted(service.target_spec(target), viewer),
        version=target.version,
        created_at=target.created_at,
        updated_at=target.updated_at,
    )


@router.get("/deploy-targets", summary="Blue-green targets, one per service")
def list_targets(session: SessionDep, actor: PrincipalDep) -> list[DeployTargetOut]:
    return [target_out(target, actor) for target in service.list_targets(session)]


@router.get("/deploy-targets/{name}", summary="A blue-green target: environments, what runs where", responses=NOT_FOUND)
def get_target(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> DeployTargetOut:
    target = service.get_target(session, name)
    response.headers["ETag"] = etag(target.version)
    return target_out(target, actor)


@router.put(
    "/deploy-targets/{name}",
    summary="Create or replace a blue-green target (the service's team; command and nginx adapters: administrators)",
    responses={**CONFLICT, 201: {"model": DeployTargetOut, "description": "Created"}},
)
def put_target(
    name: Name,
    body: DeployTargetSpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> DeployTargetOut:
    _check_slug(name)
    target, created = service.upsert_target(
        session, actor=actor, name=name, spec=body, now=now, expected_version=if_match
    )
    out = target_out(target, actor)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(target.version)
    return out


@router.delete(
    "/deploy-targets/{name}",
    summary="Delete a blue-green target and its deployments' history",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_target(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_target(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


# --------------------------------------------------------------------------------------------- deployments


def deployment_out(session: Session, deployment: Deployment, *, detail: bool = False) -> DeploymentOut:
    found = service.measurements(session, deployment.id) if detail else []
    status_now = service.analysis_status(deployment, found) if detail else None
    out = DeploymentOut(
        id=deployment.id,
        service=deployment.service.slug,
        target=deployment.target.name if deployment.target else None,
        version=deployment.version,
        previous_version=deployment.previous_version,
        change_type=deployment.change_type,
        state=deployment.state,
        outcome=deployment.outcome,
        from_environment=deployment.from_environment,
        to_environment=deployment.to_environment,
        switched=deployment.switched,
        paused_phase=deployment.paused_phase,
        pause_reason=deployment.pause_reason,
        pending_action=deployment.action,
        promotion_mode=service.parsed_spec(deployment.spec).promotion.mode,
        promotion_deadline=deployment.promotion_deadline,
        warm_until=deployment.warm_until,
        allowed_actions=service.allowed_verbs(deployment),
        variables=deployment.variables,
        message=deployment.message,
        created_by=deployment.created_by,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
        finished_at=deployment.finished_at,
        revision=deployment.revision,
    )
    if detail:
        out.steps = [
            StepOut(at=s.at, type=s.type, summary=s.summary, actor=s.actor, state=s.state, data=s.data)
            for s in service.steps(session, deployment.id)
        ]
        out.measurements = [
            MeasurementOut(
                at=m.at, phase=m.phase, run=m.run, check=m.check_name, verdict=m.verdict, value=m.value, detail=m.detail
            )
            for m in found
        ]
        if status_now is not None:
            out.analysis = AnalysisOut(
                phase=status_now.phase,
                run=status_now.run,
                status=status_now.status,
                started_at=status_now.started_at,
                checks=[
                    CheckStatusOut(
                        name=c.name, type=c.type, phase=c.phase, measurements=c.measurements, dry_run=c.dry_run
                    )
                    for c in status_now.checks
                ],
            )
    return out


@router.post(
    "/deployments",
    summary="Start a blue-green deployment of a version (the service's team); the release gate is asked first",
    status_code=status.HTTP_201_CREATED,
    responses={**CONFLICT, 409: {"description": "Another deployment is under way, or the release gate blocks"}},
)
def start_deployment(
    body: DeploymentCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response
) -> DeploymentOut:
    try:
        deployment = service.start_deployment(session, actor=actor, data=body, now=now)
    except service.GateBlocked:
        session.commit()  # the gate's record of this check, and the refusal on the timeline, stay
        raise
    session.commit()
    response.headers["Location"] = f"/api/v1/deployments/{deployment.id}"
    response.headers["ETag"] = etag(deployment.revision)
    return deployment_out(session, deployment, detail=True)


@router.get("/deployments", summary="Deployments, newest first")
def list_deployments(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
    active: Annotated[bool | None, Query(description="true: under way; false: finished")] = None,
) -> Page[DeploymentOut]:
    items, next_cursor = service.list_deployments(
        session, service=service_slug, active=active, cursor=page.cursor, limit=page.limit
    )
    return Page[DeploymentOut](items=[deployment_out(session, item) for item in items], next_cursor=next_cursor)


@router.get(
    "/deployments/{deployment_id}",
    summary="A deployment with its steps, analysis and measurements",
    responses=NOT_FOUND,
)
def get_deployment(
    deployment_id: DeploymentId, session: SessionDep, actor: PrincipalDep, response: Response
) -> DeploymentOut:
    deployment = service.get_deployment(session, deployment_id)
    response.headers["ETag"] = etag(deployment.revision)
    return deployment_out(session, deployment, detail=True)


def _act(
    verb: str,
    deployment_id: int,
    body: DeploymentAction | None,
    session: Session,
    actor: Principal,
    now: datetime,
    if_match: int | None,
    response: Response,
) -> DeploymentOut:
    body = body or DeploymentAction()
    deployment = service.act(
        session,
        actor=actor,
        deployment_id=deployment_id,
        verb=verb,
        now=now,
        reason=body.reason,
        revision=body.revision,
        if_match=if_match,
    )
    session.commit()
    response.headers["ETag"] = etag(deployment.revision)
    return deployment_out(session, deployment, detail=True)


ActionBody = Annotated[DeploymentAction | None, Body()]


@router.post(
    "/deployments/{deployment_id}/promote",
    summary="Promote: switch now (awaiting promotion), or after a paused analysis",
    responses={**NOT_FOUND, **CONFLICT},
)
def promote(
    deployment_id: DeploymentId,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
    body: ActionBody = None,
) -> DeploymentOut:
    return _act("promote", deployment_id, body, session, actor, now, if_match, response)


@router.post(
    "/deployments/{deployment_id}/abort",
    summary="Abort: before the switch nothing moves; after it, traffic goes back to the old environment",
    responses={**NOT_FOUND, **CONFLICT},
)
def abort(
    deployment_id: DeploymentId,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
    body: ActionBody = None,
) -> DeploymentOut:
    return _act("abort", deployment_id, body, session, actor, now, if_match, response)


@router.post(
    "/deployments/{deployment_id}/resume",
    summary="Resume a paused deployment: its analysis starts again",
    responses={**NOT_FOUND, **CONFLICT},
)
def resume(
    deployment_id: DeploymentId,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
    body: ActionBody = None,
) -> DeploymentOut:
    return _act("resume", deployment_id, body, session, actor, now, if_match, response)


def _check_slug(name: str) -> None:
    if not re.fullmatch(SLUG_PATTERN, name):
        raise InvalidInput(
            "Names are lower-case letters, digits and dashes.", errors=[FieldError("path.name", "not a valid name")]
        )
