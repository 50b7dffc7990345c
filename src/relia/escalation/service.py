"""Escalation use cases: escalation policies (team managers change their team's), which policy pages for a
service, and the escalation of each alert group, advanced by durable timers.

Keyword-only functions taking a session; the caller owns the transaction. The alert group transitions arrive as
hooks in the alerting domain's transaction (``relia.escalation.jobs``); the steps run in timer handlers, each in
the transaction the timer was claimed in.

The state machine, per alert group (one ``escalations`` row):

- *opened*: the policy is resolved (the service's own, its team's default, or the default of the team the pager
  was handed to) and its spec copied into the row (the snapshot); the first step's timer is written.
- a *step timer* fires: if it still matches the row (same round, same position, status active) the step runs
  once, keyed (group, round, step, repeat) in ``escalation_steps``; its pages go to the outbox in the same
  transaction; the next step's timer is written, or the escalation is exhausted.
- *acknowledged*: the timers stop, pages that have not left are cancelled, and with an ``ackTimeout`` a timer is
  written that restarts the escalation (a new round) if the group is still only acknowledged then.
- *snoozed*: as acknowledged, and a timer restarts the escalation when the snooze ends.
- *resolved*: everything stops. *reopened*: a new round with a fresh snapshot of the current policy.

A timer or delayed notification of an older round, or of a position the escalation has left, does nothing, so
redelivered, late or duplicated timers never page twice.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from relia.catalog.models import Service, Team, TeamMembership, User
from relia.catalog.service import check_version
from relia.core import audit, timeline, timers
from relia.core.auth import Principal
from relia.core.errors import FieldError, InvalidInput, NotFound, ReliaError
from relia.core.models import Timer
from relia.escalation import rules
from relia.escalation.models import Escalation, EscalationPolicy, EscalationPolicyService, EscalationStep
from relia.escalation.schemas import (
    EscalationOut,
    EscalationPolicyOut,
    EscalationPolicySpec,
    EscalationStepOut,
    PreviewStepOut,
    ServiceEscalationOut,
    StepTargetOut,
    spec_json,
)
from relia.notify import service as notify
from relia.notify.rules import PlannedContact, format_seconds

log = structlog.get_logger("relia.escalation")

STEP_TIMER = "escalation.step"
RULE_TIMER = "escalation.rule"
ACK_TIMEOUT_TIMER = "escalation.ack-timeout"
SNOOZE_END_TIMER = "escalation.snooze-end"
ALL_TIMERS = (STEP_TIMER, RULE_TIMER, ACK_TIMEOUT_TIMER, SNOOZE_END_TIMER)

# Statuses in which an escalation still pages: active steps run; delayed personal rules of an exhausted
# escalation still fire (nobody acknowledged, the reminder is still wanted).
PAGING = ("active", "exhausted")

# ---------------------------------------------------------------------------------------------- policies


def get_policy(session: Session, name: str, *, for_update: bool = False) -> EscalationPolicy:
    statement = select(EscalationPolicy).where(EscalationPolicy.name == name)
    if for_update:
        statement = statement.with_for_update(of=EscalationPolicy, key_share=True)
    policy = session.scalars(statement).one_or_none()
    if policy is None:
        raise NotFound(f"There is no escalation policy {name!r}.")
    return policy


def list_policies(session: Session, *, team: str | None = None) -> list[tuple[EscalationPolicy, str]]:
    """(policy, team slug), by team then name."""
    statement = (
        select(EscalationPolicy, Team.slug)
        .join(Team, EscalationPolicy.team_id == Team.id)
        .order_by(Team.slug, EscalationPolicy.name)
    )
    if team is not None:
        statement = statement.where(Team.slug == team)
    return [(policy, slug) for policy, slug in session.execute(statement).all()]


def policy_spec(policy: EscalationPolicy) -> dict[str, Any]:
    return dict(policy.spec)


def preview_out(spec: dict[str, Any]) -> list[PreviewStepOut]:
    plan = rules.compile_plan(spec)
    return [
        PreviewStepOut(
            after_seconds=row.offset,
            after=format_seconds(row.offset),
            step=row.stage.step_index + 1,
            repeat=row.repeat,
            targets=row.stage.targets.describe(),
        )
        for row in rules.preview(plan)
    ]


def live_group_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Escalation.policy_id, func.count())
        .where(Escalation.status.in_(("active", "acknowledged", "snoozed")), Escalation.policy_id.is_not(None))
        .group_by(Escalation.policy_id)
    ).all()
    return {policy_id: count for policy_id, count in rows}


def policy_out(session: Session, policy: EscalationPolicy, live: dict[int, int] | None = None) -> EscalationPolicyOut:
    live = live if live is not None else live_group_counts(session)
    return EscalationPolicyOut(
        name=policy.name,
        spec=policy_spec(policy),
        preview=preview_out(policy.spec),
        live_groups=live.get(policy.id, 0),
        version=policy.version,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def _team(session: Session, slug: str, path: str) -> Team:
    team = session.scalars(select(Team).where(Team.slug == slug)).one_or_none()
    if team is None:
        raise InvalidInput(f"There is no team {slug!r}.", errors=[FieldError(path, f"there is no team {slug!r}")])
    return team


def _installed(module: str) -> Any | None:
    """Another domain's service module when that domain is installed, else None. Only its own absence counts
    as "not installed": an import error inside it must surface."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise


def _on_call(session: Session, schedule: str, at: datetime) -> list[Any] | None:
    """Who is on call in ``schedule`` at ``at`` (``user_id``, ``username``...), from the on-call domain; None
    when it is not installed. An unknown schedule raises its NotFound."""
    oncall = _installed("relia.oncall.service")
    if oncall is None:
        return None
    return list(oncall.on_call(session, schedule=schedule, at=at))


def _active_handoff(session: Session, service_id: int) -> Any | None:
    """The pager handoff in force for a service (the error-budget policy domain records them, audited), if that
    domain is installed; it has ``from_team_id``, ``to_team_id``, ``policy_name`` and ``reason``."""
    policy = _installed("relia.policy.service")
    find = getattr(policy, "active_pager_handoff", None) if policy is not None else None
    return find(session, service_id) if find is not None else None


def check_spec(session: Session, spec: EscalationPolicySpec, team: Team, now: datetime) -> None:
    """Everything a policy names must exist: users, teams, schedules (when on-call scheduling is installed), and
    the listed services must belong to the policy's team. Cross-step rules too (rules.spec_problems)."""
    problems = [
        FieldError(path, message)
        for path, message in rules.spec_problems(
            [step.model_dump(exclude_none=True) for step in spec.steps], spec.repeat
        )
    ]
    usernames = {name for step in spec.steps if step.notify for name in step.notify.users}
    team_slugs = {name for step in spec.steps if step.notify for name in step.notify.teams}
    known_users = set(session.scalars(select(User.username).where(User.username.in_(usernames))))
    known_teams = set(session.scalars(select(Team.slug).where(Team.slug.in_(team_slugs))))
    checked_schedules: dict[str, str | None] = {}
    for index, step in enumerate(spec.steps):
        if step.notify is None:
            continue
        base = f"steps.{index}.notify"
        problems += [
            FieldError(f"{base}.users.{i}", f"there is no user {name!r}")
            for i, name in enumerate(step.notify.users)
            if name not in known_users
        ]
        problems += [
            FieldError(f"{base}.teams.{i}", f"there is no team {name!r}")
            for i, name in enumerate(step.notify.teams)
            if name not in known_teams
        ]
        for i, name in enumerate(step.notify.schedules):
            if name not in checked_schedules:
                checked_schedules[name] = _schedule_problem(session, name, now)
            if checked_schedules[name]:
                problems.append(FieldError(f"{base}.schedules.{i}", checked_schedules[name] or ""))
    if spec.services:
        owners = set(session.scalars(select(Service.slug).where(Service.slug.in_(spec.services))))
        # A policy may list another team's service: its team then holds that service's pager (an SRE team
        # supporting a dev team's service), until an error-budget policy hands the pager back.
        for index, slug in enumerate(spec.services):
            if slug not in owners:
                problems.append(FieldError(f"services.{index}", f"there is no service {slug!r}"))
    if problems:
        raise InvalidInput("The escalation policy is not valid.", errors=problems)


def _schedule_problem(session: Session, name: str, now: datetime) -> str | None:
    try:
        _on_call(session, name, now)
    except NotFound:
        return f"there is no schedule {name!r}"
    return None


def _audit_policy(
    session: Session, actor: Principal, action: str, name: str, before: Any, after: Any, now: datetime
) -> None:
    audit.record(
        session, actor=actor, action=action, kind="EscalationPolicy", key=name, before=before, after=after, now=now
    )


def upsert_policy(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: EscalationPolicySpec,
    now: datetime,
    if_match: int | None = None,
    expected_version: int | None = None,
    config_managed: bool | None = None,
) -> tuple[EscalationPolicy, bool]:
    """Create or replace a policy (the team's managers, or administrators). Returns (policy, created).

    Making a policy the team's default takes the flag from the previous default, and listing a service takes it
    from the policy that listed it before; both changes are audited on the policy that lost them. That way one
    apply can move a default or a service between two policies in either order."""
    team = _team(session, spec.team, "team")
    actor.require_team_manager(team.id, f"escalation policies of team {team.slug!r}")
    check_spec(session, spec, team, now)
    after = spec_json(spec)
    policy = session.scalars(
        select(EscalationPolicy)
        .where(EscalationPolicy.name == name)
        .with_for_update(of=EscalationPolicy, key_share=True)
    ).one_or_none()
    if policy is None:
        if if_match is not None:
            raise NotFound(f"There is no escalation policy {name!r} to update.")
        check_version("EscalationPolicy", name, 0, expected_version or None)
        if spec.default:
            _take_default(session, actor, None, team.id, now)
        policy = EscalationPolicy(
            name=name,
            team_id=team.id,
            is_default=spec.default,
            spec=after,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(policy)
        session.flush()
        _set_services(session, actor, policy, spec.services, now)
        _audit_policy(session, actor, "create", name, None, after, now)
        return policy, True
    check_version("EscalationPolicy", name, policy.version, if_match, if_match=True)
    check_version("EscalationPolicy", name, policy.version, expected_version)
    if policy.team_id != team.id:
        # Moving a policy to another team needs rights over the team it leaves too.
        actor.require_team_manager(policy.team_id, f"escalation policy {name!r}")
    before = policy_spec(policy)
    if config_managed is not None:
        policy.config_managed = config_managed
    if before == after:
        return policy, False
    if spec.default:
        _take_default(session, actor, policy.id, team.id, now)
    policy.team_id, policy.is_default, policy.spec, policy.updated_at = team.id, spec.default, after, now
    session.flush()
    _set_services(session, actor, policy, spec.services, now)
    _audit_policy(session, actor, "update", name, before, after, now)
    return policy, False


def _take_default(session: Session, actor: Principal, policy_id: int | None, team_id: int, now: datetime) -> None:
    """The team's current default (another policy) stops being the default: a team has one."""
    statement = select(EscalationPolicy).where(
        EscalationPolicy.team_id == team_id, EscalationPolicy.is_default.is_(True)
    )
    if policy_id is not None:
        statement = statement.where(EscalationPolicy.id != policy_id)
    previous = session.scalars(statement).all()
    for other in previous:
        before = policy_spec(other)
        other.is_default = False
        other.spec = {**before, "default": False}
        other.updated_at = now
        _audit_policy(session, actor, "update", other.name, before, other.spec, now)
    session.flush()


def _set_services(
    session: Session, actor: Principal, policy: EscalationPolicy, slugs: Sequence[str], now: datetime
) -> None:
    wanted = dict(session.execute(select(Service.id, Service.slug).where(Service.slug.in_(list(slugs)))).all())
    session.execute(
        delete(EscalationPolicyService).where(
            EscalationPolicyService.policy_id == policy.id, EscalationPolicyService.service_id.not_in(list(wanted))
        )
    )
    taken = session.execute(
        select(EscalationPolicyService, EscalationPolicy)
        .join(EscalationPolicy, EscalationPolicy.id == EscalationPolicyService.policy_id)
        .where(EscalationPolicyService.service_id.in_(list(wanted)), EscalationPolicyService.policy_id != policy.id)
    ).all()
    for link, other in taken:
        before = policy_spec(other)
        other.spec = {**before, "services": [s for s in before.get("services", []) if s != wanted[link.service_id]]}
        other.updated_at = now
        session.delete(link)
        _audit_policy(session, actor, "update", other.name, before, other.spec, now)
    session.flush()
    present = set(
        session.scalars(
            select(EscalationPolicyService.service_id).where(EscalationPolicyService.policy_id == policy.id)
        )
    )
    for service_id in wanted:
        if service_id not in present:
            session.add(EscalationPolicyService(service_id=service_id, policy_id=policy.id))
    session.flush()


def delete_policy(session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None) -> None:
    """Delete a policy. Live alert groups keep escalating on their snapshot of it."""
    policy = get_policy(session, name, for_update=True)
    actor.require_team_manager(policy.team_id, f"escalation policy {name!r}")
    check_version("EscalationPolicy", name, policy.version, if_match, if_match=True)
    before = policy_spec(policy)
    session.delete(policy)
    session.flush()
    _audit_policy(session, actor, "delete", name, before, None, now)


# ------------------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Resolution:
    """Which policy pages for a service right now, and why."""

    team_id: int | None
    policy: EscalationPolicy | None
    source: str  # service, team-default, handoff, fallback, none
    detail: str
    snapshot: dict[str, Any]


def _fallback_snapshot(team: Team) -> dict[str, Any]:
    return {"team": team.slug, "steps": [{"notify": {"teams": [team.slug]}}], "repeat": 0}


def resolve_policy(session: Session, service_id: int | None) -> Resolution:
    """The policy for a new alert group of ``service_id``.

    The policy that lists the service pages for it, whichever team it belongs to (a supporting SRE team holds
    the pager of a service it lists); otherwise the owning team's default. A pager handed to another team by an
    error-budget policy (usually from the SRE team back to the owning team) wins: the receiving team's policy
    that lists the service, else its default. With no policy at all the team's members are paged
    (``fallback``): an alert group must never page nobody just because a policy is missing. Only a group without
    a service, or of a team without members, pages nobody (``none``)."""
    service = session.get(Service, service_id) if service_id is not None else None
    if service is None:
        return Resolution(None, None, "none", "the alert group has no service", {})
    listed = session.scalars(
        select(EscalationPolicy)
        .join(EscalationPolicyService, EscalationPolicyService.policy_id == EscalationPolicy.id)
        .where(EscalationPolicyService.service_id == service.id)
    ).first()
    handoff = _active_handoff(session, service.id)
    if handoff is not None:
        team = session.get(Team, handoff.to_team_id)
        from_team = session.get(Team, handoff.from_team_id)
        if team is not None:
            detail = (
                f"the pager of {service.slug} is handed from {from_team.slug if from_team else '?'} to {team.slug}"
                f" (error-budget policy {handoff.policy_name})"
            )
            policy = listed if listed is not None and listed.team_id == team.id else _team_default(session, team.id)
            if policy is not None:
                return Resolution(team.id, policy, "handoff", detail, dict(policy.spec))
            return _fallback(session, team, f"{detail}; {team.slug} has no default policy")
    if listed is not None:
        return Resolution(
            listed.team_id, listed, "service", f"policy {listed.name} lists {service.slug}", dict(listed.spec)
        )
    team = session.get(Team, service.owner_team_id)
    assert team is not None
    policy = _team_default(session, team.id)
    if policy is not None:
        return Resolution(team.id, policy, "team-default", f"the default policy of team {team.slug}", dict(policy.spec))
    return _fallback(session, team, f"team {team.slug} has no default escalation policy")


def _team_default(session: Session, team_id: int) -> EscalationPolicy | None:
    return session.scalars(
        select(EscalationPolicy).where(EscalationPolicy.team_id == team_id, EscalationPolicy.is_default.is_(True))
    ).first()


def _fallback(session: Session, team: Team, why: str) -> Resolution:
    members = session.scalar(select(func.count()).select_from(TeamMembership).where(TeamMembership.team_id == team.id))
    if not members:
        return Resolution(team.id, None, "none", f"{why}, and the team has no members: nobody is paged", {})
    return Resolution(
        team.id, None, "fallback", f"{why}: every member of {team.slug} is paged", _fallback_snapshot(team)
    )


def service_escalation(session: Session, slug: str) -> ServiceEscalationOut:
    service = session.scalars(select(Service).where(Service.slug == slug)).one_or_none()
    if service is None:
        raise NotFound(f"There is no service {slug!r}.")
    found = resolve_policy(session, service.id)
    team = session.get(Team, found.team_id) if found.team_id else None
    return ServiceEscalationOut(
        service=slug,
        team=team.slug if team else None,
        policy=found.policy.name if found.policy else None,
        source=found.source,
        detail=found.detail,
    )


# --------------------------------------------------------------------------------------------- lifecycle


def _lock(session: Session, group_id: int) -> Escalation | None:
    return session.scalars(
        select(Escalation)
        .where(Escalation.group_id == group_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _step_key(group_id: int, round_: int, step_index: int, repeat: int) -> str:
    return f"{group_id}:{round_}:{step_index}:{repeat}"


def _cancel_timers(session: Session, group_id: int, *, firing: tuple[str, str] | None = None) -> None:
    """Delete the group's pending timers, except ``firing``: the timer being handled, which the timer loop
    deletes itself when its handler returns."""
    statement = delete(Timer).where(Timer.kind.in_(ALL_TIMERS), Timer.key.like(f"{group_id}:%"))
    if firing is not None:
        statement = statement.where(~((Timer.kind == firing[0]) & (Timer.key == firing[1])))
    session.execute(statement)


def _schedule_stage(session: Session, esc: Escalation, plan: rules.Plan, move: rules.Move, at: datetime) -> None:
    esc.stage, esc.repeat = move.position.stage, move.position.repeat
    esc.next_step_at = at + timedelta(seconds=move.delay)
    stage = plan.stages[move.position.stage]
    timers.schedule(
        session,
        kind=STEP_TIMER,
        key=_step_key(esc.group_id, esc.round, stage.step_index, esc.repeat),
        due_at=esc.next_step_at,
        payload={
            "groupId": esc.group_id,
            "round": esc.round,
            "stage": esc.stage,
            "stepIndex": stage.step_index,
            "repeat": esc.repeat,
        },
        now=at,
    )


def _service_label(session: Session, service_id: int | None) -> str:
    if service_id is None:
        return "no service"
    return session.scalar(select(Service.slug).where(Service.id == service_id)) or "deleted service"


def _event(session: Session, esc: Escalation, type_: str, summary: str, now: datetime, **data: Any) -> None:
    timeline.append(
        session,
        type=type_,
        at=now,
        service_id=esc.service_id,
        actor="escalation",
        summary=summary,
        data={"groupId": esc.group_id, "round": esc.round, "policy": esc.policy_name, **data},
    )


def open_group(
    session: Session, *, group_id: int, service_id: int | None, now: datetime, title: str | None = None
) -> Escalation:
    """An alert group opened: snapshot the policy and write the first step's timer. Opening a group that already
    has an escalation changes nothing (an event delivered twice)."""
    existing = _lock(session, group_id)
    if existing is not None:
        return existing
    found = resolve_policy(session, service_id)
    esc = Escalation(
        group_id=group_id,
        service_id=service_id,
        title=(title or "")[:2000],
        status="active",
        round=0,
        opened_at=now,
        round_started_at=now,
        updated_at=now,
    )
    _apply_resolution(esc, found)
    session.add(esc)
    session.flush()
    if found.source == "none":
        esc.status = "none"
        _event(session, esc, "escalation.nobody", f"Alert group #{group_id} pages nobody: {found.detail}", now)
        log.warning("escalation.nobody", group_id=group_id, detail=found.detail)
        return esc
    plan = rules.compile_plan(esc.snapshot)
    _schedule_stage(session, esc, plan, rules.first_move(plan), now)
    policy = f"policy {esc.policy_name}" if esc.policy_name else "no policy (fallback)"
    _event(
        session,
        esc,
        "escalation.started",
        f"Escalation of alert group #{group_id} started: {policy}",
        now,
        source=found.source,
        detail=found.detail,
    )
    return esc


def _apply_resolution(esc: Escalation, found: Resolution) -> None:
    esc.team_id = found.team_id
    esc.policy_id = found.policy.id if found.policy else None
    esc.policy_name = found.policy.name if found.policy else None
    esc.policy_version = found.policy.version if found.policy else None
    esc.source, esc.source_detail, esc.snapshot = found.source, found.detail, found.snapshot


def _new_round(
    session: Session,
    esc: Escalation,
    now: datetime,
    *,
    fresh_snapshot: bool,
    firing: tuple[str, str] | None = None,
) -> None:
    _cancel_timers(session, esc.group_id, firing=firing)
    if fresh_snapshot:
        _apply_resolution(esc, resolve_policy(session, esc.service_id))
    esc.round += 1
    esc.round_started_at = now
    esc.acknowledged_at = esc.acknowledged_by = esc.snoozed_until = esc.resolved_at = esc.exhausted_at = None
    esc.updated_at = now
    if esc.source == "none":
        esc.status = "none"
        esc.next_step_at = None
        return
    esc.status = "active"
    plan = rules.compile_plan(esc.snapshot)
    _schedule_stage(session, esc, plan, rules.first_move(plan), now)


def _stop(session: Session, esc: Escalation, now: datetime, reason: str) -> None:
    _cancel_timers(session, esc.group_id)
    notify.cancel_unsent(session, group_id=esc.group_id, now=now, reason=reason)
    esc.next_step_at = None
    esc.updated_at = now


def acknowledge_group(session: Session, *, group_id: int, user_id: int | None, now: datetime) -> Escalation | None:
    esc = _lock(session, group_id)
    if esc is None or esc.status in ("resolved", "acknowledged"):
        return esc
    _stop(session, esc, now, "the alert group was acknowledged before this left")
    esc.status, esc.acknowledged_at, esc.acknowledged_by = "acknowledged", now, user_id
    ack_timeout = rules.compile_plan(esc.snapshot).ack_timeout if esc.snapshot else None
    if ack_timeout:
        timers.schedule(
            session,
            kind=ACK_TIMEOUT_TIMER,
            key=f"{group_id}:{esc.round}",
            due_at=now + timedelta(seconds=ack_timeout),
            payload={"groupId": group_id, "round": esc.round},
            now=now,
        )
    return esc


def resolve_group(session: Session, *, group_id: int, user_id: int | None, now: datetime) -> Escalation | None:
    esc = _lock(session, group_id)
    if esc is None or esc.status == "resolved":
        return esc
    _stop(session, esc, now, "the alert group was resolved before this left")
    esc.status, esc.resolved_at = "resolved", now
    return esc


def snooze_group(session: Session, *, group_id: int, until: datetime, now: datetime) -> Escalation | None:
    esc = _lock(session, group_id)
    if esc is None or esc.status == "resolved":
        return esc
    _stop(session, esc, now, "the alert group was snoozed before this left")
    esc.status, esc.snoozed_until = "snoozed", until
    timers.schedule(
        session,
        kind=SNOOZE_END_TIMER,
        key=f"{group_id}:{esc.round}",
        due_at=max(until, now),
        payload={"groupId": group_id, "round": esc.round},
        now=now,
    )
    return esc


def reopen_group(
    session: Session, *, group_id: int, service_id: int | None, now: datetime, title: str | None = None
) -> Escalation:
    """The group is open again: escalate anew on a fresh snapshot of the policy in force now. A group that is
    escalating already (a snooze that ended here first, an event delivered twice) carries on unchanged."""
    esc = _lock(session, group_id)
    if esc is None:
        return open_group(session, group_id=group_id, service_id=service_id, now=now, title=title)
    if esc.status == "active":
        return esc
    _new_round(session, esc, now, fresh_snapshot=True)
    _event(session, esc, "escalation.restarted", f"Alert group #{group_id} reopened: escalating again", now)
    return esc


# ----------------------------------------------------------------------------------------------- timers


def run_step(session: Session, payload: dict[str, Any], now: datetime) -> None:
    """A step timer fired. Runs the step if the escalation is still there (same round, same position, active),
    once per (group, round, step, repeat), then writes the next step's timer."""
    group_id, round_ = int(payload["groupId"]), int(payload["round"])
    stage_no, repeat = int(payload["stage"]), int(payload["repeat"])
    esc = _lock(session, group_id)
    if esc is None or esc.status != "active" or esc.round != round_ or (esc.stage, esc.repeat) != (stage_no, repeat):
        return
    plan = rules.compile_plan(esc.snapshot)
    stage = plan.stages[stage_no]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    step_id = session.execute(
        insert(EscalationStep)
        .values(
            group_id=group_id,
            round=round_,
            step_index=stage.step_index,
            repeat=repeat,
            ran_at=now,
            targets=[],
            notes=[],
        )
        .on_conflict_do_nothing(index_elements=["group_id", "round", "step_index", "repeat"])
        .returning(EscalationStep.id)
    ).scalar_one_or_none()
    if step_id is not None:
        _page(session, esc, stage, repeat, step_id, now)
    move = rules.next_move(plan, rules.Position(stage_no, repeat))
    esc.updated_at = now
    if move is None:
        esc.status, esc.exhausted_at, esc.next_step_at = "exhausted", now, None
        _event(
            session,
            esc,
            "escalation.exhausted",
            f"Escalation of alert group #{group_id} ran every step; nobody acknowledged",
            now,
        )
        return
    _schedule_stage(session, esc, plan, move, now)


def _resolve_targets(
    session: Session, targets: rules.Targets, now: datetime
) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(user id, username, via) for everyone a step reaches, each once, in the order named; and notes on what
    reached nobody (a deleted user, a schedule with nobody on call...)."""
    found: list[tuple[int, str, str]] = []
    notes: list[str] = []
    if targets.users:
        users = {
            username: user_id
            for user_id, username in session.execute(
                select(User.id, User.username).where(User.username.in_(targets.users), User.is_active.is_(True))
            )
        }
        for username in targets.users:
            if username in users:
                found.append((users[username], username, "user"))
            else:
                notes.append(f"user {username} does not exist or is deactivated")
    for schedule in targets.schedules:
        try:
            on_call = _on_call(session, schedule, now)
        except ReliaError as exc:
            notes.append(f"schedule {schedule}: {exc.detail}")
            continue
        if on_call is None:
            notes.append(f"schedule {schedule}: on-call schedules are not available here")
        elif not on_call:
            notes.append(f"schedule {schedule}: nobody is on call")
        for entry in on_call or []:
            found.append((int(entry.user_id), str(entry.username), f"schedule {schedule}"))
    for team_slug in targets.teams:
        members = session.execute(
            select(User.id, User.username)
            .join(TeamMembership, TeamMembership.user_id == User.id)
            .join(Team, Team.id == TeamMembership.team_id)
            .where(Team.slug == team_slug, User.is_active.is_(True))
            .order_by(User.username)
        ).all()
        if not members:
            notes.append(f"team {team_slug}: no active members")
        found += [(user_id, username, f"team {team_slug}") for user_id, username in members]
    seen: set[int] = set()
    reached = []
    for user_id, username, via in found:  # a person named twice (as a user and a team member) is paged once
        if user_id not in seen:
            seen.add(user_id)
            reached.append((user_id, username, via))
    return reached, notes


def _subject(session: Session, esc: Escalation) -> notify.Subject:
    service = _service_label(session, esc.service_id)
    return notify.Subject(title=esc.title or f"Alert group #{esc.group_id} on {service}", service=service)


def _page(session: Session, esc: Escalation, stage: rules.Stage, repeat: int, step_id: int, now: datetime) -> None:
    reached, notes = _resolve_targets(session, stage.targets, now)
    page = notify.PageRef(esc.group_id, esc.round, stage.step_index, repeat)
    plans = notify.plan_pages(session, [user_id for user_id, _, _ in reached])
    now_requests: list[notify.ContactRequest] = []
    for user_id, username, _via in reached:
        plan = plans.get(user_id)
        if plan is None or not plan.expansion.planned:
            notify.record_unreachable(
                session, page=page, user_id=user_id, username=username, note="no contact methods", now=now
            )
            notes.append(f"{username} has no contact methods")
            continue
        notes += [f"{username}: {note}" for note in plan.expansion.notes]
        for contact in plan.expansion.planned:
            if contact.delay == 0:
                now_requests.append(notify.ContactRequest(user_id, username, contact))
                continue
            timers.schedule(
                session,
                kind=RULE_TIMER,
                key=f"{_step_key(esc.group_id, esc.round, stage.step_index, repeat)}:{user_id}:{contact.key}",
                due_at=now + timedelta(seconds=contact.delay),
                payload={
                    "groupId": esc.group_id,
                    "round": esc.round,
                    "stepIndex": stage.step_index,
                    "repeat": repeat,
                    "userId": user_id,
                    "username": username,
                    "key": contact.key,
                    "contactMethod": contact.contact_method,
                    "delay": contact.delay,
                },
                now=now,
            )
    notify.send(session, page=page, subject=_subject(session, esc), requests=now_requests, now=now)
    if not reached:
        notes.append("nobody to notify at this step")
        log.warning("escalation.step_reached_nobody", group_id=esc.group_id, step=stage.step_index + 1)
    step = session.get(EscalationStep, step_id)
    assert step is not None
    step.targets = [{"userId": user_id, "username": username, "via": via} for user_id, username, via in reached]
    step.notes = notes


def run_rule(session: Session, payload: dict[str, Any], now: datetime) -> None:
    """A delayed personal rule came due (e.g. "SMS after 5 minutes"): notify, unless the group was acknowledged,
    snoozed or resolved since, or escalates in a newer round."""
    esc = _lock(session, int(payload["groupId"]))
    if esc is None or esc.status not in PAGING or esc.round != int(payload["round"]):
        return
    contact = PlannedContact(str(payload["key"]), str(payload["contactMethod"]), int(payload["delay"]))
    notify.send(
        session,
        page=notify.PageRef(esc.group_id, esc.round, int(payload["stepIndex"]), int(payload["repeat"])),
        subject=_subject(session, esc),
        requests=[notify.ContactRequest(int(payload["userId"]), str(payload["username"]), contact)],
        now=now,
    )


def ack_timed_out(session: Session, payload: dict[str, Any], now: datetime) -> None:
    esc = _lock(session, int(payload["groupId"]))
    if esc is None or esc.status != "acknowledged" or esc.round != int(payload["round"]):
        return
    acknowledged_at = esc.acknowledged_at
    firing = (ACK_TIMEOUT_TIMER, f"{esc.group_id}:{esc.round}")
    _new_round(session, esc, now, fresh_snapshot=False, firing=firing)
    _event(
        session,
        esc,
        "escalation.repaged",
        f"Alert group #{esc.group_id} acknowledged at {acknowledged_at:%H:%M} UTC but not resolved: paging again",
        now,
    )


def snooze_ended(session: Session, payload: dict[str, Any], now: datetime) -> None:
    esc = _lock(session, int(payload["groupId"]))
    if esc is None or esc.status != "snoozed" or esc.round != int(payload["round"]):
        return
    _new_round(session, esc, now, fresh_snapshot=False, firing=(SNOOZE_END_TIMER, f"{esc.group_id}:{esc.round}"))
    _event(session, esc, "escalation.restarted", f"Snooze of alert group #{esc.group_id} ended: escalating again", now)


# ---------------------------------------------------------------------------------------------- reading


def get_escalation(session: Session, group_id: int) -> Escalation:
    esc = session.get(Escalation, group_id)
    if esc is None:
        raise NotFound(f"Alert group #{group_id} has no escalation.")
    return esc


def escalation_out(session: Session, esc: Escalation) -> EscalationOut:
    steps = session.scalars(
        select(EscalationStep)
        .where(EscalationStep.group_id == esc.group_id)
        .order_by(EscalationStep.round, EscalationStep.ran_at, EscalationStep.id)
    ).all()
    team = session.get(Team, esc.team_id) if esc.team_id else None
    next_step = None
    if esc.status == "active" and esc.snapshot:
        next_step = rules.compile_plan(esc.snapshot).stages[esc.stage].step_index + 1
    return EscalationOut(
        group_id=esc.group_id,
        title=esc.title,
        service=_service_label(session, esc.service_id) if esc.service_id else None,
        team=team.slug if team else None,
        policy=esc.policy_name,
        policy_version=esc.policy_version,
        source=esc.source,
        source_detail=esc.source_detail,
        status=esc.status,
        round=esc.round,
        next_step=next_step,
        next_repeat=esc.repeat if next_step is not None else None,
        next_step_at=esc.next_step_at if next_step is not None else None,
        opened_at=esc.opened_at,
        acknowledged_at=esc.acknowledged_at,
        snoozed_until=esc.snoozed_until,
        resolved_at=esc.resolved_at,
        exhausted_at=esc.exhausted_at,
        snapshot=esc.snapshot,
        steps=[
            EscalationStepOut(
                step=step.step_index + 1,
                repeat=step.repeat,
                round=step.round,
                ran_at=step.ran_at,
                targets=[StepTargetOut(user=t["username"], via=t["via"]) for t in step.targets],
                notes=list(step.notes),
            )
            for step in steps
        ],
        notifications=notify.deliveries_for_group(session, esc.group_id),
    )


def list_escalations(
    session: Session, *, status: str | None = None, policy: str | None = None, limit: int = 100
) -> list[Escalation]:
    statement = select(Escalation).order_by(Escalation.opened_at.desc(), Escalation.group_id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(Escalation.status == status)
    if policy is not None:
        statement = statement.where(Escalation.policy_name == policy)
    return list(session.scalars(statement).all())


def check_conflicting_defaults(specs: dict[str, EscalationPolicySpec]) -> list[tuple[str, str, str]]:
    """For config files: (policy, path, message) where two policies of one team are both default, or two
    policies list one service. (Through the API the later one simply takes the flag or the service.)"""
    problems: list[tuple[str, str, str]] = []
    defaults: dict[str, str] = {}
    services: dict[str, str] = {}
    for name in sorted(specs):
        spec = specs[name]
        if spec.default:
            if spec.team in defaults:
                problems.append((name, "default", f"team {spec.team} already has default policy {defaults[spec.team]}"))
            else:
                defaults[spec.team] = name
        for index, slug in enumerate(spec.services):
            if slug in services:
                problems.append((name, f"services.{index}", f"service {slug} is already listed by {services[slug]}"))
            else:
                services[slug] = name
    return problems
