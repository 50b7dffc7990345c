"""Blue-green use cases: targets, reading deployments, starting one, and a person's verbs (promote, abort,
resume). The state machine's own steps are in ``relia.deploys.machine``.

Keyword-only functions taking a session, the actor and ``now``; the caller owns the transaction. Rights follow
the service: members of its owning team (or administrators) may change its target and run its deployments;
targets whose adapter runs programs or writes files on the worker's host (``command``, ``nginx``) are for
administrators only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relia.catalog.models import Service
from relia.catalog.service import check_version
from relia.core import audit, timeline
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from relia.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from relia.deploys import machine, rules
from relia.deploys.gate import check_gate

# The reads that routes and pages need are the machine's own; they use them through this module.
from relia.deploys.machine import (  # noqa: F401
    DEPLOYMENT_LOADS,
    AnalysisStatus,
    analysis_status,
    facts,
    lock_deployment,
    measurements,
    parsed_spec,
)
from relia.deploys.models import Deployment, DeploymentStep, DeployTarget
from relia.deploys.rules import Action, Event, State
from relia.deploys.schemas import DeploymentCreate, DeployTargetSpec, PrometheusCheck, SloBurnCheck
from relia.slo import service as slo_service

REDACTED = "********"


class GateBlocked(Conflict):
    """The release gate answered ``block``. The caller commits what the gate recorded before answering."""

    slug, title = "release-blocked", "Release blocked by the gate"


# ------------------------------------------------------------------------------------------------- targets

_TARGET_LOADS = (selectinload(DeployTarget.service).selectinload(Service.owner_team),)


def get_target(session: Session, name: str, *, for_update: bool = False) -> DeployTarget:
    statement = select(DeployTarget).where(DeployTarget.name == name).options(*_TARGET_LOADS)
    if for_update:
        statement = statement.with_for_update(of=DeployTarget)
    target = session.scalars(statement).one_or_none()
    if target is None:
        raise NotFound(f"There is no deploy target {name!r}.")
    return target


def target_for_service(session: Session, slug: str, *, for_update: bool = False) -> DeployTarget | None:
    statement = (
        select(DeployTarget)
        .join(Service, DeployTarget.service_id == Service.id)
        .where(Service.slug == slug)
        .options(*_TARGET_LOADS)
    )
    if for_update:
        statement = statement.with_for_update(of=DeployTarget)
    return session.scalars(statement).one_or_none()


def list_targets(session: Session) -> list[DeployTarget]:
    return list(session.scalars(select(DeployTarget).options(*_TARGET_LOADS).order_by(DeployTarget.name)))


def target_spec(target: DeployTarget) -> dict[str, Any]:
    return DeployTargetSpec.model_validate(target.spec).model_dump(mode="json")


def redacted(spec: dict[str, Any], viewer: Principal | None = None) -> dict[str, Any]:
    """Webhook headers may hold credentials: only administrators see their values."""
    if viewer is not None and viewer.acts_as_admin:
        return spec
    adapter = spec.get("adapter") or {}
    if not adapter.get("headers"):
        return spec
    return {**spec, "adapter": {**adapter, "headers": dict.fromkeys(adapter["headers"], REDACTED)}}


def _require_target_rights(actor: Principal, service: Service, spec: DeployTargetSpec, what: str) -> None:
    actor.require_team(service.owner_team_id, what)
    if spec.runs_host_programs and not actor.acts_as_admin:
        raise Forbidden(
            f"A {spec.adapter.type} adapter runs programs or writes files on the worker's host, so only an "
            "administrator may set one; team members may use the http adapter.",
            errors=[FieldError("adapter.type", "needs an administrator")],
        )


def _check_references(session: Session, spec: DeployTargetSpec) -> Service:
    service = session.scalars(select(Service).where(Service.slug == spec.service)).one_or_none()
    if service is None:
        raise InvalidInput(
            f"There is no service {spec.service!r}.",
            errors=[FieldError("service", f"there is no service {spec.service!r}")],
        )
    problems = []
    for index, check in enumerate(spec.analysis.checks):
        path = f"analysis.checks.{index}"
        if isinstance(check, PrometheusCheck):
            try:
                source_type = slo_service.get_data_source(session, check.data_source).type
            except NotFound:
                source_type = None
            if source_type != "prometheus":
                problems.append(
                    FieldError(f"{path}.dataSource", f"there is no prometheus data source {check.data_source!r}")
                )
        elif isinstance(check, SloBurnCheck):
            try:
                slo = slo_service.get_slo(session, check.slo)
            except NotFound:
                problems.append(FieldError(f"{path}.slo", f"there is no SLO {check.slo!r}"))
                continue
            if check.objective is not None and check.objective not in {o.key for o in slo.objectives}:
                problems.append(
                    FieldError(f"{path}.objective", f"SLO {check.slo!r} has no objective {check.objective!r}")
                )
    if problems:
        raise InvalidInput("The analysis names objects that do not exist.", errors=problems)
    return service


def upsert_target(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: DeployTargetSpec,
    now: datetime,
    expected_version: int | None = None,
    config_managed: bool | None = None,
) -> tuple[DeployTarget, bool]:
    """Create or replace a target. Returns (target, created).

    ``live`` is read when the target is created; afterwards deployments move the live environment, and only a
    changed declaration (another value than the one last declared) records a switch made outside Relia."""
    service = _check_references(session, spec)
    after = spec.model_dump(mode="json")
    existing = session.scalars(
        select(DeployTarget).where(DeployTarget.name == name).options(*_TARGET_LOADS).with_for_update(of=DeployTarget)
    ).one_or_none()
    if existing is None:
        _require_target_rights(actor, service, spec, f"the deploy target of service {service.slug!r}")
        taken = session.scalar(select(DeployTarget.name).where(DeployTarget.service_id == service.id))
        if taken is not None:
            raise Conflict(
                f"Service {service.slug!r} has a deploy target already ({taken}).",
                errors=[FieldError("service", f"already the service of target {taken!r}")],
            )
        target = DeployTarget(
            name=name,
            service=service,
            spec=after,
            live_environment=spec.live,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(target)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="create",
            kind="DeployTarget",
            key=name,
            before=None,
            after=redacted(after),
            now=now,
        )
        return target, True

    check_version("DeployTarget", name, existing.version, expected_version, if_match=True)
    before = target_spec(existing)
    old = parsed_spec(before)
    _require_target_rights(actor, existing.service, old, f"deploy target {name!r}")
    if service.id != existing.service_id:
        _require_target_rights(actor, service, spec, f"the deploy target of service {service.slug!r}")
        if existing.active_deployment_id is not None:
            raise Conflict(f"Deploy target {name!r} has a deployment under way; its service cannot change now.")
    else:
        _require_target_rights(actor, service, spec, f"deploy target {name!r}")
    if config_managed is not None:
        existing.config_managed = config_managed
    if before == after:
        return existing, False
    declared_switch = spec.live != old.live and spec.live != existing.live_environment
    if declared_switch and existing.active_deployment_id is not None:
        raise Conflict(
            f"Deployment {existing.active_deployment_id} is under way on {name!r}; the live environment cannot be "
            "declared now.",
            errors=[FieldError("live", "a deployment is under way")],
        )
    existing.service, existing.spec, existing.updated_at = service, after, now
    if declared_switch:
        existing.live_environment = spec.live
        timeline.append(
            session,
            type="deploy.live.declared",
            at=now,
            service_id=service.id,
            actor=actor.name,
            summary=f"{actor.name} declared {spec.live} live for {service.slug} (target {name}); no traffic was moved",
            data={"target": name, "live": spec.live},
        )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        kind="DeployTarget",
        key=name,
        before=redacted(before),
        after=redacted(after),
        now=now,
    )
    return existing, False


def delete_target(session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None) -> None:
    target = get_target(session, name, for_update=True)
    _require_target_rights(actor, target.service, parsed_spec(target.spec), f"deploy target {name!r}")
    check_version("DeployTarget", name, target.version, if_match, if_match=True)
    if target.active_deployment_id is not None:
        raise Conflict(f"Deployment {target.active_deployment_id} is under way on {name!r}; abort it first.")
    before = target_spec(target)
    session.delete(target)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="delete",
        kind="DeployTarget",
        key=name,
        before=redacted(before),
        after=None,
        now=now,
    )


def environment_versions(target: DeployTarget) -> dict[str, str | None]:
    return {"blue": target.blue_version, "green": target.green_version}


# --------------------------------------------------------------------------------------------- reading


def get_deployment(session: Session, deployment_id: int) -> Deployment:
    deployment = session.scalars(
        select(Deployment).where(Deployment.id == deployment_id).options(*DEPLOYMENT_LOADS)
    ).one_or_none()
    if deployment is None:
        raise NotFound(f"There is no deployment {deployment_id}.")
    return deployment


def list_deployments(
    session: Session,
    *,
    service: str | None = None,
    active: bool | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[Deployment], str | None]:
    """Newest first."""
    statement = select(Deployment).options(*DEPLOYMENT_LOADS).order_by(Deployment.id.desc())
    before = decode_cursor(cursor)
    if before is not None:
        if not isinstance(before, int) or isinstance(before, bool):
            raise InvalidInput("The cursor is not one this server issued.", errors=[FieldError("query.cursor", "bad")])
        statement = statement.where(Deployment.id < before)
    if service:
        statement = statement.join(Service, Deployment.service_id == Service.id).where(Service.slug == service)
    if active is True:
        statement = statement.where(Deployment.finished_at.is_(None))
    elif active is False:
        statement = statement.where(Deployment.finished_at.is_not(None))
    rows = session.scalars(statement.limit(limit + 1)).all()
    items = list(rows[:limit])
    return items, encode_cursor(items[-1].id) if len(rows) > limit and items else None


def steps(session: Session, deployment_id: int) -> list[DeploymentStep]:
    return list(
        session.scalars(
            select(DeploymentStep).where(DeploymentStep.deployment_id == deployment_id).order_by(DeploymentStep.id)
        )
    )


def allowed_verbs(deployment: Deployment) -> list[str]:
    verbs = rules.allowed_verbs(State(deployment.state), facts(deployment))
    if deployment.abort_requested and "abort" in verbs:
        verbs.remove("abort")
    return verbs


# -------------------------------------------------------------------------------------------------- start


def start_deployment(session: Session, *, actor: Principal, data: DeploymentCreate, now: datetime) -> Deployment:
    """Start deploying ``data.version`` to the service's idle environment. The gate is asked first; a block
    raises GateBlocked (after noting the refusal on the timeline: commit before answering, so both stay)."""
    service = session.scalars(select(Service).where(Service.slug == data.service)).one_or_none()
    if service is None:
        raise InvalidInput(
            f"There is no service {data.service!r}.", errors=[FieldError("service", "there is no such service")]
        )
    actor.require_team(service.owner_team_id, f"deployments of service {service.slug!r}")
    target = target_for_service(session, data.service, for_update=True)
    if target is None:
        raise InvalidInput(
            f"Service {data.service!r} has no blue-green target; declare a DeployTarget for it first.",
            errors=[FieldError("service", "has no deploy target")],
        )
    if target.active_deployment_id is not None:
        raise Conflict(
            f"Deployment {target.active_deployment_id} of {data.service} is under way; let it finish or abort it.",
            activeDeployment=target.active_deployment_id,
        )
    gate = check_gate(
        session,
        actor=actor,
        service_slug=service.slug,
        version=data.version,
        change_type=data.change_type,
        phase="pre_deploy",
        now=now,
    )
    if gate.decision == "block":
        why = "; ".join(gate.reasons) or "no reason given"
        timeline.append(
            session,
            type="deploy.blocked",
            at=now,
            service_id=service.id,
            actor=actor.name,
            summary=f"Deployment of {data.version} to {service.slug} refused by the release gate: {why}",
            data={"version": data.version, "changeType": data.change_type, "reasons": gate.data or gate.reasons},
        )
        raise GateBlocked(
            f"The release gate blocks {data.change_type} releases of {service.slug}: {why}",
            gate={"decision": gate.decision, "reasons": gate.reasons},
        )
    spec = parsed_spec(target.spec)
    live = target.live_environment
    idle = rules.other_environment(live)
    deployment = Deployment(
        target=target,
        service=service,
        version=data.version,
        previous_version=environment_versions(target)[live],
        change_type=data.change_type,
        from_environment=live,
        to_environment=idle,
        spec=target.spec,
        variables=dict(data.variables),
        state=State.deploying,
        switched=False,
        abort_requested=False,
        action_attempts=0,
        analysis_run=0,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(deployment)
    session.flush()
    target.active_deployment_id = deployment.id
    machine.record_step(
        session,
        deployment,
        "deploy.started",
        f"{actor.name} started deploying {data.version} to {idle} ({spec.environments.of(idle).upstream}); "
        f"{live} is live"
        + (f" with {deployment.previous_version}" if deployment.previous_version else "")
        + (f": {data.reason}" if data.reason else ""),
        now,
        actor=actor.name,
        data={"version": data.version, "to": idle, "from": live, "changeType": data.change_type},
    )
    machine.record_gate_step(session, deployment, gate, "pre_deploy", now)
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="Deployment",
        key=str(deployment.id),
        before=None,
        after={
            "service": service.slug,
            "version": data.version,
            "changeType": data.change_type,
            "variables": sorted(data.variables),
            "reason": data.reason,
        },
        now=now,
    )
    machine.enter(session, deployment, now)
    machine.sync_deadline(session, deployment, now)
    return deployment


# ------------------------------------------------------------------------------------------ a person's verbs

VERBS = {"promote": Event.promote, "abort": Event.abort, "resume": Event.resume}


def act(
    session: Session,
    *,
    actor: Principal,
    deployment_id: int,
    verb: str,
    now: datetime,
    reason: str = "",
    revision: int | None = None,
    if_match: int | None = None,
) -> Deployment:
    """promote, abort or resume, as a person decided. A verb that does not apply now is a 409 with the reason."""
    event = VERBS[verb]
    deployment = lock_deployment(session, deployment_id)
    actor.require_team(deployment.service.owner_team_id, f"deployments of service {deployment.service.slug!r}")
    check_version("Deployment", str(deployment_id), deployment.revision, if_match, if_match=True)
    check_version("Deployment", str(deployment_id), deployment.revision, revision)
    before = {"state": deployment.state}
    said = f": {reason}" if reason else ""
    claimed = deployment.action_lease_until is not None and deployment.action_lease_until > now
    if event is Event.abort and claimed and deployment.action in (Action.deploy, Action.switch):
        # The adapter call under way cannot be taken back; abort once it has answered, so the rollback (or the
        # clean-up) never races it.
        if deployment.abort_requested:
            raise Conflict(f"Deployment {deployment_id}: an abort was already requested.")
        deployment.abort_requested = True
        deployment.message = f"aborted by {actor.name}{said}"
        machine.record_step(
            session,
            deployment,
            "deploy.abort.requested",
            f"{actor.name} asked to abort{said}; waiting for the {deployment.action} under way to answer",
            now,
            actor=actor.name,
        )
    elif (
        event is Event.abort
        and claimed
        and deployment.action == Action.retire
        and deployment.state == State.keeping_warm
    ):
        raise Conflict(
            f"Deployment {deployment_id} is retiring the old environment already; it is too late to roll back. "
            "Deploy the previous version instead."
        )
    else:
        try:
            rules.transition(State(deployment.state), event, facts(deployment))
        except rules.IllegalTransition as exc:
            raise Conflict(f"Deployment {deployment_id}: {exc}", state=deployment.state) from exc
        machine.cancel_action(deployment)
        if event is Event.abort:
            machine.fire(session, deployment, event, now, actor=actor.name, reason=f"aborted by {actor.name}{said}")
        elif event is Event.promote:
            machine.fire(session, deployment, event, now, actor=actor.name, reason=f"promoted by {actor.name}{said}")
        else:
            machine.fire(session, deployment, event, now, actor=actor.name, reason=f"resumed by {actor.name}{said}")
    audit.record(
        session,
        actor=actor,
        action=verb,
        kind="Deployment",
        key=str(deployment_id),
        before=before,
        after={"state": deployment.state, "reason": reason} if reason else {"state": deployment.state},
        now=now,
    )
    machine.sync_deadline(session, deployment, now)
    return deployment
