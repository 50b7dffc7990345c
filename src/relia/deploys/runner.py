"""The action runner: does the deployments' work that has I/O (adapter calls, analysis measurements) with no
database transaction open, and hands each result back to the state machine.

Per action, three short steps:

1. **Claim** (one write transaction): the next due action nobody holds gets a lease long enough for its timeout and
   a fresh token (``machine.claim_next_action``); everything the call needs is read here.
2. **Perform** (no transaction): the adapter call, or one measurement of every check of the running analysis,
   side by side.
3. **Record** (one write transaction, in the machine's lock order): the result is applied only if the claim's
   token is still the deployment's; a person who aborted meanwhile, or a worker that took over an expired lease,
   makes it stale and it is dropped.

A worker that dies between 1 and 3 leaves the lease to run out; the action is then claimed again, which is why
every adapter call must be idempotent. Work per tick is bounded: at most ``max_actions`` actions and no new claim
after ``max_seconds`` (an action under way finishes, within its own timeout).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.errors import ReliaError
from relia.deploys import adapters, analysis, machine, rules
from relia.deploys.models import Deployment
from relia.deploys.rules import Action
from relia.deploys.schemas import HttpCheck, PrometheusCheck, SloBurnCheck
from relia.slo import service as slo_service
from relia.slo.schemas import DataSourceSpec

log = structlog.get_logger("relia.deploys.runner")


@dataclass(frozen=True)
class Job:
    """One claimed action and what performing it needs (read while claiming)."""

    deployment_id: int
    token: str
    action: Action
    run: int = 0
    adapter: adapters.AdapterSpec | None = None
    context: adapters.ActionContext | None = None
    checks: list[analysis.PreparedCheck] = field(default_factory=list)


@dataclass
class RunnerReport:
    performed: int = 0
    stale: int = 0
    failed: int = 0


@dataclass
class ActionRunner:
    max_actions: int = 20
    max_seconds: float = 10.0

    def tick(self, db: Database, clock: Clock) -> RunnerReport:
        report = RunnerReport()
        started = time.monotonic()
        for _ in range(self.max_actions):
            if time.monotonic() - started > self.max_seconds:
                break
            job = self.claim(db, clock)
            if job is None:
                break
            self.perform_and_record(db, clock, job, report)
        return report

    def claim(self, db: Database, clock: Clock) -> Job | None:
        with db.transaction() as session:
            now = clock.now()
            deployment = machine.claim_next_action(session, now)
            if deployment is None:
                return None
            return _job(session, db, deployment, now)

    def perform_and_record(self, db: Database, clock: Clock, job: Job, report: RunnerReport) -> None:
        if job.action is Action.measure:
            results = [
                machine.MeasurementResult(m.check, m.verdict, m.value, m.detail)
                for m in analysis.measure_all(job.checks)
            ]
            with db.transaction() as session:
                now = clock.now()
                deployment = machine.lock_deployment(session, job.deployment_id)
                current = machine.record_measurements(
                    session, deployment, token=job.token, run=job.run, results=results, now=now
                )
        else:
            assert job.adapter is not None and job.context is not None
            outcome = _call_adapter(job.adapter, job.context)
            if not outcome.ok:
                report.failed += 1
                log.warning(
                    "deploys.action_failed",
                    deployment=job.deployment_id,
                    action=str(job.action),
                    attempt=job.context.attempt,
                    detail=outcome.detail[:300],
                )
            with db.transaction() as session:
                now = clock.now()
                deployment = machine.lock_deployment(session, job.deployment_id)
                current = machine.record_adapter_result(
                    session, deployment, token=job.token, action=job.action, result=outcome, now=now
                )
        if current:
            report.performed += 1
        else:
            report.stale += 1
            log.info("deploys.stale_result", deployment=job.deployment_id, action=str(job.action))


def _call_adapter(spec: adapters.AdapterSpec, context: adapters.ActionContext) -> machine.AdapterResult:
    try:
        return machine.AdapterResult(True, adapters.perform(spec, context))
    except adapters.AdapterError as exc:
        return machine.AdapterResult(False, exc.detail, exc.permanent)
    except Exception as exc:  # an adapter bug is a failed attempt (retried), never a lost action
        log.exception("deploys.adapter_crashed", deployment=context.deployment_id, action=context.action)
        return machine.AdapterResult(False, f"{type(exc).__name__}: {exc}")


def _job(session: Session, db: Database, deployment: Deployment, now: datetime) -> Job:
    action = Action(deployment.action or "")
    token = deployment.action_token or ""
    spec = machine.parsed_spec(deployment.spec)
    if action is not Action.measure:
        return Job(
            deployment.id,
            token,
            action,
            adapter=spec.adapter,
            context=machine.action_context(deployment),
        )
    phase = deployment.analysis_phase or rules.AnalysisPhase.pre
    values = machine.template_values(deployment)
    environment = spec.environments.of(deployment.to_environment)
    since = deployment.analysis_started_at or now
    prepared = []
    for check in spec.analysis.checks_for(phase):
        if isinstance(check, HttpCheck):
            url = rules.render_template(check.url, values) if check.url else environment.health_url or ""
            prepared.append(analysis.PreparedCheck(check.name, _bind_http(check, url)))
        elif isinstance(check, PrometheusCheck):
            prepared.append(analysis.PreparedCheck(check.name, _bind_prometheus(session, check, values, now)))
        elif isinstance(check, SloBurnCheck):
            prepared.append(analysis.PreparedCheck(check.name, _bind_slo_burn(db, check, since, now)))
    return Job(deployment.id, token, action, run=deployment.analysis_run, checks=prepared)


def _bind_http(check: HttpCheck, url: str) -> analysis.MeasureFunction:
    return lambda: analysis.measure_http(check, url)


def _bind_prometheus(
    session: Session, check: PrometheusCheck, values: dict[str, str], now: datetime
) -> analysis.MeasureFunction:
    query = rules.render_template(check.query, values)
    try:
        source = slo_service.get_data_source(session, check.data_source)
        spec = DataSourceSpec.model_validate(source.spec)
    except ReliaError as exc:
        failure = analysis.Measurement(check.name, rules.Verdict.error, None, exc.detail)
        return lambda: failure
    return lambda: analysis.measure_prometheus(check, spec, query, now)


def _bind_slo_burn(db: Database, check: SloBurnCheck, since: datetime, now: datetime) -> analysis.MeasureFunction:
    def measure() -> analysis.Measurement:
        with db.reader() as session:
            return analysis.measure_slo_burn(session, check, since=since, now=now)

    return measure
