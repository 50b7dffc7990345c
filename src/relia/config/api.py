"""Config-as-code routes: the same validate / plan / apply / export as the CLI."""

from __future__ import annotations

from fastapi import APIRouter

from relia.api.deps import NowDep, PrincipalDep, SessionDep
from relia.config import registry, service
from relia.config.documents import SourceFile
from relia.config.schemas import (
    ConfigRequest,
    ExportOut,
    KindOut,
    PlanOut,
    ValidateOut,
    ValidateRequest,
    WarningOut,
)
from relia.core.auth import Principal

router = APIRouter(prefix="/config", tags=["config"])


def _files(body: ConfigRequest | ValidateRequest) -> list[SourceFile]:
    return [SourceFile(name=item.name, content=item.content) for item in body.files]


def _plan_out(plan: service.Plan, actor: Principal, *, applied: bool) -> PlanOut:
    changes = []
    for change in plan.changes:
        kind = registry.get_kind(change.kind)
        with_values = kind is None or kind.may_read_values(actor, change.name)
        changes.append(change.as_dict(with_values=with_values))
    return PlanOut.model_validate(
        {
            "applied": applied,
            "counts": plan.counts,
            "changes": changes,
            "warnings": [warning.as_dict() for warning in plan.warnings],
        }
    )


@router.get("/kinds", summary="The kinds this server understands")
def kinds(actor: PrincipalDep) -> list[KindOut]:
    return [
        KindOut(kind=kind.kind, api_version=registry.API_VERSION, summary=kind.summary) for kind in registry.kinds()
    ]


@router.post("/validate", summary="Check files without touching the database")
def validate(body: ValidateRequest, actor: PrincipalDep) -> ValidateOut:
    loaded = service.validate(_files(body))
    return ValidateOut(
        valid=True,
        objects=[
            {"kind": obj.kind, "name": obj.name, "source": f"{obj.document.file}#{obj.document.index}"}
            for obj in loaded.objects
        ],
        warnings=[WarningOut.model_validate(warning.as_dict()) for warning in loaded.warnings],
        note="References to objects outside these files are checked by plan and apply.",
    )


@router.post("/plan", summary="What apply would change (a diff)")
def plan(body: ConfigRequest, session: SessionDep, actor: PrincipalDep) -> PlanOut:
    return _plan_out(service.plan(session, _files(body), prune=body.prune), actor, applied=False)


@router.post("/apply", summary="Apply files: all or nothing, idempotent")
def apply(body: ConfigRequest, session: SessionDep, actor: PrincipalDep, now: NowDep) -> PlanOut:
    actor.require_write()
    result = service.apply(session, _files(body), actor=actor, now=now, prune=body.prune)
    session.commit()
    return _plan_out(result, actor, applied=True)


@router.get("/export", summary="Every object as config documents")
def export(session: SessionDep, actor: PrincipalDep) -> ExportOut:
    return ExportOut(documents=service.export(session, actor=actor))
