"""SLO routes: data sources, SLOs, pushed events, status, history, backtest, budget adjustments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status

from relia.api.deps import IfMatchDep, NowDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.core.auth import Principal
from relia.core.schemas import Page
from relia.slo import history, service
from relia.slo.models import SLO
from relia.slo.schemas import (
    AdjustmentCreate,
    AdjustmentOut,
    DataSourceOut,
    DataSourceSpec,
    EventBatch,
    IngestResult,
    ObjectiveStatusOut,
    SLOCreate,
    SLOOut,
    SLOSpec,
    SourceHealthOut,
)

router = APIRouter(tags=["slos"])
Name = Annotated[str, Path(max_length=63)]
STATE_ORDER = {"exhausted": 0, "at_risk": 1, "healthy": 2, "no_data": 3, "pending": 4}


# ------------------------------------------------------------------------------------------ data sources


def _source_out(source: Any, actor: Principal) -> DataSourceOut:
    return DataSourceOut(
        name=source.name,
        spec=service.redacted_spec(source, actor),
        version=source.version,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


@router.get("/data-sources", summary="List data sources")
def list_data_sources(session: SessionDep, actor: PrincipalDep) -> list[DataSourceOut]:
    return [_source_out(source, actor) for source in service.list_data_sources(session)]


@router.get("/data-sources/{name}", summary="Get a data source", responses=NOT_FOUND)
def get_data_source(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> DataSourceOut:
    source = service.get_data_source(session, name)
    response.headers["ETag"] = etag(source.version)
    return _source_out(source, actor)


@router.put(
    "/data-sources/{name}",
    summary="Create or replace a data source (administrators)",
    responses={**CONFLICT, 201: {"model": DataSourceOut, "description": "Created"}},
)
def put_data_source(
    name: Name,
    body: DataSourceSpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> DataSourceOut:
    _check_slug(name)
    source, created = service.upsert_data_source(
        session, actor=actor, name=name, spec=body, now=now, expected_version=if_match
    )
    out = _source_out(source, actor)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(source.version)
    return out


@router.delete(
    "/data-sources/{name}",
    summary="Delete a data source (administrators)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_data_source(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep) -> None:
    service.delete_data_source(session, actor=actor, name=name, now=now)
    session.commit()


# ------------------------------------------------------------------------------------------------- SLOs


def slo_out(session: Any, slo: SLO) -> SLOOut:
    spec = service.parsed_spec(slo)
    found = service.statuses(session, [objective.id for objective in slo.objectives])
    objectives = []
    for objective in slo.objectives:
        item = next(o for o in spec.objectives if o.name == objective.key)
        row = found.get(objective.id)
        objectives.append(
            ObjectiveStatusOut(
                objective=objective.key,
                display_name=item.display_name,
                target=item.target,
                state=row.state if row else "pending",
                budget_remaining=row.budget_remaining if row else None,
                evaluated_at=row.evaluated_at if row else None,
                detail=row.detail if row else None,
            )
        )
    state = service.source_state(session, slo.id)
    source = slo.data_source
    health = SourceHealthOut(
        kind="push" if source is None else source.type,
        data_source=source.name if source else None,
        failing=bool(state and state.failing),
        last_error=state.last_error if state else None,
        last_error_at=state.last_error_at if state else None,
        last_sample_at=state.last_sample_at if state else None,
        backfilled=bool(state.backfilled) if state else True,
    )
    return SLOOut(
        name=slo.name,
        service=slo.service.slug,
        spec=service.slo_spec(slo),
        source=health,
        objectives=objectives,
        lints=service.lint(spec),
        version=slo.version,
        created_at=slo.created_at,
        updated_at=slo.updated_at,
    )


def _worst(out: SLOOut) -> tuple[int, float]:
    states = [STATE_ORDER[objective.state] for objective in out.objectives] or [4]
    remaining = [o.budget_remaining for o in out.objectives if o.budget_remaining is not None]
    return min(states), min(remaining, default=2.0)


@router.get("/slos", summary="List SLOs, the least budget left first (or by name)")
def list_slos(
    session: SessionDep,
    actor: PrincipalDep,
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
    state: Annotated[Literal["healthy", "at_risk", "exhausted", "no_data", "pending"] | None, Query()] = None,
    sort: Annotated[Literal["budget", "name"], Query()] = "budget",
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[SLOOut]:
    slos, next_cursor = service.list_slos(session, cursor=cursor, limit=limit, service=service_slug)
    items = [slo_out(session, slo) for slo in slos]
    if state:
        items = [item for item in items if any(o.state == state for o in item.objectives)]
    if sort == "budget":
        items.sort(key=lambda item: (_worst(item), item.name))
    return Page[SLOOut](items=items, next_cursor=next_cursor)


@router.post(
    "/slos",
    summary="Create an SLO (members of the service's owning team)",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_slo(body: SLOCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response) -> SLOOut:
    slo = service.create_slo(session, actor=actor, data=body, now=now)
    out = slo_out(session, slo)
    session.commit()
    response.headers["ETag"] = etag(slo.version)
    return out


@router.get("/slos/{name}", summary="An SLO with its current status per objective", responses=NOT_FOUND)
def get_slo(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> SLOOut:
    slo = service.get_slo(session, name)
    response.headers["ETag"] = etag(slo.version)
    return slo_out(session, slo)


@router.put("/slos/{name}", summary="Replace an SLO's definition", responses={**NOT_FOUND, **CONFLICT})
def put_slo(
    name: Name,
    body: SLOSpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> SLOOut:
    slo = service.update_slo(session, actor=actor, name=name, spec=body, now=now, if_match=if_match)
    out = slo_out(session, slo)
    session.commit()
    response.headers["ETag"] = etag(slo.version)
    return out


@router.delete(
    "/slos/{name}",
    summary="Delete an SLO and its history",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_slo(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_slo(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


@router.post(
    "/slos/{name}/events",
    summary="Push events: pre-counted points or raw events, idempotent per key",
    responses={**NOT_FOUND, **CONFLICT},
)
def push_events(name: Name, body: EventBatch, session: SessionDep, actor: PrincipalDep, now: NowDep) -> IngestResult:
    accepted, minutes, duplicate = service.ingest(session, actor=actor, name=name, batch=body, now=now)
    session.commit()
    return IngestResult(accepted=accepted, minutes=minutes, duplicate=duplicate)


@router.get(
    "/slos/{name}/history", summary="SLI, remaining budget and burn rates over a time range", responses=NOT_FOUND
)
def slo_history(
    name: Name,
    session: SessionDep,
    actor: PrincipalDep,
    start: Annotated[datetime, Query()],
    end: Annotated[datetime, Query()],
    step: Annotated[int, Query(ge=1, le=60 * 24 * 31, description="Minutes between points")] = 60,
    objective: Annotated[str | None, Query(max_length=63)] = None,
) -> dict[str, Any]:
    slo = service.get_slo(session, name)
    return history.series(session, slo, objective, history.check_range(start, end, step))


@router.get(
    "/slos/{name}/backtest", summary="When page and ticket alerts would have fired over a range", responses=NOT_FOUND
)
def slo_backtest(
    name: Name,
    session: SessionDep,
    actor: PrincipalDep,
    start: Annotated[datetime, Query()],
    end: Annotated[datetime, Query()],
    objective: Annotated[str | None, Query(max_length=63)] = None,
    step_seconds: Annotated[int, Query(alias="stepSeconds", ge=1, le=60)] = 60,
) -> dict[str, Any]:
    slo = service.get_slo(session, name)
    return history.backtest(session, slo, objective, history.check_range(start, end, 1), step_seconds=step_seconds)


# ------------------------------------------------------------------------------------------ adjustments


def _adjustment_out(item: Any) -> AdjustmentOut:
    return AdjustmentOut(
        id=item.id,
        start=item.start,
        end=item.end,
        reason=item.reason,
        created_by=item.created_by,
        created_at=item.created_at,
        deleted_at=item.deleted_at,
    )


@router.get("/slos/{name}/adjustments", summary="Budget adjustments (excluded periods)", responses=NOT_FOUND)
def list_adjustments(name: Name, session: SessionDep, actor: PrincipalDep) -> list[AdjustmentOut]:
    slo = service.get_slo(session, name)
    return [
        _adjustment_out(item) for item in service.adjustments(session, [slo.id], include_deleted=True).get(slo.id, [])
    ]


@router.post(
    "/slos/{name}/adjustments",
    summary="Exclude a period from an SLO, with a reason",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
def add_adjustment(
    name: Name, body: AdjustmentCreate, session: SessionDep, actor: PrincipalDep, now: NowDep
) -> AdjustmentOut:
    item = service.add_adjustment(session, actor=actor, name=name, data=body, now=now)
    out = _adjustment_out(item)
    session.commit()
    return out


@router.delete(
    "/slos/{name}/adjustments/{adjustment_id}",
    summary="Withdraw a budget adjustment",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
)
def remove_adjustment(
    name: Name,
    adjustment_id: Annotated[int, Path(ge=1, le=2**62)],
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
) -> None:
    service.remove_adjustment(session, actor=actor, name=name, adjustment_id=adjustment_id, now=now)
    session.commit()


def _check_slug(name: str) -> None:
    import re

    from relia.core.errors import FieldError, InvalidInput
    from relia.core.schemas import SLUG_PATTERN

    if not re.fullmatch(SLUG_PATTERN, name):
        raise InvalidInput(
            "Names are lower-case letters, digits and dashes.", errors=[FieldError("path.name", "not a valid name")]
        )
