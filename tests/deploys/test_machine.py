"""The durable state machine on the simulated clock, on SQLite and PostgreSQL: the whole path, the adapter's
variables, retries, a restarted worker, manual promotion and its timeout, inconclusive pauses, and abort from
every state. Adapters are real programs (a recording script); health checks hit real HTTP servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from relia.core.db import Database
from relia.core.errors import Conflict
from relia.core.models import Timer
from relia.deploys import machine, service
from relia.deploys.models import DeployTarget
from relia.deploys.rules import Action, State
from relia.deploys.runner import ActionRunner
from relia.slo import service as slo_service
from relia.slo.schemas import EventBatch, SLOCreate
from tests.deploys import support
from tests.deploys.nginx_support import Backend
from tests.deploys.support import OPERATOR, Recorder, drive, health_check, read, start, step_types


@pytest.fixture
def backends() -> Iterator[tuple[Backend, Backend]]:
    blue, green = Backend("v1").start(), Backend("v2").start()
    yield blue, green
    blue.stop()
    green.stop()


@pytest.fixture
def recorder(tmp_path) -> Recorder:
    return Recorder.create(tmp_path / "adapter")


def make(db, clock, org, backends, recorder, **extra) -> None:
    blue, green = backends
    extra.setdefault("checks", [health_check()])
    extra.setdefault("adapter", recorder.adapter())
    target = support.spec(blue=(blue.address, blue.health_url), green=(green.address, green.health_url), **extra)
    support.make_target(db, clock, target)


def target_state(db: Database) -> DeployTarget:
    with db.reader() as session:
        return service.get_target(session, "checkout")


# ----------------------------------------------------------------------------------------------- the path


def test_a_deployment_goes_all_the_way_and_lands_on_the_timeline(db, clock, org, backends, recorder, monkeypatch):
    monkeypatch.setenv("RELIA_DATABASE_URL", "postgresql://secret@db/relia")  # must never reach a command
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock, version="v2.1.0", variables={"IMAGE_DIGEST": "sha256:abc"})

    finished = drive(db, clock, deployment_id, State.succeeded)

    assert finished.outcome == "succeeded" and finished.finished_at is not None
    assert recorder.actions() == [("deploy", "green"), ("switch", "green"), ("retire", "blue")]
    assert step_types(db, deployment_id) == [
        "deploy.started",
        "deploy.gate.checked",
        "deploy.deployed",
        "deploy.analysis.started",
        "deploy.analysis.succeeded",
        "deploy.promoted",
        "deploy.gate.checked",
        "deploy.switched",
        "deploy.analysis.started",
        "deploy.analysis.succeeded",
        "deploy.keeping_warm",
        "deploy.retired",
        "deploy.completed",
    ]
    assert support.timeline_types(db) == step_types(db, deployment_id)
    target = target_state(db)
    assert (target.live_environment, target.green_version, target.blue_version) == ("green", "v2.1.0", None)
    assert target.active_deployment_id is None
    with db.reader() as session:
        assert session.scalars(select(Timer)).all() == []
        measured = service.measurements(session, deployment_id)
    # Two measurements before the switch (against green) and two after it.
    assert [(m.phase, m.verdict) for m in measured] == [("pre", "successful")] * 2 + [("post", "successful")] * 2
    assert all("HTTP 200" in m.detail and str(backends[1].port) in m.detail for m in measured)


def test_commands_get_the_deployments_variables_and_nothing_else_of_the_workers(
    db, clock, org, backends, recorder, monkeypatch
):
    monkeypatch.setenv("RELIA_DATABASE_URL", "postgresql://secret@db/relia")
    monkeypatch.setenv("RELIA_SECRET_KEY", "do-not-leak")
    make(db, clock, org, backends, recorder)
    blue, green = backends
    deployment_id = start(db, clock, version="v2", variables={"IMAGE_DIGEST": "sha256:abc"})
    drive(db, clock, deployment_id, State.succeeded)

    deploy, switch, retire = recorder.calls()
    assert {key: value for key, value in switch.items() if key.startswith("RELIA_")} == {
        "RELIA_ACTION": "switch",
        "RELIA_DEPLOYMENT_ID": str(deployment_id),
        "RELIA_SERVICE": "checkout",
        "RELIA_TARGET": "checkout",
        "RELIA_VERSION": "v2",
        "RELIA_PREVIOUS_VERSION": "",
        "RELIA_ENVIRONMENT": "green",
        "RELIA_UPSTREAM": green.address,
        "RELIA_LIVE_ENVIRONMENT": "green",
        "RELIA_LIVE_UPSTREAM": green.address,
        "RELIA_NEW_ENVIRONMENT": "green",
        "RELIA_OLD_ENVIRONMENT": "blue",
        "RELIA_BLUE_UPSTREAM": blue.address,
        "RELIA_GREEN_UPSTREAM": green.address,
        "RELIA_ATTEMPT": "1",
        "RELIA_IDEMPOTENCY_KEY": f"relia-deployment-{deployment_id}-switch",
        "RELIA_VAR_IMAGE_DIGEST": "sha256:abc",
    }
    assert (deploy["RELIA_ENVIRONMENT"], deploy["RELIA_LIVE_ENVIRONMENT"]) == ("green", "blue")
    assert (retire["RELIA_ENVIRONMENT"], retire["RELIA_LIVE_ENVIRONMENT"]) == ("blue", "green")
    assert set(switch) - {key for key in switch if key.startswith("RELIA_")} <= {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "LC_CTYPE",
    }


def test_the_next_deployment_goes_to_the_other_environment(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, adapter=recorder.adapter(retire=False))
    drive(db, clock, start(db, clock, version="v2"), State.succeeded)
    second = start(db, clock, version="v3")
    drive(db, clock, second, State.succeeded)
    assert (read(db, second).from_environment, read(db, second).to_environment) == ("green", "blue")
    assert read(db, second).previous_version == "v2"
    target = target_state(db)
    assert (target.live_environment, target.blue_version, target.green_version) == ("blue", "v3", "v2")
    assert recorder.actions()[-2:] == [("deploy", "blue"), ("switch", "blue")]


def test_without_a_deploy_hook_the_version_is_recorded_as_deployed_by_the_pipeline(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, adapter=recorder.adapter(deploy=False, retire=False), checks=[])
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.succeeded)
    with db.reader() as session:
        summaries = [(step.type, step.summary) for step in service.steps(session, deployment_id)]
    assert "recorded as deployed by the pipeline" in dict(summaries)["deploy.deployed"]
    assert [text[:24] for kind, text in summaries if kind == "deploy.analysis.succeeded"] == [
        "No pre-promotion checks ",
        "No post-promotion checks",
    ]
    assert recorder.actions() == [("switch", "green")]


def test_keep_warm_lasts_its_delay_on_the_simulated_clock(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, keep_warm="10m", checks=[])
    deployment_id = start(db, clock)
    warm = drive(db, clock, deployment_id, State.keeping_warm)
    assert warm.warm_until == clock.now() + timedelta(minutes=10)
    clock.advance(timedelta(minutes=9, seconds=59))
    support.tick(db, clock)
    assert read(db, deployment_id).state == State.keeping_warm
    clock.advance(timedelta(seconds=1))
    support.tick(db, clock)
    assert read(db, deployment_id).state == State.succeeded


def test_one_deployment_per_service_at_a_time(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder)
    first = start(db, clock)
    with pytest.raises(Conflict, match=f"Deployment {first} of checkout is under way"):
        start(db, clock, version="v3")


# --------------------------------------------------------------------------------------- analysis failures


def test_a_failing_pre_promotion_analysis_aborts_and_nothing_switches(db, clock, org, backends, recorder):
    _, green = backends
    green.health_status = 500
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock)
    finished = drive(db, clock, deployment_id, State.aborted)
    assert "pre-promotion analysis is failed (health)" in finished.message
    assert recorder.actions() == [("deploy", "green"), ("retire", "green")]
    assert target_state(db).live_environment == "blue"
    assert "deploy.switched" not in step_types(db, deployment_id)


def test_a_failing_post_promotion_analysis_rolls_back_to_the_warm_environment(db, clock, org, backends, recorder):
    _, green = backends
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.post_analysis)
    green.health_status = 503
    finished = drive(db, clock, deployment_id, State.rolled_back)
    assert "post-promotion analysis is failed (health)" in finished.message
    assert recorder.actions() == [("deploy", "green"), ("switch", "green"), ("rollback", "blue")]
    assert target_state(db).live_environment == "blue"
    assert step_types(db, deployment_id)[-3:] == ["deploy.analysis.failed", "deploy.rolling_back", "deploy.rolled_back"]


def test_errors_in_a_row_end_the_analysis_but_errors_apart_do_not(db, clock, org, backends, recorder):
    _, green = backends
    make(db, clock, org, backends, recorder, checks=[health_check(consecutiveErrorLimit=1)], analysis={"count": 3})
    green.stop()  # nothing answers: every measurement is an error
    deployment_id = start(db, clock)
    finished = drive(db, clock, deployment_id, State.aborted)
    with db.reader() as session:
        verdicts = [m.verdict for m in service.measurements(session, deployment_id)]
    assert verdicts == ["error", "error"]
    assert "analysis is error" in finished.message


# ---------------------------------------------------------------------------------------------- inconclusive


def slo_fed_by_events(db, clock) -> None:
    with db.transaction() as session:
        slo_service.create_slo(
            session,
            actor=OPERATOR,
            data=SLOCreate.model_validate(
                {
                    "name": "checkout-green",
                    "service": "checkout",
                    "indicator": {"ratio": {}},
                    "window": {"rolling": "28d"},
                    "objectives": [{"target": 0.99}],
                }
            ),
            now=clock.now(),
        )


def push(db, clock, *, good: int, bad: int) -> None:
    events = [{"timestamp": clock.now().isoformat(), "ok": True}] * good
    events += [{"timestamp": clock.now().isoformat(), "ok": False}] * bad
    with db.transaction() as session:
        slo_service.ingest(
            session, actor=OPERATOR, name="checkout-green", batch=EventBatch.model_validate({"events": events}),
            now=clock.now(),
        )  # fmt: skip


def burn_check(**extra) -> dict:
    return {"name": "burn", "type": "sloBurn", "slo": "checkout-green", "maxBurnRate": 2, "phases": ["pre"], **extra}


def test_no_data_pauses_for_a_person_who_resumes_once_events_arrive(db, clock, org, backends, recorder):
    slo_fed_by_events(db, clock)
    make(db, clock, org, backends, recorder, checks=[burn_check(onNoData="inconclusive")])
    deployment_id = start(db, clock)
    paused = drive(db, clock, deployment_id, State.paused)
    assert (paused.paused_phase, paused.action) == ("pre", None)
    assert "inconclusive" in paused.pause_reason
    # Paused means paused: time passes, nothing happens.
    clock.advance(timedelta(hours=2))
    support.tick(db, clock)
    assert read(db, deployment_id).state == State.paused
    assert service.allowed_verbs(read(db, deployment_id)) == ["promote", "resume", "abort"]

    support.act(db, clock, deployment_id, "resume")
    resumed = read(db, deployment_id)
    assert (resumed.state, resumed.analysis_run) == (State.pre_analysis, 2)
    push(db, clock, good=999, bad=1)  # burn 0.1x, below 2x
    drive(db, clock, deployment_id, State.succeeded, on_tick=lambda _: push(db, clock, good=100, bad=0))
    types = step_types(db, deployment_id)
    assert types[types.index("deploy.paused") + 1 : types.index("deploy.paused") + 3] == [
        "deploy.resumed",
        "deploy.analysis.started",
    ]


def test_no_data_is_an_error_by_default_never_a_success(db, clock, org, backends, recorder):
    slo_fed_by_events(db, clock)
    make(db, clock, org, backends, recorder, checks=[burn_check(consecutiveErrorLimit=2)])
    deployment_id = start(db, clock)
    finished = drive(db, clock, deployment_id, State.aborted)
    with db.reader() as session:
        measured = service.measurements(session, deployment_id)
    assert {m.verdict for m in measured} == {"error"}
    assert measured[0].detail.startswith("no data: no events for SLO checkout-green")
    assert finished.outcome == "aborted"


def test_a_burning_candidate_fails_the_analysis(db, clock, org, backends, recorder):
    slo_fed_by_events(db, clock)
    make(db, clock, org, backends, recorder, checks=[burn_check()])
    deployment_id = start(db, clock)
    push(db, clock, good=90, bad=10)  # 10 % errors against a 1 % budget: burn 10x
    drive(db, clock, deployment_id, State.aborted)
    with db.reader() as session:
        first = service.measurements(session, deployment_id)[0]
    assert first.verdict == "failed" and first.value == pytest.approx(10.0)


def test_promote_from_a_pause_skips_the_rest_of_the_analysis(db, clock, org, backends, recorder):
    slo_fed_by_events(db, clock)
    make(db, clock, org, backends, recorder, checks=[burn_check(onNoData="inconclusive")])
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.paused)
    support.act(db, clock, deployment_id, "promote")
    assert read(db, deployment_id).state == State.switching
    drive(db, clock, deployment_id, State.succeeded)
    with db.reader() as session:
        promoted = [step for step in service.steps(session, deployment_id) if step.type == "deploy.promoted"]
    assert promoted[0].actor == "test-operator" and "promoted by test-operator" in promoted[0].summary


def test_inconclusive_can_be_set_to_fail_instead_of_pausing(db, clock, org, backends, recorder):
    slo_fed_by_events(db, clock)
    make(
        db, clock, org, backends, recorder, checks=[burn_check(onNoData="inconclusive")],
        analysis={"onInconclusive": "fail"},
    )  # fmt: skip
    deployment_id = start(db, clock)
    assert drive(db, clock, deployment_id, State.aborted).paused_phase is None


# -------------------------------------------------------------------------------------------- manual promotion


MANUAL = {"mode": "manual", "timeout": "30m"}


def test_manual_promotion_waits_for_a_person(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, promotion=MANUAL)
    deployment_id = start(db, clock)
    waiting = drive(db, clock, deployment_id, State.awaiting_promotion)
    assert waiting.promotion_deadline == clock.now() + timedelta(minutes=30)
    clock.advance(timedelta(minutes=20))
    support.tick(db, clock)
    assert read(db, deployment_id).state == State.awaiting_promotion
    support.act(db, clock, deployment_id, "promote")
    drive(db, clock, deployment_id, State.succeeded)
    with db.reader() as session:
        assert session.scalars(select(Timer)).all() == []


@pytest.mark.parametrize(("default", "outcome"), [("abort", "aborted"), ("promote", "succeeded")])
def test_a_manual_promotion_timeout_applies_its_stated_default(db, clock, org, backends, recorder, default, outcome):
    make(db, clock, org, backends, recorder, promotion={**MANUAL, "onTimeout": default})
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.awaiting_promotion)
    clock.advance(timedelta(minutes=29, seconds=59))
    support.tick(db, clock)
    assert read(db, deployment_id).state == State.awaiting_promotion
    clock.advance(timedelta(seconds=1))
    finished = drive(db, clock, deployment_id, lambda deployment: deployment.finished_at is not None)
    assert finished.outcome == outcome
    types = step_types(db, deployment_id)
    assert "deploy.promotion.timed_out" in types
    assert ("deploy.switched" in types) is (default == "promote")
    assert target_state(db).live_environment == ("green" if default == "promote" else "blue")


# ---------------------------------------------------------------------------------------------------- abort

CHECKS_BOTH = [health_check()]


def reach(db, clock, org, backends, recorder, state: str) -> int:
    """A deployment standing still in ``state`` (a person's decision, or an action not yet taken)."""
    if state in ("paused-pre", "paused-post"):
        slo_fed_by_events(db, clock)
        phase = state.removeprefix("paused-")
        make(db, clock, org, backends, recorder, checks=[burn_check(onNoData="inconclusive", phases=[phase])])
        deployment_id = start(db, clock)
        drive(db, clock, deployment_id, State.paused)
        return deployment_id
    promotion = MANUAL if state in ("awaiting_promotion", "switching") else None
    make(db, clock, org, backends, recorder, promotion=promotion, keep_warm="1h")
    deployment_id = start(db, clock)
    if state == "deploying":
        return deployment_id  # the deploy hook is armed, not yet run
    if state == "switching":
        drive(db, clock, deployment_id, State.awaiting_promotion)
        support.act(db, clock, deployment_id, "promote")
        return deployment_id  # the switch is armed, not yet run
    drive(db, clock, deployment_id, State(state))
    return deployment_id


@pytest.mark.parametrize(
    ("state", "outcome", "calls_after"),
    [
        ("deploying", "aborted", [("retire", "green")]),
        ("pre_analysis", "aborted", [("retire", "green")]),
        ("awaiting_promotion", "aborted", [("retire", "green")]),
        ("paused-pre", "aborted", [("retire", "green")]),
        ("switching", "aborted", [("retire", "green")]),
        ("post_analysis", "rolled_back", [("rollback", "blue")]),
        ("paused-post", "rolled_back", [("rollback", "blue")]),
        ("keeping_warm", "rolled_back", [("rollback", "blue")]),
    ],
)
def test_abort_from_every_state(db, clock, org, backends, recorder, state, outcome, calls_after):
    deployment_id = reach(db, clock, org, backends, recorder, state)
    before = len(recorder.actions())
    support.act(db, clock, deployment_id, "abort")
    finished = drive(db, clock, deployment_id, lambda deployment: deployment.finished_at is not None)
    assert finished.outcome == outcome
    assert finished.message == "aborted by test-operator"
    assert recorder.actions()[before:] == calls_after
    assert target_state(db).live_environment == "blue"
    assert target_state(db).active_deployment_id is None
    with pytest.raises(Conflict, match="has ended"):
        support.act(db, clock, deployment_id, "abort")
    with db.reader() as session:
        assert session.scalars(select(Timer)).all() == []


def test_abort_while_the_switch_runs_waits_for_it_then_rolls_back(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, promotion=MANUAL)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.awaiting_promotion)
    support.act(db, clock, deployment_id, "promote")
    runner = ActionRunner()
    job = runner.claim(db, clock)  # the switch is now under way
    assert job is not None and job.action is Action.switch
    support.act(db, clock, deployment_id, "abort")
    requested = read(db, deployment_id)
    assert (requested.state, requested.abort_requested) == (State.switching, True)
    assert service.allowed_verbs(requested) == []
    runner.perform_and_record(db, clock, job, report=runner_report())
    finished = drive(db, clock, deployment_id, lambda deployment: deployment.finished_at is not None)
    assert finished.outcome == "rolled_back"
    assert recorder.actions()[-2:] == [("switch", "green"), ("rollback", "blue")]
    assert "deploy.abort.requested" in step_types(db, deployment_id)


def test_abort_during_a_measurement_drops_its_result(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.pre_analysis)  # the first measurement is taken in the same tick
    clock.advance(timedelta(seconds=10))
    runner = ActionRunner()
    job = runner.claim(db, clock)
    assert job is not None and job.action is Action.measure
    support.act(db, clock, deployment_id, "abort")
    report = runner_report()
    runner.perform_and_record(db, clock, job, report=report)
    assert report.stale == 1
    with db.reader() as session:
        assert len(service.measurements(session, deployment_id)) == 1  # the first one only


def runner_report():
    from relia.deploys.runner import RunnerReport

    return RunnerReport()


def test_verbs_that_do_not_apply_are_refused_and_change_nothing(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.pre_analysis)
    before = read(db, deployment_id)
    with pytest.raises(Conflict, match="only a deployment awaiting promotion or paused can be promoted"):
        support.act(db, clock, deployment_id, "promote")
    with pytest.raises(Conflict, match="only a paused deployment can be resumed"):
        support.act(db, clock, deployment_id, "resume")
    after = read(db, deployment_id)
    assert (after.state, after.revision) == (before.state, before.revision)


# ---------------------------------------------------------------------------------------------- adapters


def test_a_failed_switch_is_retried_with_backoff(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, adapter=recorder.adapter(retries=2))
    recorder.fail("switch")
    deployment_id = start(db, clock)
    waiting = drive(db, clock, deployment_id, lambda deployment: deployment.action_error is not None)
    assert (waiting.action, waiting.action_attempts) == ("switch", 1)
    assert waiting.action_due_at == clock.now() + timedelta(seconds=10)
    recorder.fail("switch", False)
    finished = drive(db, clock, deployment_id, State.succeeded)
    assert finished.outcome == "succeeded"
    assert recorder.actions().count(("switch", "green")) == 2
    with db.reader() as session:
        failed = [step for step in service.steps(session, deployment_id) if step.type == "deploy.action.failed"]
    assert "attempt 1 of 3" in failed[0].summary and "switch refused on purpose" in failed[0].summary


def test_a_switch_that_keeps_failing_rolls_back(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, adapter=recorder.adapter(retries=1))
    recorder.fail("switch")
    deployment_id = start(db, clock)
    finished = drive(db, clock, deployment_id, lambda deployment: deployment.finished_at is not None)
    assert finished.outcome == "rolled_back"
    assert "the switch failed" in finished.message
    assert recorder.actions()[-3:] == [("switch", "green"), ("switch", "green"), ("rollback", "blue")]


def test_a_rollback_that_fails_ends_in_failed_and_says_so(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.post_analysis)
    recorder.fail("rollback")
    support.act(db, clock, deployment_id, "abort")
    finished = drive(db, clock, deployment_id, State.failed)
    assert finished.outcome == "failed"
    with db.reader() as session:
        last = service.steps(session, deployment_id)[-1]
    assert last.type == "deploy.failed" and "switch by hand" in last.summary
    assert target_state(db).live_environment == "green"  # where the switch left it: the rollback never happened


def test_a_missing_program_fails_at_once_without_retries(db, clock, org, backends, recorder):
    adapter = {**recorder.adapter(retries=5), "deploy": ["/nonexistent/deploy-tool"]}
    make(db, clock, org, backends, recorder, adapter=adapter)
    deployment_id = start(db, clock)
    finished = drive(db, clock, deployment_id, State.aborted)
    assert "no such program" in finished.message
    assert read(db, deployment_id).action_attempts == 0


# -------------------------------------------------------------------------------------------- restarts


def test_a_restarted_worker_resumes_at_every_state(db, clock, org, backends, recorder, database_url):
    """Every tick runs on a new database connection pool and a new runner: nothing lives in memory."""
    make(db, clock, org, backends, recorder, promotion=MANUAL)
    deployment_id = start(db, clock)
    seen = []
    for _ in range(200):
        fresh = Database(database_url)
        try:
            support.tick(fresh, clock, ActionRunner())
            state = read(fresh, deployment_id).state
        finally:
            fresh.dispose()
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == State.awaiting_promotion:
            support.act(db, clock, deployment_id, "promote")
        if state == State.succeeded:
            break
        clock.advance(timedelta(seconds=5))
    assert seen == [
        "pre_analysis",
        "awaiting_promotion",
        "post_analysis",
        "keeping_warm",
        "succeeded",
    ]


def test_a_worker_that_dies_during_the_switch_leaves_it_to_the_next_after_its_lease(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, promotion=MANUAL)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.awaiting_promotion)
    support.act(db, clock, deployment_id, "promote")
    lost = ActionRunner().claim(db, clock)  # claimed, then the worker died before doing anything
    assert lost is not None
    claimed = read(db, deployment_id)
    assert claimed.switched  # traffic may be moving: an abort now must roll back
    support.tick(db, clock)
    assert read(db, deployment_id).action_token == claimed.action_token  # the lease holds: nobody else takes it
    clock.set(claimed.action_lease_until + timedelta(seconds=1))
    finished = drive(db, clock, deployment_id, State.succeeded)
    assert finished.outcome == "succeeded"
    with db.reader() as session:
        switched = [step for step in service.steps(session, deployment_id) if step.type == "deploy.switched"]
    assert len(switched) == 1
    assert [call["RELIA_ATTEMPT"] for call in recorder.calls() if call["RELIA_ACTION"] == "switch"] == ["2"]


def test_a_late_result_from_a_worker_that_lost_its_lease_is_dropped(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder)
    deployment_id = start(db, clock)  # the deploy hook is armed
    slow = ActionRunner()
    late = slow.claim(db, clock)
    assert late is not None and late.action is Action.deploy
    clock.set(read(db, deployment_id).action_lease_until + timedelta(seconds=1))
    drive(db, clock, deployment_id, State.pre_analysis)  # another worker took it over and finished it
    report = runner_report()
    slow.perform_and_record(db, clock, late, report=report)
    assert report.stale == 1
    assert step_types(db, deployment_id).count("deploy.deployed") == 1


def test_deadline_timers_survive_in_the_database(db, clock, org, backends, recorder):
    make(db, clock, org, backends, recorder, promotion=MANUAL)
    deployment_id = start(db, clock)
    drive(db, clock, deployment_id, State.awaiting_promotion)
    with db.reader() as session:
        [timer] = session.scalars(select(Timer)).all()
    assert (timer.kind, timer.key, timer.payload) == (
        machine.DEADLINE_TIMER,
        str(deployment_id),
        {"deployment": deployment_id},
    )
    assert timer.due_at == read(db, deployment_id).promotion_deadline
