"""The durable blue-green state machine: what each state does on entry, the deadlines (durable timers), and the
results of the actions with I/O that ``relia.deploys.runner`` performs.

``rules.transition`` decides every state; this module applies it and does the entry work of the new state:

- Work with I/O (an adapter call, a round of measurements) becomes an *action* on the deployment row with the
  time it is due; the runner claims it with a lease, does it with no transaction open, and hands the result to
  ``record_adapter_result`` or ``record_measurements``. A lease that runs out (the worker died) lets another
  worker take the action again, so every adapter call must be idempotent.
- Deadlines (a manual promotion's timeout, the end of keep-warm) are durable timers (``DEADLINE_TIMER``) that the
  engine tick fires into ``on_deadline``.
- Everything else happens at once, in the transaction that caused it.

Every step goes to the deployment's step log and to the service timeline (``record_step``).

Lock order, everywhere: the deployment's timer row, then the deployment, then its target. The timer tick takes
the timer first and its handler the deployment, so following the same order elsewhere never deadlocks.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from relia.catalog.models import Service
from relia.core import timeline, timers
from relia.core.auth import Principal, Via
from relia.core.errors import NotFound
from relia.core.models import Timer
from relia.deploys import adapters, rules
from relia.deploys.gate import GateAnswer, check_gate
from relia.deploys.models import AnalysisMeasurement, Deployment, DeploymentStep
from relia.deploys.rules import Action, AnalysisPhase, Event, State
from relia.deploys.schemas import DeployTargetSpec

DEADLINE_TIMER = "deploys.deadline"
MACHINE = "relia-deploys"  # the actor of steps nobody asked for (the worker moving the machine on)
LEASE_MARGIN = timedelta(seconds=60)

DEPLOYMENT_LOADS = (
    selectinload(Deployment.service).selectinload(Service.owner_team),
    selectinload(Deployment.target),
)


def parsed_spec(spec: dict[str, Any]) -> DeployTargetSpec:
    return DeployTargetSpec.model_validate(spec)


def facts(deployment: Deployment) -> rules.Facts:
    spec = parsed_spec(deployment.spec)
    return rules.Facts(
        switched=deployment.switched,
        paused_phase=AnalysisPhase(deployment.paused_phase) if deployment.paused_phase else None,
        on_inconclusive=spec.analysis.on_inconclusive,
        on_promotion_timeout=spec.promotion.on_timeout,
    )


def lock_deployment(session: Session, deployment_id: int) -> Deployment:
    """The deployment, locked in the lock order (its timer row first) for a change."""
    session.execute(
        select(Timer.id).where(Timer.kind == DEADLINE_TIMER, Timer.key == str(deployment_id)).with_for_update()
    )
    return lock_deployment_row(session, deployment_id)


def lock_deployment_row(session: Session, deployment_id: int) -> Deployment:
    deployment = session.scalars(
        select(Deployment)
        .where(Deployment.id == deployment_id)
        .options(*DEPLOYMENT_LOADS)
        .with_for_update(of=Deployment)
    ).one_or_none()
    if deployment is None:
        raise NotFound(f"There is no deployment {deployment_id}.")
    return deployment


def measurements(session: Session, deployment_id: int) -> list[AnalysisMeasurement]:
    return list(
        session.scalars(
            select(AnalysisMeasurement)
            .where(AnalysisMeasurement.deployment_id == deployment_id)
            .order_by(AnalysisMeasurement.id)
        )
    )


@dataclass(frozen=True)
class CheckStatus:
    name: str
    type: str
    phase: rules.Phase
    measurements: int
    dry_run: bool


@dataclass(frozen=True)
class AnalysisStatus:
    phase: str
    run: int
    status: rules.Phase
    started_at: datetime | None
    checks: list[CheckStatus]


def analysis_status(deployment: Deployment, found: Iterable[AnalysisMeasurement]) -> AnalysisStatus | None:
    """The latest analysis run's checks and verdict so far, from its measurements."""
    if deployment.analysis_phase is None:
        return None
    spec = parsed_spec(deployment.spec)
    verdicts: dict[str, list[rules.Verdict]] = defaultdict(list)
    for item in found:
        if item.run == deployment.analysis_run:
            verdicts[item.check_name].append(rules.Verdict(item.verdict))
    checks = [
        CheckStatus(
            name=check.name,
            type=check.type,
            phase=rules.check_phase(verdicts[check.name], check.limits(spec.analysis.count)),
            measurements=len(verdicts[check.name]),
            dry_run=check.dry_run,
        )
        for check in spec.analysis.checks_for(deployment.analysis_phase)
    ]
    return AnalysisStatus(
        phase=deployment.analysis_phase,
        run=deployment.analysis_run,
        status=rules.run_phase((check.phase, check.dry_run) for check in checks),
        started_at=deployment.analysis_started_at,
        checks=checks,
    )


def record_gate_step(session: Session, deployment: Deployment, answer: GateAnswer, phase: str, now: datetime) -> None:
    when = "before the deployment" if phase == "pre_deploy" else "again before the switch"
    why = "; ".join(answer.reasons)
    record_step(
        session,
        deployment,
        "deploy.gate.checked",
        f"Release gate checked {when}: {answer.decision}" + (f" ({why})" if why else ""),
        now,
        data={"phase": phase, "decision": answer.decision, "reasons": answer.data or answer.reasons},
    )


# -------------------------------------------------------------------------------------------- the machine


def record_step(
    session: Session,
    deployment: Deployment,
    type: str,
    summary: str,
    now: datetime,
    *,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """One step: in the deployment's step log and on the service timeline."""
    payload = {"deployment": deployment.id, "version": deployment.version, **(data or {})}
    session.add(
        DeploymentStep(
            deployment_id=deployment.id,
            at=now,
            type=type,
            state=deployment.state,
            summary=summary,
            actor=actor or MACHINE,
            data=payload,
        )
    )
    timeline.append(
        session,
        type=type,
        at=now,
        service_id=deployment.service_id,
        actor=actor or MACHINE,
        summary=f"Deployment {deployment.id}: {summary}",
        data=payload,
    )


def fire(
    session: Session, deployment: Deployment, event: Event, now: datetime, *, actor: str | None = None, reason: str = ""
) -> None:
    """Apply ``event`` (rules.transition decides the state), then do what the new state does on entry."""
    before = State(deployment.state)
    after = rules.transition(before, event, facts(deployment))
    if before is State.paused and after is not State.paused:
        deployment.paused_phase = None
        deployment.pause_reason = None
    deployment.state = after
    deployment.updated_at = now
    if after in (State.aborting, State.rolling_back) and reason and not deployment.message:
        deployment.message = reason
    enter(session, deployment, now, actor=actor, reason=reason, came_from=before)


def enter(
    session: Session,
    deployment: Deployment,
    now: datetime,
    *,
    actor: str | None = None,
    reason: str = "",
    came_from: State | None = None,
) -> None:
    state = State(deployment.state)
    spec = parsed_spec(deployment.spec)
    old = deployment.from_environment
    if state is State.deploying:
        if adapters.has_hook(spec.adapter, Action.deploy):
            _arm(deployment, Action.deploy, now)
            return
        _deployed(session, deployment, now, "recorded as deployed by the pipeline (no deploy hook)")
        fire(session, deployment, Event.deployed, now)
    elif state in (State.pre_analysis, State.post_analysis):
        _start_analysis(session, deployment, spec, now, resumed=came_from is State.paused, actor=actor)
    elif state is State.awaiting_promotion:
        if spec.promotion.mode == "automatic":
            record_step(
                session, deployment, "deploy.promoted", "Promoted automatically (promotion mode automatic)", now
            )
            fire(session, deployment, Event.promote, now)
            return
        deadline = now + timedelta(seconds=rules.parse_seconds(spec.promotion.timeout))
        deployment.promotion_deadline = deadline
        record_step(
            session,
            deployment,
            "deploy.promotion.awaiting",
            f"Awaiting promotion by a person until {deadline:%Y-%m-%d %H:%M:%S} UTC; "
            f"then it will {spec.promotion.on_timeout} (the stated default)",
            now,
            data={"deadline": deadline.isoformat(), "onTimeout": spec.promotion.on_timeout},
        )
    elif state is State.switching:
        deployment.promotion_deadline = None
        if came_from in (State.awaiting_promotion, State.paused) and actor:
            record_step(session, deployment, "deploy.promoted", reason or f"Promoted by {actor}", now, actor=actor)
        gate = check_gate(
            session,
            actor=Principal.system(f"deployment-{deployment.id}", via=Via.worker),
            service_slug=deployment.service.slug,
            version=deployment.version,
            change_type=deployment.change_type,
            phase="pre_switch",
            now=now,
        )
        record_gate_step(session, deployment, gate, "pre_switch", now)
        if gate.decision == "block":
            fire(
                session,
                deployment,
                Event.gate_blocked,
                now,
                reason="the release gate blocks the switch: " + ("; ".join(gate.reasons) or "no reason given"),
            )
            return
        _arm(deployment, Action.switch, now)
    elif state is State.paused:
        deployment.paused_phase = rules.analysis_phase_of(came_from) if came_from else None
        deployment.pause_reason = reason
        record_step(
            session,
            deployment,
            "deploy.paused",
            f"Paused for a person to promote, resume or abort: {reason}",
            now,
            data={"phase": deployment.paused_phase},
        )
    elif state is State.keeping_warm:
        warm = timedelta(seconds=rules.parse_seconds(spec.keep_warm))
        deployment.warm_until = now + warm
        if came_from is State.paused and actor:
            record_step(session, deployment, "deploy.promoted", reason or f"Promoted by {actor}", now, actor=actor)
        record_step(
            session,
            deployment,
            "deploy.keeping_warm",
            f"Keeping {old} warm for a fast rollback until {deployment.warm_until:%Y-%m-%d %H:%M:%S} UTC",
            now,
            data={"until": deployment.warm_until.isoformat(), "environment": old},
        )
        if warm <= timedelta(0):
            _after_warm(session, deployment, now)
    elif state is State.aborting:
        record_step(
            session, deployment, "deploy.aborting", f"Aborting: {deployment.message or reason}", now, actor=actor
        )
        if adapters.has_hook(spec.adapter, Action.retire):
            _arm(deployment, Action.retire, now)
        else:
            fire(session, deployment, Event.retired, now)
    elif state is State.rolling_back:
        record_step(
            session,
            deployment,
            "deploy.rolling_back",
            f"Rolling back to {old}: {deployment.message or reason}",
            now,
            actor=actor,
        )
        _arm(deployment, Action.rollback, now)
    elif state in rules.TERMINAL:
        _finish(session, deployment, now)
    else:  # every state is handled above; a new one must be added here
        raise AssertionError(f"no entry for {state}")


def _deployed(session: Session, deployment: Deployment, now: datetime, how: str) -> None:
    target = deployment.target
    setattr(target, f"{deployment.to_environment}_version", deployment.version)
    target.updated_at = now
    record_step(
        session,
        deployment,
        "deploy.deployed",
        f"{deployment.version} is on {deployment.to_environment}: {how}",
        now,
        data={"environment": deployment.to_environment},
    )


def _start_analysis(
    session: Session,
    deployment: Deployment,
    spec: DeployTargetSpec,
    now: datetime,
    *,
    resumed: bool,
    actor: str | None,
) -> None:
    phase = rules.analysis_phase_of(State(deployment.state))
    assert phase is not None
    deployment.analysis_phase = phase
    deployment.analysis_run += 1
    deployment.analysis_started_at = now
    checks = spec.analysis.checks_for(phase)
    which = "pre-promotion" if phase is AnalysisPhase.pre else "post-promotion"
    environment = deployment.to_environment
    if resumed:
        record_step(
            session,
            deployment,
            "deploy.resumed",
            f"Resumed by {actor}: the {which} analysis starts again",
            now,
            actor=actor,
        )
    if not checks:
        record_step(
            session,
            deployment,
            "deploy.analysis.succeeded",
            f"No {which} checks are declared; the analysis passes",
            now,
            data={"phase": phase, "run": deployment.analysis_run},
        )
        fire(session, deployment, Event.analysis_successful, now)
        return
    delay = timedelta(seconds=rules.parse_seconds(spec.analysis.initial_delay))
    record_step(
        session,
        deployment,
        "deploy.analysis.started",
        f"The {which} analysis of {environment} started: {', '.join(check.name for check in checks)}; "
        f"{spec.analysis.count} measurements each, every {spec.analysis.interval}",
        now,
        data={"phase": phase, "run": deployment.analysis_run, "checks": [check.name for check in checks]},
    )
    _arm(deployment, Action.measure, now + delay)


def _after_warm(session: Session, deployment: Deployment, now: datetime) -> None:
    spec = parsed_spec(deployment.spec)
    deployment.warm_until = None
    if adapters.has_hook(spec.adapter, Action.retire):
        _arm(deployment, Action.retire, now)
    else:
        fire(session, deployment, Event.retired, now)


OUTCOMES = {
    State.succeeded: ("succeeded", "deploy.completed"),
    State.aborted: ("aborted", "deploy.aborted"),
    State.rolled_back: ("rolled_back", "deploy.rolled_back"),
    State.failed: ("failed", "deploy.failed"),
}


def _finish(session: Session, deployment: Deployment, now: datetime) -> None:
    state = State(deployment.state)
    outcome, step_type = OUTCOMES[state]
    deployment.outcome = outcome
    deployment.finished_at = now
    deployment.promotion_deadline = deployment.warm_until = None
    cancel_action(deployment)
    target = deployment.target
    if target.active_deployment_id == deployment.id:
        target.active_deployment_id = None
        target.updated_at = now
    new, old = deployment.to_environment, deployment.from_environment
    if state is State.succeeded:
        summary = f"Completed: {deployment.version} is live on {new}"
    elif state is State.aborted:
        summary = f"Aborted before the switch ({deployment.message or 'no reason given'}); {old} stayed live"
    elif state is State.rolled_back:
        summary = f"Rolled back: traffic is on {old} again ({deployment.message or 'no reason given'})"
    else:
        summary = (
            f"Failed: the rollback to {old} did not complete ({deployment.message or 'no reason given'}); "
            f"traffic may still be on {new}. Check the adapter and switch by hand."
        )
    record_step(
        session, deployment, step_type, summary, now, data={"outcome": outcome, "live": target.live_environment}
    )


def _arm(deployment: Deployment, action: Action, due: datetime) -> None:
    if deployment.action != action:
        deployment.action_attempts = 0
    deployment.action = action
    deployment.action_due_at = due
    deployment.action_lease_until = None
    deployment.action_token = None
    deployment.action_error = None


def cancel_action(deployment: Deployment) -> None:
    deployment.action = None
    deployment.action_due_at = None
    deployment.action_lease_until = None
    deployment.action_token = None
    deployment.action_attempts = 0


def deadline_of(deployment: Deployment) -> datetime | None:
    """When the deployment next needs the clock (its timer's due time), or None."""
    state = State(deployment.state)
    if state is State.awaiting_promotion:
        return deployment.promotion_deadline
    if state is State.keeping_warm and deployment.action is None:
        return deployment.warm_until
    return None


def sync_deadline(session: Session, deployment: Deployment, now: datetime) -> None:
    """Make the deployment's timer match its deadline. Not for the timer's own handler, which returns it."""
    due = deadline_of(deployment)
    key = str(deployment.id)
    if due is None:
        timers.cancel(session, kind=DEADLINE_TIMER, key=key)
    else:
        timers.schedule(
            session, kind=DEADLINE_TIMER, key=key, due_at=due, payload={"deployment": deployment.id}, now=now
        )


def on_deadline(session: Session, deployment: Deployment, now: datetime) -> datetime | None:
    """The timer fired: a manual promotion ran out of time, or keep-warm ended. Returns the next due time."""
    state = State(deployment.state)
    spec = parsed_spec(deployment.spec)
    if state is State.awaiting_promotion and deployment.promotion_deadline and deployment.promotion_deadline <= now:
        default = spec.promotion.on_timeout
        record_step(
            session,
            deployment,
            "deploy.promotion.timed_out",
            f"Nobody decided within {spec.promotion.timeout}; applying the stated default: {default}",
            now,
            data={"onTimeout": default},
        )
        deployment.promotion_deadline = None
        fire(
            session,
            deployment,
            Event.promotion_timed_out,
            now,
            reason=f"promotion timed out after {spec.promotion.timeout} (default: {default})",
        )
    elif (
        state is State.keeping_warm
        and deployment.action is None
        and deployment.warm_until
        and deployment.warm_until <= now
    ):
        _after_warm(session, deployment, now)
    return deadline_of(deployment)


# ------------------------------------------------------------------------------------------- action results


def claim_next_action(session: Session, now: datetime) -> Deployment | None:
    """The next due action nobody holds, claimed with a lease long enough for its timeout. Another worker skips
    it (PostgreSQL: SKIP LOCKED; SQLite: one writer at a time)."""
    deployment = session.scalars(
        select(Deployment)
        .where(
            Deployment.action.is_not(None),
            Deployment.action_due_at <= now,
            or_(Deployment.action_lease_until.is_(None), Deployment.action_lease_until <= now),
        )
        .order_by(Deployment.action_due_at, Deployment.id)
        .limit(1)
        .with_for_update(of=Deployment, skip_locked=True)
        .options(*DEPLOYMENT_LOADS)
    ).first()
    if deployment is None:
        return None
    deployment.action_token = uuid.uuid4().hex
    deployment.action_lease_until = now + lease_for(deployment)
    if deployment.action != Action.measure:
        deployment.action_attempts += 1
    if deployment.action == Action.switch:
        # From now on traffic may be on the new environment: an abort must roll back, not just stop.
        deployment.switched = True
    return deployment


def lease_for(deployment: Deployment) -> timedelta:
    spec = parsed_spec(deployment.spec)
    if deployment.action == Action.measure:
        timeouts = [getattr(check, "timeout_seconds", 10.0) for check in spec.analysis.checks]
        return timedelta(seconds=max(timeouts, default=10.0)) + LEASE_MARGIN
    calls = 2 if spec.adapter.type == "nginx" and deployment.action in (Action.switch, Action.rollback) else 1
    return timedelta(seconds=spec.adapter.timeout_seconds * calls) + LEASE_MARGIN


def action_context(deployment: Deployment) -> adapters.ActionContext:
    action = Action(deployment.action or "")
    spec = parsed_spec(deployment.spec)
    new, old = deployment.to_environment, deployment.from_environment
    retiring_old = State(deployment.state) is State.keeping_warm
    environment = {
        Action.deploy: new,
        Action.switch: new,
        Action.rollback: old,
        Action.retire: old if retiring_old else new,
    }[action]
    live = new if action is Action.switch or (action is Action.retire and retiring_old) else old
    return adapters.ActionContext(
        action=action.value,
        deployment_id=deployment.id,
        service=deployment.service.slug,
        target=deployment.target.name,
        version=deployment.version,
        previous_version=deployment.previous_version,
        environment=environment,
        live=live,
        new_environment=new,
        old_environment=old,
        upstreams={"blue": spec.environments.blue.upstream, "green": spec.environments.green.upstream},
        attempt=deployment.action_attempts,
        variables={str(name): str(value) for name, value in deployment.variables.items()},
    )


def template_values(deployment: Deployment) -> dict[str, str]:
    spec = parsed_spec(deployment.spec)
    environment = deployment.to_environment
    return {
        "service": deployment.service.slug,
        "version": deployment.version,
        "environment": environment,
        "upstream": spec.environments.of(environment).upstream,
        "deployment": str(deployment.id),
    }


@dataclass(frozen=True)
class AdapterResult:
    ok: bool
    detail: str
    permanent: bool = False


def _is_current(deployment: Deployment, token: str, action: Action) -> bool:
    return deployment.action_token == token and deployment.action == action


def record_adapter_result(
    session: Session, deployment: Deployment, *, token: str, action: Action, result: AdapterResult, now: datetime
) -> bool:
    """Apply an adapter call's result. False (and nothing changes) when the claim is no longer current."""
    if not _is_current(deployment, token, action):
        return False
    spec = parsed_spec(deployment.spec)
    attempts = deployment.action_attempts
    allowed = spec.adapter.retries + 1
    deployment.action_lease_until = None
    deployment.action_token = None
    if result.ok:
        deployment.action_error = None
        cancel_action(deployment)
        _adapter_succeeded(session, deployment, action, result.detail, now)
    else:
        deployment.action_error = result.detail
        retry = not result.permanent and attempts < allowed and not deployment.abort_requested
        delay = rules.action_retry_delay(attempts)
        record_step(
            session,
            deployment,
            "deploy.action.failed",
            f"The {action} call failed (attempt {attempts} of {allowed}): {result.detail}"
            + (f"; trying again in {delay} s" if retry else "; giving up"),
            now,
            data={"action": action, "attempt": attempts, "permanent": result.permanent},
        )
        if retry:
            _arm(deployment, action, now + timedelta(seconds=delay))  # the same action: attempts are kept
            deployment.action_error = result.detail  # shown until the next attempt
        else:
            cancel_action(deployment)
            _adapter_gave_up(session, deployment, action, result.detail, now)
    sync_deadline(session, deployment, now)
    return True


def _adapter_succeeded(session: Session, deployment: Deployment, action: Action, detail: str, now: datetime) -> None:
    target = deployment.target
    new, old = deployment.to_environment, deployment.from_environment
    if action is Action.deploy:
        _deployed(session, deployment, now, f"the deploy hook succeeded ({detail})")
        if deployment.abort_requested:
            fire(session, deployment, Event.abort, now, reason=deployment.message or "aborted")
        else:
            fire(session, deployment, Event.deployed, now)
    elif action is Action.switch:
        target.live_environment = new
        target.updated_at = now
        deployment.switched = True
        record_step(
            session,
            deployment,
            "deploy.switched",
            f"Live traffic switched from {old} to {new}: {detail}",
            now,
            data={"from": old, "to": new},
        )
        if deployment.abort_requested:
            fire(session, deployment, Event.abort, now, reason=deployment.message or "aborted")
        else:
            fire(session, deployment, Event.switched, now)
    elif action is Action.rollback:
        target.live_environment = old
        target.updated_at = now
        deployment.switched = False
        fire(session, deployment, Event.rolled_back, now)
    else:
        retired = old if State(deployment.state) is State.keeping_warm else new
        setattr(target, f"{retired}_version", None)
        target.updated_at = now
        record_step(
            session,
            deployment,
            "deploy.retired",
            f"{retired} retired by the retire hook: {detail}",
            now,
            data={"environment": retired},
        )
        fire(session, deployment, Event.retired, now)


def _adapter_gave_up(session: Session, deployment: Deployment, action: Action, detail: str, now: datetime) -> None:
    if action is Action.deploy:
        reason = deployment.message if deployment.abort_requested else f"the deploy hook failed: {detail}"
        fire(session, deployment, Event.deploy_failed, now, reason=reason or detail)
    elif action is Action.switch:
        fire(session, deployment, Event.switch_failed, now, reason=f"the switch failed: {detail}")
    elif action is Action.rollback:
        deployment.message = f"{deployment.message}; the rollback failed: {detail}" if deployment.message else detail
        fire(session, deployment, Event.rollback_failed, now)
    else:
        # Retiring is tidying up: the deployment's outcome stands, the step log says what is left running.
        record_step(
            session, deployment, "deploy.retire.skipped", f"The retire hook failed; nothing was retired: {detail}", now
        )
        fire(session, deployment, Event.retired, now)


@dataclass(frozen=True)
class MeasurementResult:
    check: str
    verdict: rules.Verdict
    value: float | None
    detail: str


def record_measurements(
    session: Session,
    deployment: Deployment,
    *,
    token: str,
    run: int,
    results: list[MeasurementResult],
    now: datetime,
) -> bool:
    """Store one round of measurements and decide: measure again after the interval, or end the run."""
    if not _is_current(deployment, token, Action.measure) or deployment.analysis_run != run:
        return False
    phase = deployment.analysis_phase
    assert phase is not None
    for result in results:
        session.add(
            AnalysisMeasurement(
                deployment_id=deployment.id,
                phase=phase,
                run=run,
                check_name=result.check,
                at=now,
                verdict=result.verdict,
                value=result.value,
                detail=result.detail,
            )
        )
    session.flush()
    status = analysis_status(deployment, measurements(session, deployment.id))
    assert status is not None
    spec = parsed_spec(deployment.spec)
    deployment.action_lease_until = None
    deployment.action_token = None
    if status.status is rules.Phase.running:
        _arm(deployment, Action.measure, now + timedelta(seconds=rules.parse_seconds(spec.analysis.interval)))
        return True
    cancel_action(deployment)
    which = "pre-promotion" if phase == AnalysisPhase.pre else "post-promotion"
    per_check = ", ".join(
        f"{check.name} {check.phase}" + (" (dry run)" if check.dry_run else "") for check in status.checks
    )
    event = rules.analysis_event(status.status)
    assert event is not None
    step_type = {
        Event.analysis_successful: "deploy.analysis.succeeded",
        Event.analysis_failed: "deploy.analysis.failed",
        Event.analysis_inconclusive: "deploy.analysis.inconclusive",
    }[event]
    record_step(
        session,
        deployment,
        step_type,
        f"The {which} analysis is {status.status}: {per_check}",
        now,
        data={
            "phase": phase,
            "run": run,
            "status": status.status,
            "checks": {check.name: check.phase for check in status.checks},
        },
    )
    bad = [check.name for check in status.checks if check.phase not in (rules.Phase.successful, rules.Phase.running)]
    reason = f"the {which} analysis is {status.status} ({', '.join(bad) or per_check})"
    fire(session, deployment, event, now, reason=reason)
    sync_deadline(session, deployment, now)
    return True
