"""Policy use cases: budget policies, the release gate, overrides, action items, and what is in force per service.

Keyword-only functions taking a session, the actor and ``now``; the caller owns the transaction. Rights follow
the scope: members of a service's owning team (or of the team a policy is scoped to) change its policies,
administrators change organisation-wide ones; overrides are requested and decided by people with rights on the
service, and never decided by whoever requested them.

The worker's evaluation lives in ``relia.policy.evaluation`` and the velocity report in ``relia.policy.velocity``.
The blue-green deployments call ``check_gate`` (the one entry point of the gate); the paging domain reads
``active_pager_handoff``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Text, and_, cast, func, insert, or_, select
from sqlalchemy.orm import Session, aliased

from relia.catalog.models import Service, Team
from relia.catalog.service import check_version, get_service
from relia.core import audit, generations, timeline
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from relia.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from relia.policy import rules
from relia.policy.models import (
    BudgetPolicy,
    GateCheck,
    PagerHandoff,
    PolicyActionItem,
    PolicyState,
    ReleaseOverride,
    ReleaseRestriction,
)
from relia.policy.schemas import BudgetPolicySpec, ConditionSpec, GateCheckIn, OverrideCreate
from relia.slo import rules as slo_rules
from relia.slo.models import SLO, Objective, ObjectiveStatus

DEFAULT_POLICY_NAME = "default"
MAX_OVERRIDE = timedelta(days=7)
# Bumped by every transaction that changes what the release gate answers from, apart from SLOs and their
# budgets (``relia.slo.service.SLO_GENERATION``) and services (the catalog's): each policy evaluation, and
# each override approved or rejected. The API's gate cache (``relia.policy.gate``) is keyed by all three.
GATE_GENERATION = "policy.gate"

# The built-in policy, after Google's example error budget policy. A BudgetPolicy named "default" replaces it
# (`enabled: false` turns it off); deleting that policy brings this one back.
BUILTIN_DEFAULT: dict[str, Any] = {
    "description": "Built in, after Google's example error budget policy: a service that has exhausted the error "
    "budget of one of its SLOs is frozen for everything but P0 fixes, security fixes and rollbacks until it is back "
    "within its SLO (and has stayed there for an hour).",
    "scope": {"organisation": True},
    "conditions": [{"budgetExhausted": {}}],
    "actions": {"freeze": {}},
    "exemptions": list(rules.DEFAULT_EXEMPTIONS),
    "cooldown": "1h",
}


def builtin_default() -> BudgetPolicySpec:
    return BudgetPolicySpec.model_validate(BUILTIN_DEFAULT)


# -------------------------------------------------------------------------------------------- policies


def get_policy(session: Session, name: str) -> BudgetPolicy:
    policy = session.scalars(select(BudgetPolicy).where(BudgetPolicy.name == name)).one_or_none()
    if policy is None:
        raise NotFound(f"There is no budget policy {name!r}.")
    return policy


def list_policies(session: Session) -> list[BudgetPolicy]:
    return list(session.scalars(select(BudgetPolicy).order_by(BudgetPolicy.name)))


def normalised(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec in the one form stored and compared: its SLO filter and exemptions are sets, so they are sorted."""
    return {**spec, "slos": sorted(spec.get("slos", [])), "exemptions": sorted(spec.get("exemptions", []))}


def policy_spec(policy: BudgetPolicy) -> dict[str, Any]:
    return normalised(BudgetPolicySpec.model_validate(policy.spec).model_dump(mode="json"))


def effective_policies(session: Session) -> list[tuple[str, BudgetPolicySpec, BudgetPolicy | None]]:
    """Every policy that exists, by name: the stored ones, and the built-in default unless one replaces it.
    Disabled policies are included (callers skip them where they must)."""
    stored = list_policies(session)
    found = [(row.name, BudgetPolicySpec.model_validate(row.spec), row) for row in stored]
    if not any(row.name == DEFAULT_POLICY_NAME for row in stored):
        found.append((DEFAULT_POLICY_NAME, builtin_default(), None))
    return sorted(found, key=lambda item: item[0])


def compile_policy(name: str, spec: BudgetPolicySpec) -> rules.CompiledPolicy:
    return rules.CompiledPolicy(
        name=name,
        conditions=tuple(_condition(item) for item in spec.conditions),
        match_all=spec.match == "all",
        slos=frozenset(spec.slos) if spec.slos else None,
        cooldown=timedelta(minutes=slo_rules.parse_duration(spec.cooldown)),
        margin=spec.clear_margin,
    )


def _condition(item: ConditionSpec) -> rules.Condition:
    if item.budget_remaining is not None:
        return rules.BudgetBelow(item.budget_remaining.below)
    if item.burn_rate is not None:
        return rules.BurnAbove(slo_rules.parse_duration(item.burn_rate.window), item.burn_rate.above)
    if item.budget_exhausted is not None:
        within = item.budget_exhausted.within
        return rules.Exhausted(slo_rules.parse_duration(within) if within else None)
    return rules.PageAlert()


def policy_summary(spec: BudgetPolicySpec) -> str:
    """The policy in one sentence: "When budget exhausted: freeze releases. Exempt: p0-fix, rollback, security."."""
    joiner = " and " if spec.match == "all" else " or "
    when = joiner.join(rules.condition_text(_condition(item)) for item in spec.conditions)
    actions = spec.actions
    doing: list[str] = []
    if actions.freeze is not None:
        reach = {"none": "", "direct": " and its direct dependents", "transitive": " and everything depending on it"}
        doing.append("freeze releases" + reach[actions.freeze.dependents])
    if actions.require_approval is not None:
        doing.append("require an approved override for releases")
    if actions.warn is not None:
        doing.append("warn on releases")
    if actions.hand_pager is not None:
        to = actions.hand_pager.to_team or "the owning team"
        doing.append(f"hand the pager from {actions.hand_pager.from_team} to {to}")
    if actions.notify:
        doing.append(f"notify {len(actions.notify)} webhook{'s' if len(actions.notify) > 1 else ''}")
    if actions.action_item is not None:
        doing.append("open an action item")
    exempt = ", ".join(sorted(spec.exemptions)) or "nothing"
    return f"When {when}: {', '.join(doing)}. Exempt: {exempt}. Undone after {spec.cooldown} without the conditions."


def _scope_ids(session: Session, spec: BudgetPolicySpec) -> tuple[Service | None, Team | None]:
    scope = spec.scope
    if scope.service is not None:
        service = session.scalars(select(Service).where(Service.slug == scope.service)).one_or_none()
        if service is None:
            raise InvalidInput(
                f"There is no service {scope.service!r}.",
                errors=[FieldError("scope.service", f"there is no service {scope.service!r}")],
            )
        return service, None
    if scope.team is not None:
        team = session.scalars(select(Team).where(Team.slug == scope.team)).one_or_none()
        if team is None:
            raise InvalidInput(
                f"There is no team {scope.team!r}.",
                errors=[FieldError("scope.team", f"there is no team {scope.team!r}")],
            )
        return None, team
    return None, None


def _require_scope_rights(actor: Principal, service: Service | None, team: Team | None, what: str) -> None:
    if service is not None:
        actor.require_team(service.owner_team_id, what)
    elif team is not None:
        actor.require_team(team.id, what)
    else:
        actor.require_write()
        if not actor.acts_as_admin:
            raise Forbidden(f"Only an administrator may change {what}: it applies to the whole organisation.")


def _check_references(session: Session, spec: BudgetPolicySpec, service: Service | None, team: Team | None) -> None:
    problems: list[FieldError] = []
    pager = spec.actions.hand_pager
    if pager is not None:
        wanted = [("actions.handPager.fromTeam", pager.from_team)]
        if pager.to_team is not None:
            wanted.append(("actions.handPager.toTeam", pager.to_team))
        known = set(session.scalars(select(Team.slug).where(Team.slug.in_([slug for _, slug in wanted]))))
        problems += [FieldError(path, f"there is no team {slug!r}") for path, slug in wanted if slug not in known]
    if spec.slos:
        rows = session.execute(
            select(SLO.name, Service.id, Service.owner_team_id)
            .join(Service, SLO.service_id == Service.id)
            .where(SLO.name.in_(spec.slos))
        ).all()
        found = {name: (service_id, team_id) for name, service_id, team_id in rows}
        for index, name in enumerate(spec.slos):
            if name not in found:
                problems.append(FieldError(f"slos.{index}", f"there is no SLO {name!r}"))
            elif service is not None and found[name][0] != service.id:
                problems.append(FieldError(f"slos.{index}", f"SLO {name!r} is not one of {service.slug}'s"))
            elif team is not None and found[name][1] != team.id:
                problems.append(FieldError(f"slos.{index}", f"SLO {name!r} is not of a service {team.slug} owns"))
    if problems:
        raise InvalidInput(
            "The policy refers to something that does not exist or is out of its scope.", errors=problems
        )


def upsert_policy(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: BudgetPolicySpec,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> tuple[BudgetPolicy, bool]:
    """Create or replace a policy. Returns (policy, created). A policy named ``default`` replaces the built-in
    one and must apply to the whole organisation (so only administrators may write it)."""
    if name == DEFAULT_POLICY_NAME and spec.scope.kind != "organisation":
        raise InvalidInput(
            "The policy named default replaces the built-in organisation-wide policy; its scope must be the "
            "organisation.",
            errors=[FieldError("scope", "must be organisation: true for the policy named default")],
        )
    service, team = _scope_ids(session, spec)
    _require_scope_rights(actor, service, team, f"budget policy {name!r}")
    _check_references(session, spec, service, team)
    after = normalised(spec.model_dump(mode="json"))
    policy = session.scalars(
        select(BudgetPolicy).where(BudgetPolicy.name == name).with_for_update(of=BudgetPolicy, key_share=True)
    ).one_or_none()
    if policy is None:
        if if_match is not None:
            raise NotFound(f"There is no budget policy {name!r} to update.")
        policy = BudgetPolicy(
            name=name,
            scope_service_id=service.id if service else None,
            scope_team_id=team.id if team else None,
            enabled=spec.enabled,
            spec=after,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(policy)
        session.flush()
        audit.record(
            session, actor=actor, action="create", kind="BudgetPolicy", key=name, before=None, after=after, now=now
        )
        return policy, True
    check_version("BudgetPolicy", name, policy.version, if_match, if_match=True)
    old_service = session.get(Service, policy.scope_service_id) if policy.scope_service_id else None
    old_team = session.get(Team, policy.scope_team_id) if policy.scope_team_id else None
    # Moving a policy away from a scope needs rights over the old scope too.
    _require_scope_rights(actor, old_service, old_team, f"budget policy {name!r}")
    before = policy_spec(policy)
    if config_managed is not None:
        policy.config_managed = config_managed
    if before != after:
        policy.scope_service_id = service.id if service else None
        policy.scope_team_id = team.id if team else None
        policy.enabled, policy.spec, policy.updated_at = spec.enabled, after, now
        session.flush()
        audit.record(
            session, actor=actor, action="update", kind="BudgetPolicy", key=name, before=before, after=after, now=now
        )
    return policy, False


def delete_policy(session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None) -> None:
    """Delete a stored policy. Deleting the one named default brings back the built-in default."""
    if name == DEFAULT_POLICY_NAME and session.scalar(select(BudgetPolicy.id).where(BudgetPolicy.name == name)) is None:
        raise NotFound(
            "The built-in default cannot be deleted; turn it off with a policy named default that has enabled: false."
        )
    policy = get_policy(session, name)
    service = session.get(Service, policy.scope_service_id) if policy.scope_service_id else None
    team = session.get(Team, policy.scope_team_id) if policy.scope_team_id else None
    _require_scope_rights(actor, service, team, f"budget policy {name!r}")
    check_version("BudgetPolicy", name, policy.version, if_match, if_match=True)
    before = policy_spec(policy)
    session.delete(policy)
    session.flush()
    audit.record(
        session, actor=actor, action="delete", kind="BudgetPolicy", key=name, before=before, after=None, now=now
    )


def policies_for_service(session: Session, service: Service) -> list[str]:
    """The enabled policies whose scope includes ``service``."""
    names = []
    for name, spec, _ in effective_policies(session):
        if not spec.enabled:
            continue
        scope = spec.scope
        if (
            scope.organisation
            or scope.service == service.slug
            or (scope.team is not None and scope.team == service.owner_team.slug)
        ):
            names.append(name)
    return names


# ------------------------------------------------------------------------------------------------ states


def policy_states(
    session: Session, *, policy: str | None = None, service_id: int | None = None
) -> list[tuple[PolicyState, str]]:
    statement = (
        select(PolicyState, Service.slug)
        .join(Service, PolicyState.service_id == Service.id)
        .order_by(PolicyState.policy_name, Service.slug)
    )
    if policy is not None:
        statement = statement.where(PolicyState.policy_name == policy)
    if service_id is not None:
        statement = statement.where(PolicyState.service_id == service_id)
    return [(state, slug) for state, slug in session.execute(statement).all()]


def state_out(state: PolicyState, service_slug: str) -> dict[str, Any]:
    return {
        "policy": state.policy_name,
        "service": service_slug,
        "phase": state.phase,
        "triggered_at": state.triggered_at,
        "phase_since": state.phase_since,
        "cooling_until": state.cooling_until,
        "matched": list(state.matched or []),
    }


# ------------------------------------------------------------------------------------ restrictions, pager

_CAUSE = aliased(Service, name="cause")


def list_restrictions(
    session: Session,
    *,
    service: str | None = None,
    active: bool | None = True,
    kind: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    statement = (
        select(ReleaseRestriction, Service.slug, _CAUSE.slug)
        .join(Service, ReleaseRestriction.service_id == Service.id)
        .join(_CAUSE, ReleaseRestriction.cause_service_id == _CAUSE.id)
        .order_by(ReleaseRestriction.started_at.desc(), ReleaseRestriction.id.desc())
        .limit(limit)
    )
    if service is not None:
        statement = statement.where(Service.slug == service)
    if active is True:
        statement = statement.where(ReleaseRestriction.ended_at.is_(None))
    elif active is False:
        statement = statement.where(ReleaseRestriction.ended_at.is_not(None))
    if kind is not None:
        statement = statement.where(ReleaseRestriction.kind == kind)
    return [restriction_out(row, slug, cause) for row, slug, cause in session.execute(statement).all()]


def restriction_out(row: ReleaseRestriction, service_slug: str, cause_slug: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "service": service_slug,
        "kind": row.kind,
        "policy": row.policy_name,
        "cause_service": cause_slug,
        "exemptions": list(row.exemptions or []),
        "summary": row.summary,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
    }


_FROM_TEAM = aliased(Team, name="from_team")
_TO_TEAM = aliased(Team, name="to_team")


def list_handoffs(
    session: Session, *, service: str | None = None, active: bool | None = True, limit: int = 500
) -> list[dict[str, Any]]:
    statement = (
        select(PagerHandoff, Service.slug, _FROM_TEAM.slug, _TO_TEAM.slug)
        .join(Service, PagerHandoff.service_id == Service.id)
        .join(_FROM_TEAM, PagerHandoff.from_team_id == _FROM_TEAM.id)
        .join(_TO_TEAM, PagerHandoff.to_team_id == _TO_TEAM.id)
        .order_by(PagerHandoff.started_at.desc(), PagerHandoff.id.desc())
        .limit(limit)
    )
    if service is not None:
        statement = statement.where(Service.slug == service)
    if active is True:
        statement = statement.where(PagerHandoff.ended_at.is_(None))
    elif active is False:
        statement = statement.where(PagerHandoff.ended_at.is_not(None))
    return [
        {
            "id": row.id,
            "service": slug,
            "policy": row.policy_name,
            "from_team": from_slug,
            "to_team": to_slug,
            "reason": row.reason,
            "started_at": row.started_at,
            "ended_at": row.ended_at,
        }
        for row, slug, from_slug, to_slug in session.execute(statement).all()
    ]


def active_pager_handoff(session: Session, service_id: int) -> PagerHandoff | None:
    """For the paging domain: the pager handoff in force for a service (its latest, when several policies
    hand it over), or None. ``to_team_id`` is the team whose escalation should be paged instead of
    ``from_team_id``'s."""
    return session.scalars(
        select(PagerHandoff)
        .where(PagerHandoff.service_id == service_id, PagerHandoff.ended_at.is_(None))
        .order_by(PagerHandoff.started_at.desc(), PagerHandoff.id.desc())
        .limit(1)
    ).first()


# -------------------------------------------------------------------------------------------------- gate


def _service_by_slug(session: Session, slug: str, path: str = "service") -> tuple[int, str, int]:
    row = session.execute(
        select(Service.id, Service.slug, Service.owner_team_id).where(Service.slug == slug)
    ).one_or_none()
    if row is None:
        raise unknown_service(slug, path)
    return row[0], row[1], row[2]


def _validated_check(service: str, version: str, change_type: str, phase: str) -> GateCheckIn:
    try:
        return GateCheckIn.model_validate(
            {"service": service, "version": version, "changeType": change_type, "phase": phase}
        )
    except ValidationError as exc:
        raise InvalidInput(
            "The gate check is not valid.",
            errors=[
                FieldError(
                    ".".join(str(part) for part in error["loc"]), str(error["msg"]).removeprefix("Value error, ")
                )
                for error in exc.errors()
            ],
        ) from exc


def _live_budgets(session: Session, objective_ids: set[int] | None) -> dict[int, rules.SloBudget]:
    """The budgets of these objectives (None: of all) as the SLO evaluator last published them."""
    if objective_ids is not None and not objective_ids:
        return {}
    statement = (
        select(Objective.id, SLO.name, Objective.key, ObjectiveStatus.budget_remaining)
        .join(SLO, Objective.slo_id == SLO.id)
        .outerjoin(ObjectiveStatus, ObjectiveStatus.objective_id == Objective.id)
    )
    if objective_ids is not None:
        statement = statement.where(Objective.id.in_(objective_ids))
    rows = session.execute(statement).all()
    return {objective_id: rules.SloBudget(slo, key, remaining) for objective_id, slo, key, remaining in rows}


def _least_budgets(session: Session, service_ids: Sequence[int] | None) -> dict[int, rules.SloBudget]:
    """Per service (None: every service), the objective with the least budget left."""
    statement = (
        select(SLO.service_id, SLO.name, Objective.key, ObjectiveStatus.budget_remaining)
        .join(Objective, Objective.slo_id == SLO.id)
        .join(ObjectiveStatus, ObjectiveStatus.objective_id == Objective.id)
        .where(ObjectiveStatus.budget_remaining.is_not(None))
        .order_by(SLO.service_id, ObjectiveStatus.budget_remaining.desc(), SLO.name.desc(), Objective.key.desc())
    )
    if service_ids is not None:
        statement = statement.where(SLO.service_id.in_(service_ids))
    # Ordered so that each service's last row is its least budget (ties: the first SLO by name).
    return {service_id: rules.SloBudget(name, key, left) for service_id, name, key, left in session.execute(statement)}


@dataclass(frozen=True)
class _CauseState:
    matched: list[dict[str, Any]]
    phase: str
    cooling_until: datetime | None


def _restrictions_in_force(session: Session, service_ids: Sequence[int] | None) -> dict[int, list[rules.Restriction]]:
    """The restrictions on these services' releases now (None: on every service's), by service id, each with
    the live budgets of the objectives that triggered it (least first)."""
    statement = (
        select(
            ReleaseRestriction.service_id,
            ReleaseRestriction.kind,
            ReleaseRestriction.policy_name,
            ReleaseRestriction.cause_service_id,
            _CAUSE.slug,
            # As text: the same few lists on every row, each decoded once below.
            cast(ReleaseRestriction.exemptions, Text),
        )
        .join(_CAUSE, ReleaseRestriction.cause_service_id == _CAUSE.id)
        .where(ReleaseRestriction.ended_at.is_(None))
    )
    if service_ids is not None:
        statement = statement.where(ReleaseRestriction.service_id.in_(service_ids))
    rows = session.execute(statement).all()
    if not rows:
        return {}
    # The gate's hot path: plain rows of the causing services' states (a service frozen through its
    # dependencies has dozens of causes), filtered here rather than by a long OR of pairs in SQL.
    causes = {(policy, cause_id) for _, _, policy, cause_id, _, _ in rows}
    state_rows = select(
        PolicyState.policy_name,
        PolicyState.service_id,
        PolicyState.matched,
        PolicyState.phase,
        PolicyState.cooling_until,
    )
    if service_ids is not None:
        state_rows = state_rows.where(
            PolicyState.service_id.in_(sorted({cause_id for _, cause_id in causes})),
            PolicyState.policy_name.in_(sorted({name for name, _ in causes})),
        )
    states = {
        (name, cause_id): _CauseState(matched or [], phase, cooling_until)
        for name, cause_id, matched, phase, cooling_until in session.execute(state_rows)
        if (name, cause_id) in causes
    }
    wanted = {int(item["objectiveId"]) for state in states.values() for item in state.matched if "objectiveId" in item}
    budgets = _live_budgets(session, wanted if service_ids is not None else None)
    # One policy engaged for one service restricts every service frozen through it alike: one Restriction
    # each, shared by all of them (a deep dependency graph has tens of thousands of rows, and few of these).
    exemption_sets: dict[str | None, frozenset[str]] = {}
    shared: dict[tuple[str, str, int, str | None], rules.Restriction] = {}
    found: dict[int, list[rules.Restriction]] = {}
    for service_id, kind, policy, cause_id, cause_slug, exemptions in rows:
        restriction = shared.get((kind, policy, cause_id, exemptions))
        if restriction is None:
            if exemptions not in exemption_sets:
                exemption_sets[exemptions] = frozenset(json.loads(exemptions) if exemptions else ())
            state = states.get((policy, cause_id))
            matched = [
                budgets[int(item["objectiveId"])]
                for item in (state.matched if state else [])
                if int(item.get("objectiveId", 0)) in budgets
            ]
            matched.sort(key=lambda item: (item.budget_remaining is None, item.budget_remaining or 0.0, item.label))
            restriction = shared[(kind, policy, cause_id, exemptions)] = rules.Restriction(
                kind=kind,
                policy=policy,
                cause_service=cause_slug,
                exemptions=exemption_sets[exemptions],
                slos=tuple(matched),
                lifts_at=state.cooling_until if state is not None and state.phase == rules.Phase.cooling else None,
            )
        found.setdefault(service_id, []).append(restriction)
    return found


def _override_grants(
    session: Session, service_ids: Sequence[int] | None, now: datetime
) -> dict[int, dict[str, tuple[rules.OverrideGrant, ...]]]:
    """Per service (None: every service), the approved overrides not yet expired, by version, the latest
    expiry first."""
    statement = (
        select(
            ReleaseOverride.service_id,
            ReleaseOverride.id,
            ReleaseOverride.version,
            ReleaseOverride.expires_at,
            ReleaseOverride.decided_by,
            ReleaseOverride.reason,
        )
        .where(ReleaseOverride.status == "approved", ReleaseOverride.expires_at > now)
        .order_by(ReleaseOverride.expires_at.desc(), ReleaseOverride.id.desc())
    )
    if service_ids is not None:
        statement = statement.where(ReleaseOverride.service_id.in_(service_ids))
    grants: dict[int, dict[str, list[rules.OverrideGrant]]] = {}
    for row in session.execute(statement):
        grants.setdefault(row.service_id, {}).setdefault(row.version, []).append(
            rules.OverrideGrant(row.id, row.expires_at, row.decided_by or "", row.reason)
        )
    return {
        service_id: {version: tuple(found) for version, found in by_version.items()}
        for service_id, by_version in grants.items()
    }


@dataclass(frozen=True)
class GateInputs:
    """Everything the gate answers from for one service, read in one go. The API keeps every service's for as
    long as ``GATE_GENERATION``, the SLOs' and the services' generations stand (``relia.policy.gate``)."""

    service_id: int
    slug: str
    restrictions: tuple[rules.Restriction, ...]
    grants: Mapping[str, tuple[rules.OverrideGrant, ...]]  # approved overrides by version, unexpired when read
    lowest: rules.SloBudget | None  # the objective with the least budget left

    @cached_property
    def grouped(self) -> tuple[rules.PolicyRestrictions, ...]:
        return tuple(rules.group_restrictions(self.restrictions, self.slug))


def gate_inputs(session: Session, slug: str, now: datetime) -> GateInputs:
    """Raises NotFound (field ``service``) for an unknown service."""
    service_id, slug, _ = _service_by_slug(session, slug)
    return _gate_inputs(session, {service_id: slug}, now)[slug]


def all_gate_inputs(session: Session, now: datetime) -> dict[str, GateInputs]:
    """Every service's ``GateInputs`` by slug, in a handful of queries."""
    services: dict[int, str] = {
        service_id: slug for service_id, slug in session.execute(select(Service.id, Service.slug))
    }
    return _gate_inputs(session, services, now, every=True)


def _gate_inputs(
    session: Session, services: dict[int, str], now: datetime, *, every: bool = False
) -> dict[str, GateInputs]:
    ids = None if every else sorted(services)
    restrictions = _restrictions_in_force(session, ids)
    grants = _override_grants(session, ids, now)
    lowest = _least_budgets(session, ids)
    return {
        slug: GateInputs(
            service_id=service_id,
            slug=slug,
            restrictions=tuple(restrictions.get(service_id, ())),
            grants=grants.get(service_id, {}),
            lowest=lowest.get(service_id),
        )
        for service_id, slug in services.items()
    }


def unknown_service(slug: str, path: str = "service") -> NotFound:
    return NotFound(f"There is no service {slug!r}.", errors=[FieldError(path, f"there is no service {slug!r}")])


def decide_from(inputs: GateInputs, request: GateCheckIn, now: datetime) -> rules.GateDecision:
    """The gate's answer from what was read: pure, so the API can answer from its cache."""
    grant = next((grant for grant in inputs.grants.get(request.version, ()) if grant.expires_at > now), None)
    return rules.decide(
        service=inputs.slug,
        version=request.version,
        change_type=request.change_type,
        phase=request.phase,
        restrictions=inputs.restrictions,
        override=grant if inputs.restrictions else None,
        lowest=None if inputs.restrictions else inputs.lowest,
        grouped=inputs.grouped,
    )


def check_gate(
    session: Session,
    *,
    actor: Principal,
    service: str,
    version: str,
    change_type: str,
    now: datetime,
    phase: str = "pre_deploy",
) -> rules.GateDecision:
    """The release gate: may this version of this service ship now? Answers allow, warn or block with the
    reasons, and records the check (who asked, what was answered) in the caller's transaction.

    The one entry point for people and the blue-green deployments (``phase`` is ``pre_deploy`` before deploying
    and ``pre_switch`` before moving traffic). Any authenticated caller may ask. Raises InvalidInput for a
    malformed version, change type or phase, NotFound for an unknown service. (The API route decides in a read
    transaction and records in a short write of its own: ``decide_gate`` then ``record_gate_check``.)"""
    decision, service_id = decide_gate(
        session, service=service, version=version, change_type=change_type, now=now, phase=phase
    )
    return record_gate_check(session, actor=actor, decision=decision, service_id=service_id, now=now)


def decide_gate(
    session: Session, *, service: str, version: str, change_type: str, now: datetime, phase: str = "pre_deploy"
) -> tuple[rules.GateDecision, int]:
    """The gate's answer and the service's id, reading only."""
    request = _validated_check(service, version, change_type, phase)
    inputs = gate_inputs(session, request.service, now)
    return decide_from(inputs, request, now), inputs.service_id


def record_gate_check(
    session: Session, *, actor: Principal, decision: rules.GateDecision, service_id: int, now: datetime
) -> rules.GateDecision:
    """Record who asked the gate and what it answered; returns the decision with the record's id."""
    row = gate_check_row(actor=actor, decision=decision, service_id=service_id, now=now)
    check_id = session.execute(insert(GateCheck).returning(GateCheck.id), row).scalar_one()
    return replace(decision, check_id=check_id, checked_at=now)


def gate_check_row(*, actor: Principal, decision: rules.GateDecision, service_id: int, now: datetime) -> dict[str, Any]:
    """The ``gate_checks`` row recording one check (the API inserts them a batch at a time)."""
    return {
        "at": now,
        "service_id": service_id,
        "version": decision.version,
        "change_type": decision.change_type,
        "phase": decision.phase,
        "decision": decision.decision,
        "reasons": [reason_json(reason) for reason in decision.reasons],
        "override_id": decision.override_id,
        "requested_by": actor.name,
        "requested_by_user_id": actor.user_id,
        "via": str(actor.via),
        "request_id": actor.request_id,
    }


def reason_json(reason: rules.GateReason) -> dict[str, Any]:
    body = {
        "code": reason.code,
        "message": reason.message,
        "slo": reason.slo,
        "objective": reason.objective,
        "budgetRemaining": reason.budget_remaining,
        "policy": reason.policy,
        "service": reason.service,
        "override": reason.override,
        "services": list(reason.services) or None,
    }
    return {key: value for key, value in body.items() if value is not None}


def decision_json(decision: rules.GateDecision) -> dict[str, Any]:
    return {
        "decision": decision.decision,
        "reasons": [reason_json(reason) for reason in decision.reasons],
        "service": decision.service,
        "version": decision.version,
        "changeType": decision.change_type,
        "phase": decision.phase,
        "exempt": decision.exempt,
        "override": decision.override_id,
        "checkId": decision.check_id,
        "checkedAt": decision.checked_at.isoformat() if decision.checked_at else None,
    }


def list_checks(
    session: Session,
    *,
    service: str | None = None,
    decision: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[dict[str, Any]], str | None]:
    statement = (
        select(GateCheck, Service.slug).join(Service, GateCheck.service_id == Service.id).order_by(GateCheck.id.desc())
    )
    before = decode_cursor(cursor)
    if isinstance(before, int) and not isinstance(before, bool):
        statement = statement.where(GateCheck.id < before)
    if service is not None:
        statement = statement.where(Service.slug == service)
    if decision is not None:
        statement = statement.where(GateCheck.decision == decision)
    rows = session.execute(statement.limit(limit + 1)).all()
    items = [
        {
            "id": row.id,
            "at": row.at,
            "service": slug,
            "version": row.version,
            "change_type": row.change_type,
            "phase": row.phase,
            "decision": row.decision,
            "reasons": list(row.reasons or []),
            "override": row.override_id,
            "requested_by": row.requested_by,
            "via": row.via,
        }
        for row, slug in rows[:limit]
    ]
    return items, encode_cursor(items[-1]["id"]) if len(rows) > limit and items else None


# --------------------------------------------------------------------------------------------- overrides


def override_status(row: ReleaseOverride, now: datetime) -> str:
    """The stored status, or expired once the time box has passed (the worker's tick records that too)."""
    if row.status in ("pending", "approved") and row.expires_at <= now:
        return "expired"
    return row.status


def override_out(row: ReleaseOverride, service_slug: str, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "service": service_slug,
        "version": row.version,
        "reason": row.reason,
        "status": override_status(row, now),
        "requested_by": row.requested_by,
        "requested_at": row.requested_at,
        "expires_at": row.expires_at,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
        "decision_note": row.decision_note,
    }


def list_overrides(
    session: Session,
    *,
    now: datetime,
    service: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    statement = (
        select(ReleaseOverride, Service.slug)
        .join(Service, ReleaseOverride.service_id == Service.id)
        .order_by(ReleaseOverride.id.desc())
    )
    if service is not None:
        statement = statement.where(Service.slug == service)
    if status in ("pending", "approved"):
        statement = statement.where(ReleaseOverride.status == status, ReleaseOverride.expires_at > now)
    elif status == "expired":
        statement = statement.where(
            or_(
                ReleaseOverride.status == "expired",
                and_(ReleaseOverride.status.in_(["pending", "approved"]), ReleaseOverride.expires_at <= now),
            )
        )
    elif status is not None:
        statement = statement.where(ReleaseOverride.status == status)
    rows = session.execute(statement.limit(limit)).all()
    return [override_out(row, slug, now) for row, slug in rows]


def get_override(session: Session, override_id: int, *, for_update: bool = False) -> tuple[ReleaseOverride, Service]:
    statement = select(ReleaseOverride).where(ReleaseOverride.id == override_id)
    if for_update:
        statement = statement.with_for_update(of=ReleaseOverride, key_share=True)
    row = session.scalars(statement).one_or_none()
    if row is None:
        raise NotFound(f"There is no override {override_id}.")
    service = session.get(Service, row.service_id)
    assert service is not None
    return row, service


def _override_audit(row: ReleaseOverride, slug: str) -> dict[str, Any]:
    return {
        "service": slug,
        "version": row.version,
        "reason": row.reason,
        "status": row.status,
        "expiresAt": row.expires_at.isoformat(),
        "decidedBy": row.decided_by,
        "note": row.decision_note,
    }


def request_override(
    session: Session, *, actor: Principal, data: OverrideCreate, now: datetime
) -> tuple[ReleaseOverride, str]:
    """Ask for one version of a service to pass its freezes and required approvals for a while. It waits for
    someone else with rights on the service to approve it."""
    service_id, slug, owner_team_id = _service_by_slug(session, data.service)
    actor.require_team(owner_team_id, f"overrides for service {slug!r}")
    duration = timedelta(minutes=slo_rules.parse_duration(data.duration))
    if duration > MAX_OVERRIDE:
        raise InvalidInput("An override lasts at most 7 days.", errors=[FieldError("duration", "at most 7d (168h)")])
    row = ReleaseOverride(
        service_id=service_id,
        version=data.version,
        reason=data.reason,
        status="pending",
        requested_by=actor.name,
        requested_by_user_id=actor.user_id,
        requested_at=now,
        expires_at=now + duration,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="request",
        kind="ReleaseOverride",
        key=f"{slug}/{row.id}",
        before=None,
        after=_override_audit(row, slug),
        now=now,
    )
    timeline.append(
        session,
        type="policy.override.requested",
        at=now,
        service_id=service_id,
        actor=actor.name,
        summary=f"{actor.name} asked to release {slug} {data.version} past its budget policies until "
        f"{row.expires_at:%Y-%m-%d %H:%M} UTC: {data.reason}",
        data={"override": row.id, "version": data.version, "reason": data.reason},
    )
    return row, slug


def _same_person(actor: Principal, row: ReleaseOverride) -> bool:
    if actor.user_id is not None and row.requested_by_user_id is not None:
        return actor.user_id == row.requested_by_user_id
    return actor.name == row.requested_by


def decide_override(
    session: Session, *, actor: Principal, override_id: int, approve: bool, note: str, now: datetime
) -> tuple[ReleaseOverride, str]:
    """Approve or reject a pending override: someone with rights on the service (its owning team, or an
    administrator) who is not the requester."""
    row, service = get_override(session, override_id, for_update=True)
    actor.require_team(service.owner_team_id, f"overrides for service {service.slug!r}")
    if _same_person(actor, row):
        raise Forbidden("An override needs a second person: whoever requested it may not approve or reject it.")
    status = override_status(row, now)
    if status != "pending":
        raise Conflict(f"Override {override_id} is {status}; only a pending override can be decided.")
    before = _override_audit(row, service.slug)
    row.status = "approved" if approve else "rejected"
    row.decided_by, row.decided_by_user_id, row.decided_at = actor.name, actor.user_id, now
    row.decision_note = note or None
    session.flush()
    generations.bump(session, GATE_GENERATION)
    audit.record(
        session,
        actor=actor,
        action="approve" if approve else "reject",
        kind="ReleaseOverride",
        key=f"{service.slug}/{row.id}",
        before=before,
        after=_override_audit(row, service.slug),
        now=now,
    )
    verb = "approved" if approve else "rejected"
    summary = f"{actor.name} {verb} override #{row.id} for {service.slug} {row.version}"
    if approve:
        summary += f" (usable until {row.expires_at:%Y-%m-%d %H:%M} UTC)"
    timeline.append(
        session,
        type=f"policy.override.{verb}",
        at=now,
        service_id=service.id,
        actor=actor.name,
        summary=summary + (f": {note}" if note else ""),
        data={"override": row.id, "version": row.version, "requestedBy": row.requested_by, "note": note or None},
    )
    return row, service.slug


def expire_overrides(session: Session, *, actor: Principal, now: datetime) -> int:
    """Record the end of every override whose time box has passed (pending or approved)."""
    rows = session.execute(
        select(ReleaseOverride, Service.slug)
        .join(Service, ReleaseOverride.service_id == Service.id)
        .where(ReleaseOverride.status.in_(["pending", "approved"]), ReleaseOverride.expires_at <= now)
        .with_for_update(of=ReleaseOverride, skip_locked=True)
    ).all()
    for row, slug in rows:
        before = _override_audit(row, slug)
        was = row.status
        row.status = "expired"
        audit.record(
            session,
            actor=actor,
            action="expire",
            kind="ReleaseOverride",
            key=f"{slug}/{row.id}",
            before=before,
            after=_override_audit(row, slug),
            now=now,
        )
        timeline.append(
            session,
            type="policy.override.expired",
            at=now,
            service_id=row.service_id,
            actor=actor.name,
            summary=f"Override #{row.id} for {slug} {row.version} expired"
            + (" before anyone decided on it" if was == "pending" else ""),
            data={"override": row.id, "version": row.version, "was": was},
        )
    return len(rows)


# ------------------------------------------------------------------------------------------ action items


def action_item_out(row: PolicyActionItem, service_slug: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "service": service_slug,
        "policy": row.policy_name,
        "status": row.status,
        "detail": row.detail,
        "created_at": row.created_at,
        "closed_at": row.closed_at,
        "closed_by": row.closed_by,
    }


def list_action_items(
    session: Session, *, service: str | None = None, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    statement = (
        select(PolicyActionItem, Service.slug)
        .join(Service, PolicyActionItem.service_id == Service.id)
        .order_by(PolicyActionItem.id.desc())
        .limit(limit)
    )
    if service is not None:
        statement = statement.where(Service.slug == service)
    if status is not None:
        statement = statement.where(PolicyActionItem.status == status)
    return [action_item_out(row, slug) for row, slug in session.execute(statement).all()]


def close_action_item(
    session: Session, *, actor: Principal, item_id: int, now: datetime
) -> tuple[PolicyActionItem, str]:
    row = session.scalars(
        select(PolicyActionItem)
        .where(PolicyActionItem.id == item_id)
        .with_for_update(of=PolicyActionItem, key_share=True)
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no action item {item_id}.")
    service = session.get(Service, row.service_id)
    assert service is not None
    actor.require_team(service.owner_team_id, f"action items of service {service.slug!r}")
    if row.status == "done":
        raise Conflict(f"Action item {item_id} is done already (closed by {row.closed_by}).")
    row.status, row.closed_at, row.closed_by = "done", now, actor.name
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="close",
        kind="PolicyActionItem",
        key=f"{service.slug}/{row.id}",
        before={"title": row.title, "status": "open"},
        after={"title": row.title, "status": "done"},
        now=now,
    )
    timeline.append(
        session,
        type="policy.action_item.closed",
        at=now,
        service_id=service.id,
        actor=actor.name,
        summary=f"{actor.name} closed action item #{row.id}: {row.title}",
        data={"actionItem": row.id, "policy": row.policy_name},
    )
    return row, service.slug


# ----------------------------------------------------------------------------------------- per service


def service_status(session: Session, *, service: str, now: datetime) -> dict[str, Any]:
    """What the policies have in force for one service: restrictions, pager handoff, engaged policies, and
    what is waiting on people (pending overrides, open action items)."""
    svc = get_service(session, service)
    restrictions = list_restrictions(session, service=svc.slug, active=True)
    handoffs = list_handoffs(session, service=svc.slug, active=True)
    return {
        "service": svc.slug,
        "frozen": any(item["kind"] == "freeze" for item in restrictions),
        "approval_required": any(item["kind"] == "approval" for item in restrictions),
        "restrictions": restrictions,
        "pager_handoff": handoffs[0] if handoffs else None,
        "states": [state_out(state, slug) for state, slug in policy_states(session, service_id=svc.id)],
        "policies": policies_for_service(session, svc),
        "pending_overrides": list_overrides(session, now=now, service=svc.slug, status="pending"),
        "open_action_items": list_action_items(session, service=svc.slug, status="open"),
    }


def services_with_anything_in_force(session: Session) -> list[str]:
    """Slugs of the services with an engaged policy, a restriction or a pager handoff, sorted."""
    slugs: set[str] = set()
    slugs.update(
        session.scalars(select(Service.slug).join(PolicyState, PolicyState.service_id == Service.id).distinct())
    )
    slugs.update(
        session.scalars(
            select(Service.slug)
            .join(ReleaseRestriction, ReleaseRestriction.service_id == Service.id)
            .where(ReleaseRestriction.ended_at.is_(None))
            .distinct()
        )
    )
    slugs.update(
        session.scalars(
            select(Service.slug)
            .join(PagerHandoff, PagerHandoff.service_id == Service.id)
            .where(PagerHandoff.ended_at.is_(None))
            .distinct()
        )
    )
    return sorted(slugs)


def frozen_counts(session: Session) -> dict[str, int]:
    """Active restrictions by kind, across every service (for overviews)."""
    counts: dict[str, int] = defaultdict(int)
    for kind, count in session.execute(
        select(ReleaseRestriction.kind, func.count(func.distinct(ReleaseRestriction.service_id)))
        .where(ReleaseRestriction.ended_at.is_(None))
        .group_by(ReleaseRestriction.kind)
    ).all():
        counts[kind] = count
    return dict(counts)
