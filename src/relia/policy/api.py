"""Policy routes: budget policies, what is in force per service, the release gate and its record, overrides,
action items, and the velocity report. Thin: parse, call the service, commit, shape."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from relia.api.deps import AskingPrincipalDep, IfMatchDep, NowDep, PageDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.core.batching import RowInserter
from relia.core.errors import FieldError, InvalidInput, NotFound
from relia.core.schemas import SLUG_PATTERN, Page
from relia.policy import service, velocity
from relia.policy.gate import GateInputCache
from relia.policy.models import BudgetPolicy, GateCheck
from relia.policy.schemas import (
    ActionItemOut,
    BudgetPolicyOut,
    BudgetPolicySpec,
    GateCheckIn,
    GateCheckOut,
    GateDecisionOut,
    OverrideCreate,
    OverrideDecision,
    OverrideOut,
    PagerHandoffOut,
    PolicyStateOut,
    RestrictionOut,
    ServicePolicyStatusOut,
    VelocityReportOut,
)

router = APIRouter()
Name = Annotated[str, Path(max_length=63, description="The policy's name")]
ServiceQuery = Annotated[str | None, Query(alias="service", max_length=63, description="Only this service")]
Id = Annotated[int, Path(ge=1, le=2**62)]


def _check_name(name: str) -> None:
    if not re.fullmatch(SLUG_PATTERN, name):
        raise InvalidInput(
            "Names are lower-case letters, digits and dashes.", errors=[FieldError("path.name", "not a valid name")]
        )


# ------------------------------------------------------------------------------------------- policies


def _policy_out(session: Session, name: str, spec: BudgetPolicySpec, row: BudgetPolicy | None) -> BudgetPolicyOut:
    return BudgetPolicyOut(
        name=name,
        built_in=row is None,
        enabled=spec.enabled,
        spec=spec.model_dump(mode="json"),
        summary=service.policy_summary(spec),
        states=[
            PolicyStateOut(**service.state_out(state, slug))
            for state, slug in service.policy_states(session, policy=name)
        ],
        version=row.version if row else None,
        created_at=row.created_at if row else None,
        updated_at=row.updated_at if row else None,
    )


@router.get("/budget-policies", tags=["policies"], summary="Budget policies, with the built-in default")
def list_policies(session: SessionDep, actor: PrincipalDep) -> list[BudgetPolicyOut]:
    return [_policy_out(session, name, spec, row) for name, spec, row in service.effective_policies(session)]


@router.get("/budget-policies/{name}", tags=["policies"], summary="A budget policy and its states", responses=NOT_FOUND)
def get_policy(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> BudgetPolicyOut:
    for found, spec, row in service.effective_policies(session):
        if found == name:
            if row is not None:
                response.headers["ETag"] = etag(row.version)
            return _policy_out(session, found, spec, row)
    raise NotFound(f"There is no budget policy {name!r}.")


@router.put(
    "/budget-policies/{name}",
    tags=["policies"],
    summary="Create or replace a budget policy (its scope's team, or administrators for the organisation)",
    responses={**CONFLICT, 201: {"model": BudgetPolicyOut, "description": "Created"}},
)
def put_policy(
    name: Name,
    body: BudgetPolicySpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> BudgetPolicyOut:
    _check_name(name)
    row, created = service.upsert_policy(session, actor=actor, name=name, spec=body, now=now, if_match=if_match)
    out = _policy_out(session, name, body, row)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(row.version)
    return out


@router.delete(
    "/budget-policies/{name}",
    tags=["policies"],
    summary="Delete a budget policy (deleting the one named default brings back the built-in default)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_policy(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_policy(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


# ------------------------------------------------------------------------------------ what is in force


@router.get(
    "/policy-status",
    tags=["policies"],
    summary="What the policies have in force per service (every service with something in force, or the one asked)",
    responses=NOT_FOUND,
)
def policy_status(
    session: SessionDep, actor: PrincipalDep, now: NowDep, service_slug: ServiceQuery = None
) -> list[ServicePolicyStatusOut]:
    slugs = [service_slug] if service_slug else service.services_with_anything_in_force(session)
    return [ServicePolicyStatusOut(**service.service_status(session, service=slug, now=now)) for slug in slugs]


@router.get("/release-restrictions", tags=["policies"], summary="Freezes, required approvals and warnings")
def list_restrictions(
    session: SessionDep,
    actor: PrincipalDep,
    service_slug: ServiceQuery = None,
    active: Annotated[bool | None, Query(description="true: in force; false: ended; absent: both")] = True,
    kind: Annotated[Literal["freeze", "approval", "warn"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> list[RestrictionOut]:
    rows = service.list_restrictions(session, service=service_slug, active=active, kind=kind, limit=limit)
    return [RestrictionOut(**row) for row in rows]


@router.get(
    "/pager-handoffs",
    tags=["policies"],
    summary="Pagers handed from one team's escalation to another's by a policy",
)
def list_handoffs(
    session: SessionDep,
    actor: PrincipalDep,
    service_slug: ServiceQuery = None,
    active: Annotated[bool | None, Query(description="true: in force; false: ended; absent: both")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> list[PagerHandoffOut]:
    return [
        PagerHandoffOut(**row)
        for row in service.list_handoffs(session, service=service_slug, active=active, limit=limit)
    ]


# ------------------------------------------------------------------------------------------------- gate


@router.post(
    "/gates/check",
    tags=["gates"],
    summary="May this version ship? allow, warn or block, with the reasons; every check is recorded",
    response_model=GateDecisionOut,
    responses=NOT_FOUND,
)
async def check_gate(body: GateCheckIn, request: Request, actor: AskingPrincipalDep, now: NowDep) -> Response:
    # CI pipelines ask in bursts: the answer comes from this process's gate cache when it is fresh
    # (relia.policy.gate), and the record of the check is written with the other checks arriving then in one
    # transaction (core.batching); the answer, with the record's id, is given after that commit.
    state = request.app.state
    inputs = _gate_cache(state).peek(body.service, now)
    if inputs is None:
        inputs = await run_in_threadpool(_gate_cache(state).load, body.service, now)
    decision = service.decide_from(inputs, body, now)
    row = service.gate_check_row(actor=actor, decision=decision, service_id=inputs.service_id, now=now)
    check_id = await asyncio.wrap_future(_gate_writer(state).insert(row, now))
    recorded = replace(decision, check_id=check_id, checked_at=now)
    return Response(json.dumps(service.decision_json(recorded)), media_type="application/json")


def _gate_cache(state: Any) -> GateInputCache:
    cache = getattr(state, "gate_input_cache", None)
    if cache is None:
        cache = state.gate_input_cache = GateInputCache(state.db, state.generation_cache)
    return cache


def _gate_writer(state: Any) -> RowInserter:
    writer = getattr(state, "gate_check_writer", None)
    if writer is None:
        writer = state.gate_check_writer = RowInserter(state.db, GateCheck.__table__, name="gate-check-writer")
    return writer


@router.get("/gates/checks", tags=["gates"], summary="Recorded gate checks, newest first")
def list_checks(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    service_slug: ServiceQuery = None,
    decision: Annotated[Literal["allow", "warn", "block"] | None, Query()] = None,
) -> Page[GateCheckOut]:
    items, next_cursor = service.list_checks(
        session, service=service_slug, decision=decision, cursor=page.cursor, limit=page.limit
    )
    return Page[GateCheckOut](items=[GateCheckOut(**item) for item in items], next_cursor=next_cursor)


# --------------------------------------------------------------------------------------------- overrides


@router.get("/overrides", tags=["overrides"], summary="Release overrides, newest first")
def list_overrides(
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    service_slug: ServiceQuery = None,
    override_status: Annotated[
        Literal["pending", "approved", "rejected", "expired"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> list[OverrideOut]:
    rows = service.list_overrides(session, now=now, service=service_slug, status=override_status, limit=limit)
    return [OverrideOut(**row) for row in rows]


@router.post(
    "/overrides",
    tags=["overrides"],
    summary="Ask to let one version through its service's freezes (someone else approves it)",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
def request_override(body: OverrideCreate, session: SessionDep, actor: PrincipalDep, now: NowDep) -> OverrideOut:
    row, slug = service.request_override(session, actor=actor, data=body, now=now)
    out = OverrideOut(**service.override_out(row, slug, now))
    session.commit()
    return out


@router.get("/overrides/{override_id}", tags=["overrides"], summary="One override", responses=NOT_FOUND)
def get_override(override_id: Id, session: SessionDep, actor: PrincipalDep, now: NowDep) -> OverrideOut:
    row, svc = service.get_override(session, override_id)
    return OverrideOut(**service.override_out(row, svc.slug, now))


@router.post(
    "/overrides/{override_id}/approve",
    tags=["overrides"],
    summary="Approve a pending override (someone with rights on the service other than the requester)",
    responses={**NOT_FOUND, **CONFLICT},
)
def approve_override(
    override_id: Id, session: SessionDep, actor: PrincipalDep, now: NowDep, body: OverrideDecision | None = None
) -> OverrideOut:
    note = body.note if body else ""
    row, slug = service.decide_override(session, actor=actor, override_id=override_id, approve=True, note=note, now=now)
    out = OverrideOut(**service.override_out(row, slug, now))
    session.commit()
    return out


@router.post(
    "/overrides/{override_id}/reject",
    tags=["overrides"],
    summary="Reject a pending override (someone with rights on the service other than the requester)",
    responses={**NOT_FOUND, **CONFLICT},
)
def reject_override(
    override_id: Id, session: SessionDep, actor: PrincipalDep, now: NowDep, body: OverrideDecision | None = None
) -> OverrideOut:
    note = body.note if body else ""
    row, slug = service.decide_override(
        session, actor=actor, override_id=override_id, approve=False, note=note, now=now
    )
    out = OverrideOut(**service.override_out(row, slug, now))
    session.commit()
    return out


# ------------------------------------------------------------------------------------------ action items


@router.get("/action-items", tags=["policies"], summary="Action items opened by budget policies")
def list_action_items(
    session: SessionDep,
    actor: PrincipalDep,
    service_slug: ServiceQuery = None,
    item_status: Annotated[Literal["open", "done"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> list[ActionItemOut]:
    rows = service.list_action_items(session, service=service_slug, status=item_status, limit=limit)
    return [ActionItemOut(**row) for row in rows]


@router.post(
    "/action-items/{item_id}/close",
    tags=["policies"],
    summary="Mark an action item done (members of the service's owning team)",
    responses={**NOT_FOUND, **CONFLICT},
)
def close_action_item(item_id: Id, session: SessionDep, actor: PrincipalDep, now: NowDep) -> ActionItemOut:
    row, slug = service.close_action_item(session, actor=actor, item_id=item_id, now=now)
    out = ActionItemOut(**service.action_item_out(row, slug))
    session.commit()
    return out


# ----------------------------------------------------------------------------------------------- report


@router.get(
    "/reports/velocity",
    tags=["reports"],
    summary="Budget left and its trend, freezes, gated releases and a verdict on the pace, for one service",
    responses=NOT_FOUND,
)
def velocity_report(
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    service_slug: Annotated[str, Query(alias="service", max_length=63)],
    period: Annotated[str, Query(max_length=8, description="1d to 90d, e.g. 7d, 4w, 30d")] = "30d",
) -> VelocityReportOut:
    return VelocityReportOut(**velocity.velocity_report(session, service=service_slug, period=period, now=now))
