"""Escalation routes: escalation policies, which policy pages for a service, and each alert group's escalation.
Thin: parse, call the service, commit, shape."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select

from relia.api.deps import IfMatchDep, NowDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.catalog.models import Service
from relia.core.errors import FieldError, InvalidInput
from relia.core.schemas import SLUG_PATTERN
from relia.escalation import service
from relia.escalation.schemas import (
    EscalationOut,
    EscalationPolicyIn,
    EscalationPolicyOut,
    EscalationPolicySpec,
    EscalationSummaryOut,
    ServiceEscalationOut,
)

router = APIRouter(tags=["escalation"])
Name = Annotated[str, Path(max_length=63, description="The policy's name")]
GroupId = Annotated[int, Path(ge=1, le=2**62, description="The alert group's id")]
Status = Literal["active", "acknowledged", "snoozed", "resolved", "exhausted", "none"]


def _check_name(name: str) -> None:
    if not re.fullmatch(SLUG_PATTERN, name):
        raise InvalidInput(
            "Names are lower-case letters, digits and dashes.", errors=[FieldError("path.name", "not a valid name")]
        )


@router.get("/escalation-policies", summary="List escalation policies")
def list_policies(
    session: SessionDep,
    actor: PrincipalDep,
    team: Annotated[str | None, Query(max_length=63, description="Only this team's policies")] = None,
) -> list[EscalationPolicyOut]:
    live = service.live_group_counts(session)
    return [service.policy_out(session, policy, live) for policy, _ in service.list_policies(session, team=team)]


@router.get("/escalation-policies/{name}", summary="Get an escalation policy", responses=NOT_FOUND)
def get_policy(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> EscalationPolicyOut:
    policy = service.get_policy(session, name)
    response.headers["ETag"] = etag(policy.version)
    return service.policy_out(session, policy)


@router.put(
    "/escalation-policies/{name}",
    summary="Create or replace an escalation policy (the team's managers, administrators)",
    responses={**CONFLICT, 201: {"model": EscalationPolicyOut, "description": "Created"}},
)
def put_policy(
    name: Name,
    body: EscalationPolicyIn,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> EscalationPolicyOut:
    _check_name(name)
    spec = EscalationPolicySpec.model_validate(body.model_dump(mode="json", exclude={"version"}))
    policy, created = service.upsert_policy(
        session, actor=actor, name=name, spec=spec, now=now, if_match=if_match, expected_version=body.version
    )
    out = service.policy_out(session, policy)  # as written by this request, before anyone else's change
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/escalation-policies/{name}",
    summary="Delete an escalation policy (live alert groups keep their snapshot of it)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_policy(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_policy(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


@router.get(
    "/services/{slug}/escalation-policy",
    summary="Which escalation policy pages for a service now, and why",
    responses=NOT_FOUND,
)
def service_policy(
    slug: Annotated[str, Path(max_length=63)], session: SessionDep, actor: PrincipalDep
) -> ServiceEscalationOut:
    return service.service_escalation(session, slug)


@router.get("/escalations", summary="Alert groups' escalations, newest first")
def list_escalations(
    session: SessionDep,
    actor: PrincipalDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    policy: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EscalationSummaryOut]:
    rows = service.list_escalations(session, status=status_, policy=policy, limit=limit)
    slugs = dict(
        session.execute(
            select(Service.id, Service.slug).where(Service.id.in_({row.service_id for row in rows if row.service_id}))
        ).all()
    )
    return [
        EscalationSummaryOut(
            group_id=row.group_id,
            title=row.title,
            service=slugs.get(row.service_id) if row.service_id else None,
            policy=row.policy_name,
            status=row.status,
            round=row.round,
            next_step_at=row.next_step_at,
            opened_at=row.opened_at,
        )
        for row in rows
    ]


@router.get(
    "/escalations/{group_id}",
    summary="One alert group's escalation: its policy snapshot, the steps that ran, every notification",
    responses=NOT_FOUND,
)
def get_escalation(group_id: GroupId, session: SessionDep, actor: PrincipalDep) -> EscalationOut:
    return service.escalation_out(session, service.get_escalation(session, group_id))
