"""The policy evaluation: after every SLO evaluation, each policy's conditions per service, its state machine
(cooldown, hysteresis), and the restrictions, pager handoffs, notifications and action items that follow.

One call is one transaction and is idempotent: it reconciles what is in force with what the engaged policies
ask for, so running it again at the same instant changes nothing, and a crashed run is simply run again.
Effects are keyed by what caused them (policy, service, trigger time), never by the run that wrote them.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from relia.catalog.models import Service, Team, service_dependencies
from relia.core import audit, channels, generations, outbox, timeline  # noqa: F401  (channels registers the webhook channel)
from relia.core.auth import Principal, Via
from relia.core.clock import utc
from relia.core.models import TimelineEvent
from relia.policy import rules, service
from relia.policy.models import (
    ObjectiveExhaustion,
    PagerHandoff,
    PolicyActionItem,
    PolicyState,
    ReleaseRestriction,
)
from relia.policy.schemas import BudgetPolicySpec
from relia.slo import rules as slo_rules
from relia.slo.models import SLO, Objective, ObjectiveStatus, Rollup

EVALUATOR = Principal.system("policy-evaluator", via=Via.worker)

MATCHED_REFRESH = timedelta(minutes=10)
KIND_EVENTS = {"freeze": "policy.freeze", "approval": "policy.approval", "warn": "policy.warning"}
KIND_WORDS = {"freeze": "frozen", "approval": "under required approval", "warn": "released with a warning"}


@dataclass
class EvaluationReport:
    policies: int = 0
    services: int = 0
    objectives: int = 0
    transitions: list[str] = field(default_factory=list)
    restrictions_started: int = 0
    restrictions_ended: int = 0
    handoffs_started: int = 0
    handoffs_ended: int = 0
    overrides_expired: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Policy:
    name: str
    spec: BudgetPolicySpec
    compiled: rules.CompiledPolicy


def evaluate(session: Session, *, now: datetime, actor: Principal = EVALUATOR) -> EvaluationReport:
    started = time.perf_counter()
    report = EvaluationReport()
    policies = [
        _Policy(name, spec, service.compile_policy(name, spec))
        for name, spec, _ in service.effective_policies(session)
        if spec.enabled
    ]
    by_name = {policy.name: policy for policy in policies}
    services = {
        service_id: (slug, owner_team_id)
        for service_id, slug, owner_team_id in session.execute(select(Service.id, Service.slug, Service.owner_team_id))
    }
    teams = dict(session.execute(select(Team.slug, Team.id)).all())
    views = _objective_views(session, policies, now)
    report.policies, report.services = len(policies), len(services)
    report.objectives = sum(len(items) for items in views.values())

    stored = {(row.policy_name, row.service_id): row for row in session.scalars(select(PolicyState))}
    engaged: dict[tuple[str, int], PolicyState] = {}
    for policy in policies:
        in_scope = _scope(policy.spec, services, teams)
        candidates = in_scope | {service_id for name, service_id in stored if name == policy.name}
        for service_id in sorted(candidates):
            row = stored.get((policy.name, service_id))
            previous = _state_of(row)
            matches: list[rules.ObjectiveMatch] = []
            if service_id in in_scope:
                matches = rules.match_objectives(
                    policy.compiled,
                    views.get(service_id, []),
                    now=now,
                    engaged=previous is not None and previous.engaged,
                )
            step = rules.advance(previous, bool(matches), now=now, cooldown=policy.compiled.cooldown)
            slug = services[service_id][0]
            row = _store_state(session, row, policy.name, service_id, step, matches, now)
            if step.transition is not None:
                report.transitions.append(f"{policy.name}/{slug}:{step.transition}")
                _announce(session, actor, policy, service_id, slug, step, row, matches, now)
            if row is not None:
                engaged[(policy.name, service_id)] = row
    # Policies deleted or disabled while engaged: their actions end now, without a cooldown (nothing is left
    # to cool down from), and the timeline says why.
    for (name, service_id), row in stored.items():
        if name not in by_name:
            slug = services.get(service_id, (str(service_id), 0))[0]
            report.transitions.append(f"{name}/{slug}:cleared")
            _removed(session, actor, name, service_id, slug, row, now)
            session.delete(row)

    _reconcile_restrictions(session, actor, by_name, engaged, services, report, now)
    _reconcile_handoffs(session, actor, by_name, engaged, services, teams, report, now)
    report.overrides_expired = service.expire_overrides(session, actor=actor, now=now)
    # Restrictions, the objectives that engaged them and overrides may all have moved: the gate's caches
    # read again (once a tick, whatever changed, so no path that changes them can be missed).
    generations.bump(session, service.GATE_GENERATION)
    session.flush()
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------------------------ inputs


def _scope(spec: BudgetPolicySpec, services: dict[int, tuple[str, int]], teams: dict[str, int]) -> set[int]:
    scope = spec.scope
    if scope.organisation:
        return set(services)
    if scope.service is not None:
        return {service_id for service_id, (slug, _) in services.items() if slug == scope.service}
    team_id = teams.get(scope.team or "")
    return {service_id for service_id, (_, owner) in services.items() if owner == team_id}


def _objective_views(session: Session, policies: list[_Policy], now: datetime) -> dict[int, list[rules.ObjectiveView]]:
    """Every evaluated objective as the policies see it, grouped by service; records exhaustion on the way."""
    rows = session.execute(
        select(
            Objective.id,
            Objective.key,
            Objective.target,
            SLO.name,
            SLO.service_id,
            ObjectiveStatus.budget_remaining,
            ObjectiveStatus.page_active,
            ObjectiveStatus.detail,
            ObjectiveStatus.evaluated_at,
            ObjectiveStatus.through_minute,
        )
        .join(SLO, Objective.slo_id == SLO.id)
        .join(ObjectiveStatus, ObjectiveStatus.objective_id == Objective.id)
    ).all()
    exhausted = _record_exhaustion(session, rows)
    windows_wanted = {
        condition.window_minutes
        for policy in policies
        for condition in policy.compiled.conditions
        if isinstance(condition, rules.BurnAbove)
    }
    burn: dict[int, dict[int, float | None]] = {}
    missing: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)  # (window, end) -> [(id, target)]
    for objective_id, _key, target, _slo, _service, _remaining, _page, detail, _at, through in rows:
        rates: dict[int, float | None] = {}
        for label, rate in ((detail or {}).get("burnRates") or {}).items():
            try:
                rates[slo_rules.parse_duration(label)] = rate
            except ValueError:
                continue
        for window in windows_wanted:
            if window not in rates:
                missing[(window, through)].append((objective_id, float(target)))
        burn[objective_id] = rates
    for (window, end), objectives in missing.items():
        for objective_id, rate in _burn_from_rollups(session, objectives, window, end).items():
            burn[objective_id][window] = rate
    views: dict[int, list[rules.ObjectiveView]] = defaultdict(list)
    for objective_id, key, _target, slo, service_id, remaining, page, _detail, _at, _through in rows:
        views[service_id].append(
            rules.ObjectiveView(
                objective_id=objective_id,
                service_id=service_id,
                slo=slo,
                objective=key,
                budget_remaining=remaining,
                page_active=bool(page),
                burn_rates=burn[objective_id],
                last_exhausted_at=exhausted.get(objective_id),
            )
        )
    return views


def _burn_from_rollups(
    session: Session, objectives: list[tuple[int, float]], window: int, end: int
) -> dict[int, float | None]:
    """Burn rates over a window the SLO evaluator does not keep, from the stored minutes: the error ratio over
    the window divided by the error budget (1 - target), as for Occurrences. Time-slice SLOs are judged by
    their events here too, which is close enough for a policy threshold."""
    targets = dict(objectives)
    found: dict[int, float | None] = dict.fromkeys(targets)
    ids = list(targets)
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        for objective_id, good, total in session.execute(
            select(Rollup.objective_id, func.sum(Rollup.good), func.sum(Rollup.total))
            .where(Rollup.objective_id.in_(chunk), Rollup.minute >= end - window, Rollup.minute < end)
            .group_by(Rollup.objective_id)
        ).all():
            found[objective_id] = rules.burn_rate(float(good or 0.0), float(total or 0.0), targets[objective_id])
    return found


def _record_exhaustion(session: Session, rows: list[Any]) -> dict[int, datetime | None]:
    """Bring ``policy_objective_exhaustion`` up to date and return it. An objective seen for the first time
    learns its past from the timeline (the evaluator announces every crossing of 0 %), so a condition on the
    trailing N days works from the first tick after an upgrade."""
    known = {row.objective_id: row.last_exhausted_at for row in session.scalars(select(ObjectiveExhaustion))}
    new = [row for row in rows if row[0] not in known]
    if new:
        past = _exhaustions_on_timeline(session, {(row[3], row[1]) for row in new})
        fresh = [{"objective_id": row[0], "last_exhausted_at": past.get((row[3], row[1]))} for row in new]
        session.execute(ObjectiveExhaustion.__table__.insert(), fresh)
        known.update({item["objective_id"]: item["last_exhausted_at"] for item in fresh})
    changed = []
    for objective_id, _key, _target, _slo, _service, remaining, _page, _detail, evaluated_at, _through in rows:
        if remaining is not None and remaining <= 0:
            last = known.get(objective_id)
            if last is None or last < evaluated_at:
                known[objective_id] = evaluated_at
                changed.append({"objective_id": objective_id, "last_exhausted_at": evaluated_at})
    if changed:
        session.execute(update(ObjectiveExhaustion), changed)
    return known


def _exhaustions_on_timeline(session: Session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    slo_names = sorted({slo for slo, _ in wanted})
    found: dict[tuple[str, str], datetime] = {}
    for start in range(0, len(slo_names), 500):
        chunk = slo_names[start : start + 500]
        events = session.execute(
            select(TimelineEvent.at, TimelineEvent.data).where(
                TimelineEvent.type == "slo.budget.crossed",
                TimelineEvent.data["slo"].as_string().in_(chunk),
            )
        ).all()
        for at, data in events:
            key = (str(data.get("slo")), str(data.get("objective", "default")))
            # Crossing 0 % either way means the budget was exhausted at that moment.
            if data.get("threshold") == 0 and key in wanted and (key not in found or found[key] < at):
                found[key] = at
    return found


# ---------------------------------------------------------------------------------------------- states


def _state_of(row: PolicyState | None) -> rules.PolicyState | None:
    if row is None:
        return None
    return rules.PolicyState(rules.Phase(row.phase), row.triggered_at, row.phase_since, row.cooling_until)


def _matched_json(matches: list[rules.ObjectiveMatch]) -> list[dict[str, Any]]:
    return [
        {
            "objectiveId": match.objective_id,
            "slo": match.slo,
            "objective": match.objective,
            "reasons": list(match.reasons),
        }
        for match in matches
    ]


def _store_state(
    session: Session,
    row: PolicyState | None,
    name: str,
    service_id: int,
    step: rules.Step,
    matches: list[rules.ObjectiveMatch],
    now: datetime,
) -> PolicyState | None:
    """Write the step's state; a clear policy has no row. ``matched`` keeps the last objectives that matched
    while cooling down (they are why the actions are still in force). It is rewritten at once when the set of
    objectives changes, and otherwise at most every MATCHED_REFRESH: its sentences carry numbers that move at
    every tick, and a write per tick per engaged policy would buy nothing (the gate reads live budgets)."""
    state = step.state
    if state is None:
        if row is not None:
            session.delete(row)
        return None
    if row is None:
        row = PolicyState(policy_name=name, service_id=service_id, matched=[], updated_at=now)
        session.add(row)
    if step.transition is not None or row.phase != state.phase:
        row.phase, row.triggered_at, row.phase_since = str(state.phase), state.triggered_at, state.phase_since
        row.cooling_until = state.cooling_until
        row.updated_at = now
    if matches:
        fresh = _matched_json(matches)
        new_ids = [item["objectiveId"] for item in fresh]
        old_ids = [int(item.get("objectiveId", 0)) for item in row.matched or []]
        stale = fresh != row.matched and now - row.updated_at >= MATCHED_REFRESH
        if new_ids != old_ids or step.transition is not None or stale:
            row.matched = fresh
            row.updated_at = now
    return row


def _announce(
    session: Session,
    actor: Principal,
    policy: _Policy,
    service_id: int,
    slug: str,
    step: rules.Step,
    row: PolicyState | None,
    matches: list[rules.ObjectiveMatch],
    now: datetime,
) -> None:
    """A state change on the service's timeline and in the audit log; a trigger also notifies and opens the
    action item, a clear notifies."""
    transition = step.transition
    assert transition is not None
    reasons = "; ".join(reason for match in matches for reason in match.reasons[:1])
    state = step.state
    if transition == rules.Transition.triggered:
        summary = f"Policy {policy.name} triggered for {slug}: {reasons}"
    elif transition == rules.Transition.retriggered:
        summary = f"Policy {policy.name} is back in force for {slug} before its cooldown ended: {reasons}"
    elif transition == rules.Transition.cooling:
        assert state is not None and state.cooling_until is not None
        summary = (
            f"Policy {policy.name}: the conditions cleared for {slug}; its actions end at "
            f"{state.cooling_until:%Y-%m-%d %H:%M} UTC unless they return"
        )
    else:
        summary = f"Policy {policy.name} cleared for {slug} after its {policy.spec.cooldown} cooldown"
    data: dict[str, Any] = {"policy": policy.name, "transition": str(transition), "matched": _matched_json(matches)}
    if state is not None:
        data["triggeredAt"] = state.triggered_at.isoformat()
        if state.cooling_until is not None:
            data["coolingUntil"] = state.cooling_until.isoformat()
    timeline.append(
        session,
        type=f"policy.{transition}",
        at=now,
        service_id=service_id,
        actor=actor.name,
        summary=summary,
        data=data,
    )
    audit.record(
        session,
        actor=actor,
        action=str(transition),
        kind="PolicyState",
        key=f"{policy.name}/{slug}",
        before=None,
        after={"phase": str(state.phase) if state else "clear", "summary": summary},
        now=now,
    )
    if transition == rules.Transition.triggered and state is not None:
        _open_action_item(session, policy, service_id, slug, state, reasons, now)
        _notify(session, policy, slug, "triggered", state.triggered_at, summary, matches, now)
    elif transition == rules.Transition.cleared:
        triggered_at = row.triggered_at if row is not None else now
        _notify(session, policy, slug, "cleared", triggered_at, summary, matches, now)


def _removed(
    session: Session, actor: Principal, name: str, service_id: int, slug: str, row: PolicyState, now: datetime
) -> None:
    summary = f"Policy {name} was removed or disabled while in force for {slug}; its actions end now"
    timeline.append(
        session,
        type="policy.cleared",
        at=now,
        service_id=service_id,
        actor=actor.name,
        summary=summary,
        data={"policy": name, "transition": "cleared", "removed": True},
    )
    audit.record(
        session,
        actor=actor,
        action="cleared",
        kind="PolicyState",
        key=f"{name}/{slug}",
        before={"phase": row.phase},
        after={"phase": "clear", "summary": summary},
        now=now,
    )


def _open_action_item(
    session: Session,
    policy: _Policy,
    service_id: int,
    slug: str,
    state: rules.PolicyState,
    reasons: str,
    now: datetime,
) -> None:
    spec = policy.spec.actions.action_item
    if spec is None:
        return
    key = f"policy:{policy.name}:{service_id}:{int(state.triggered_at.timestamp())}"
    if session.scalar(select(PolicyActionItem.id).where(PolicyActionItem.key == key)) is not None:
        return
    title = spec.title.replace("{service}", slug).replace("{policy}", policy.name)
    item = PolicyActionItem(
        key=key,
        title=title,
        service_id=service_id,
        policy_name=policy.name,
        status="open",
        detail=f"Opened when policy {policy.name} triggered at {state.triggered_at:%Y-%m-%d %H:%M} UTC: {reasons}",
        created_at=now,
    )
    session.add(item)
    session.flush()
    timeline.append(
        session,
        type="policy.action_item.created",
        at=now,
        service_id=service_id,
        actor=EVALUATOR.name,
        summary=f"Action item #{item.id} opened: {title}",
        data={"actionItem": item.id, "policy": policy.name},
    )


def _notify(
    session: Session,
    policy: _Policy,
    slug: str,
    event: str,
    triggered_at: datetime,
    summary: str,
    matches: list[rules.ObjectiveMatch],
    now: datetime,
) -> None:
    """One webhook message per target and transition; the key names the trigger, so a repeated run or a
    retried delivery is recognised by the receiver (the webhook channel sends it as Idempotency-Key)."""
    for target in policy.spec.actions.notify:
        digest = hashlib.sha256(target.webhook.encode()).hexdigest()[:12]
        key = f"policy:{policy.name}:{slug}:{event}:{int(triggered_at.timestamp())}:{digest}"
        payload = {
            "idempotencyKey": key,
            "event": f"policy.{event}",
            "policy": policy.name,
            "service": slug,
            "at": now.isoformat(),
            "triggeredAt": triggered_at.isoformat(),
            "summary": summary,
            "actions": policy.spec.actions.model_dump(mode="json", exclude={"notify"}, exclude_none=True),
            "slos": [
                {"slo": match.slo, "objective": match.objective, "reasons": list(match.reasons)} for match in matches
            ],
        }
        outbox.enqueue(
            session, channel="webhook", destination=target.webhook, payload=payload, idempotency_key=key, now=now
        )


# ------------------------------------------------------------------------------------------------ effects


def _dependents(session: Session) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for service_id, depends_on in session.execute(
        select(service_dependencies.c.service_id, service_dependencies.c.depends_on_id)
    ):
        found[depends_on].append(service_id)
    return found


def _reconcile_restrictions(
    session: Session,
    actor: Principal,
    policies: dict[str, _Policy],
    engaged: dict[tuple[str, int], PolicyState],
    services: dict[int, tuple[str, int]],
    report: EvaluationReport,
    now: datetime,
) -> None:
    """Make the restrictions in force equal what the engaged policies ask for (start the missing ones, end the
    extra ones, update exemptions that changed)."""
    dependents: dict[int, list[int]] | None = None
    desired: dict[tuple[int, str, str, int], list[str]] = {}
    for (name, cause_id), _row in engaged.items():
        actions = policies[name].spec.actions
        exemptions = sorted(policies[name].spec.exemptions)
        kinds = [
            kind
            for kind, action in (
                ("freeze", actions.freeze),
                ("approval", actions.require_approval),
                ("warn", actions.warn),
            )
            if action is not None
        ]
        for kind in kinds:
            desired[(cause_id, kind, name, cause_id)] = exemptions
        if actions.freeze is not None and actions.freeze.dependents != "none":
            if dependents is None:
                dependents = _dependents(session)
            reach = rules.dependents_of(cause_id, dependents, transitive=actions.freeze.dependents == "transitive")
            for affected in reach:
                desired.setdefault((affected, "freeze", name, cause_id), exemptions)
    # Plain rows, not ORM objects: with freezes reaching dependents there can be tens of thousands in force,
    # nearly all unchanged at any tick, and building an object per row would cost most of the tick.
    current = {
        (service_id, kind, policy_name, cause_id): (row_id, exemptions, started_at)
        for row_id, service_id, kind, policy_name, cause_id, exemptions, started_at in session.execute(
            select(
                ReleaseRestriction.id,
                ReleaseRestriction.service_id,
                ReleaseRestriction.kind,
                ReleaseRestriction.policy_name,
                ReleaseRestriction.cause_service_id,
                ReleaseRestriction.exemptions,
                ReleaseRestriction.started_at,
            ).where(ReleaseRestriction.ended_at.is_(None))
        )
    }
    # Written in bulk at the end: when a policy engages over a deep dependency graph it starts thousands.
    started: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for key, exemptions in sorted(desired.items()):
        found = current.get(key)
        if found is not None:
            row_id, stored_exemptions, _ = found
            if list(stored_exemptions or []) != exemptions:
                session.execute(
                    update(ReleaseRestriction).where(ReleaseRestriction.id == row_id).values(exemptions=exemptions)
                )
            continue
        affected, kind, name, cause_id = key
        slug, cause_slug = services[affected][0], services[cause_id][0]
        through = "" if affected == cause_id else f" because {cause_slug}, which it depends on, is"
        summary = f"{slug} {KIND_WORDS[kind]} by policy {name}" + (f"{through} affected" if through else "")
        started.append(
            {
                "service_id": affected,
                "kind": kind,
                "policy_name": name,
                "cause_service_id": cause_id,
                "exemptions": exemptions,
                "summary": summary,
                "started_at": now,
                "ended_at": None,
            }
        )
        report.restrictions_started += 1
        _effect_rows(
            events, audits, actor, f"{KIND_EVENTS[kind]}.started", affected, slug, name, cause_slug, summary, now
        )
    for key, (row_id, _, started_at) in sorted(current.items()):
        if key in desired:
            continue
        affected, kind, name, cause_id = key
        session.execute(update(ReleaseRestriction).where(ReleaseRestriction.id == row_id).values(ended_at=now))
        slug = services.get(affected, (str(affected), 0))[0]
        cause_slug = services.get(cause_id, (str(cause_id), 0))[0]
        minutes = int((now - utc(started_at)).total_seconds() // 60)
        summary = f"{slug} is no longer {KIND_WORDS[kind]} by policy {name} (after {rules.format_minutes(minutes)})"
        report.restrictions_ended += 1
        _effect_rows(
            events, audits, actor, f"{KIND_EVENTS[kind]}.ended", affected, slug, name, cause_slug, summary, now
        )
    if started:
        session.flush()
        session.execute(insert(ReleaseRestriction.__table__), started)
    timeline.append_many(session, events)
    audit.record_many(session, audits)


def _reconcile_handoffs(
    session: Session,
    actor: Principal,
    policies: dict[str, _Policy],
    engaged: dict[tuple[str, int], PolicyState],
    services: dict[int, tuple[str, int]],
    teams: dict[str, int],
    report: EvaluationReport,
    now: datetime,
) -> None:
    team_slugs = {team_id: slug for slug, team_id in teams.items()}
    desired: dict[tuple[int, str], tuple[int, int]] = {}
    for (name, service_id), _row in engaged.items():
        pager = policies[name].spec.actions.hand_pager
        if pager is None:
            continue
        from_id = teams.get(pager.from_team)
        to_id = teams.get(pager.to_team) if pager.to_team else services[service_id][1]
        # A team cannot hand the pager to itself: when the owners already carry it, there is nothing to hand.
        if from_id is not None and to_id is not None and from_id != to_id:
            desired[(service_id, name)] = (from_id, to_id)
    current = {
        (row.service_id, row.policy_name): row
        for row in session.scalars(select(PagerHandoff).where(PagerHandoff.ended_at.is_(None)))
    }
    for key, row in sorted(current.items()):
        if desired.get(key) == (row.from_team_id, row.to_team_id):
            continue
        service_id, name = key
        row.ended_at = now
        slug = services.get(service_id, (str(service_id), 0))[0]
        from_slug, to_slug = team_slugs.get(row.from_team_id, "?"), team_slugs.get(row.to_team_id, "?")
        summary = f"Pager of {slug} returned from {to_slug} to {from_slug} (policy {name})"
        report.handoffs_ended += 1
        _handoff_event(
            session, actor, "policy.pager.returned", service_id, slug, name, from_slug, to_slug, summary, now
        )
    for key, (from_id, to_id) in sorted(desired.items()):
        existing = current.get(key)
        if existing is not None and existing.ended_at is None:
            continue
        service_id, name = key
        slug = services[service_id][0]
        from_slug, to_slug = team_slugs[from_id], team_slugs[to_id]
        summary = f"Pager of {slug} handed from {from_slug} to {to_slug} by policy {name}"
        session.add(
            PagerHandoff(
                service_id=service_id,
                policy_name=name,
                from_team_id=from_id,
                to_team_id=to_id,
                reason=summary,
                started_at=now,
            )
        )
        report.handoffs_started += 1
        _handoff_event(session, actor, "policy.pager.handed", service_id, slug, name, from_slug, to_slug, summary, now)


def _effect_rows(
    events: list[dict[str, Any]],
    audits: list[dict[str, Any]],
    actor: Principal,
    event_type: str,
    service_id: int,
    slug: str,
    policy: str,
    cause_slug: str,
    summary: str,
    now: datetime,
) -> None:
    events.append(
        timeline.event_row(
            type=event_type,
            at=now,
            service_id=service_id,
            actor=actor.name,
            summary=summary,
            data={"policy": policy, "cause": cause_slug},
        )
    )
    audits.append(
        audit.entry_row(
            actor=actor,
            action=event_type.rsplit(".", 1)[1],
            kind="ReleaseRestriction",
            key=f"{slug}/{policy}/{cause_slug}",
            before=None,
            after={"event": event_type, "summary": summary},
            now=now,
        )
    )


def _handoff_event(
    session: Session,
    actor: Principal,
    event_type: str,
    service_id: int,
    slug: str,
    policy: str,
    from_slug: str,
    to_slug: str,
    summary: str,
    now: datetime,
) -> None:
    timeline.append(
        session,
        type=event_type,
        at=now,
        service_id=service_id,
        actor=actor.name,
        summary=summary,
        data={"policy": policy, "fromTeam": from_slug, "toTeam": to_slug},
    )
    audit.record(
        session,
        actor=actor,
        action=event_type.rsplit(".", 1)[1],
        kind="PagerHandoff",
        key=f"{slug}/{policy}",
        before=None,
        after={"fromTeam": from_slug, "toTeam": to_slug, "summary": summary},
        now=now,
    )
