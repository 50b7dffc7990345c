"""The pure state machine and analysis verdicts of ``relia.deploys.rules``."""

from __future__ import annotations

import itertools

import pytest

from relia.deploys import rules
from relia.deploys.rules import AnalysisPhase, Event, Facts, Phase, State, Verdict

S, V = Verdict.successful, Verdict.failed
INC, E = Verdict.inconclusive, Verdict.error


# ------------------------------------------------------------------------------------------- the happy path


def test_the_happy_path_visits_every_step_in_order():
    path = [
        (State.deploying, Event.deployed, State.pre_analysis),
        (State.pre_analysis, Event.analysis_successful, State.awaiting_promotion),
        (State.awaiting_promotion, Event.promote, State.switching),
        (State.switching, Event.switched, State.post_analysis),
        (State.post_analysis, Event.analysis_successful, State.keeping_warm),
        (State.keeping_warm, Event.retired, State.succeeded),
    ]
    for before, event, after in path:
        assert rules.transition(before, event) is after


@pytest.mark.parametrize(
    ("state", "event", "facts", "after"),
    [
        (State.deploying, Event.deploy_failed, Facts(), State.aborting),
        (State.pre_analysis, Event.analysis_failed, Facts(), State.aborting),
        (State.post_analysis, Event.analysis_failed, Facts(switched=True), State.rolling_back),
        (State.switching, Event.gate_blocked, Facts(), State.aborting),
        (State.switching, Event.switch_failed, Facts(switched=True), State.rolling_back),
        (State.aborting, Event.retired, Facts(), State.aborted),
        (State.rolling_back, Event.rolled_back, Facts(), State.rolled_back),
        (State.rolling_back, Event.rollback_failed, Facts(), State.failed),
    ],
)
def test_failures_before_the_switch_abort_and_after_it_roll_back(state, event, facts, after):
    assert rules.transition(state, event, facts) is after


# ------------------------------------------------------------------------------------------- inconclusive


@pytest.mark.parametrize("state", [State.pre_analysis, State.post_analysis])
def test_inconclusive_pauses_for_a_person_by_default(state):
    assert rules.transition(state, Event.analysis_inconclusive, Facts()) is State.paused


def test_inconclusive_can_fail_instead():
    fail = Facts(on_inconclusive="fail")
    assert rules.transition(State.pre_analysis, Event.analysis_inconclusive, fail) is State.aborting
    assert rules.transition(State.post_analysis, Event.analysis_inconclusive, fail) is State.rolling_back


@pytest.mark.parametrize(
    ("phase", "event", "after"),
    [
        (AnalysisPhase.pre, Event.promote, State.switching),
        (AnalysisPhase.pre, Event.resume, State.pre_analysis),
        (AnalysisPhase.pre, Event.abort, State.aborting),
        (AnalysisPhase.post, Event.promote, State.keeping_warm),
        (AnalysisPhase.post, Event.resume, State.post_analysis),
        (AnalysisPhase.post, Event.abort, State.rolling_back),
    ],
)
def test_a_paused_deployment_leaves_by_promote_resume_or_abort(phase, event, after):
    assert rules.transition(State.paused, event, Facts(paused_phase=phase)) is after


def test_pause_without_a_phase_is_refused():
    with pytest.raises(rules.IllegalTransition):
        rules.transition(State.paused, Event.resume, Facts())


# -------------------------------------------------------------------------------------------- promotion


def test_a_manual_promotion_that_times_out_applies_its_stated_default():
    assert rules.transition(State.awaiting_promotion, Event.promotion_timed_out, Facts()) is State.aborting
    promote = Facts(on_promotion_timeout="promote")
    assert rules.transition(State.awaiting_promotion, Event.promotion_timed_out, promote) is State.switching


# ------------------------------------------------------------------------------------------------- abort


@pytest.mark.parametrize(
    ("state", "facts", "after"),
    [
        (State.deploying, Facts(), State.aborting),
        (State.pre_analysis, Facts(), State.aborting),
        (State.awaiting_promotion, Facts(), State.aborting),
        (State.paused, Facts(paused_phase=AnalysisPhase.pre), State.aborting),
        (State.switching, Facts(), State.aborting),
        (State.switching, Facts(switched=True), State.rolling_back),
        (State.post_analysis, Facts(switched=True), State.rolling_back),
        (State.paused, Facts(switched=True, paused_phase=AnalysisPhase.post), State.rolling_back),
        (State.keeping_warm, Facts(switched=True), State.rolling_back),
    ],
)
def test_abort_from_every_live_state(state, facts, after):
    assert rules.transition(state, Event.abort, facts) is after


@pytest.mark.parametrize("state", [*sorted(rules.TERMINAL), State.aborting, State.rolling_back])
def test_abort_is_refused_once_it_is_over_or_on_its_way_out(state):
    with pytest.raises(rules.IllegalTransition, match=r"ended|already"):
        rules.transition(state, Event.abort, Facts())


def test_terminal_states_accept_nothing():
    for state, event in itertools.product(rules.TERMINAL, Event):
        with pytest.raises(rules.IllegalTransition):
            rules.transition(state, event, Facts(paused_phase=AnalysisPhase.pre))


def test_every_state_except_the_ends_has_a_way_forward():
    reachable_from = {
        state
        for state, event in itertools.product(State, Event)
        for facts in (Facts(), Facts(paused_phase=AnalysisPhase.pre))
        if _applies(state, event, facts)
    }
    assert reachable_from == set(State) - rules.TERMINAL


def _applies(state: State, event: Event, facts: Facts) -> bool:
    try:
        rules.transition(state, event, facts)
    except rules.IllegalTransition:
        return False
    return True


def test_refusals_say_what_applies_instead():
    with pytest.raises(rules.IllegalTransition, match="only a deployment awaiting promotion or paused"):
        rules.transition(State.post_analysis, Event.promote, Facts())
    with pytest.raises(rules.IllegalTransition, match="only a paused deployment can be resumed"):
        rules.transition(State.awaiting_promotion, Event.resume, Facts())


def test_allowed_verbs():
    assert rules.allowed_verbs(State.awaiting_promotion) == ["promote", "abort"]
    assert rules.allowed_verbs(State.paused, Facts(paused_phase=AnalysisPhase.pre)) == ["promote", "resume", "abort"]
    assert rules.allowed_verbs(State.post_analysis, Facts(switched=True)) == ["abort"]
    assert rules.allowed_verbs(State.succeeded) == []


# ------------------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(("text", "seconds"), [("0s", 0), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800)])
def test_durations(text, seconds):
    assert rules.parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1.5m", "-1s", "01m", "5 m", "1w"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        rules.parse_seconds(text)


# ------------------------------------------------------------------------------------------------ conditions


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [("< 0.01", 0.005, True), ("<0.01", 0.01, False), ("<= 0.01", 0.01, True), (">= 99", 99, True),
     ("> 1e-3", 0.002, True), ("== 0", 0.0, True), ("!= 0", 0.0, False), ("< -1", -2, True)],
)  # fmt: skip
def test_conditions(text, value, holds):
    assert rules.parse_condition(text).holds(value) is holds


@pytest.mark.parametrize("text", ["0.01", "<", "< abc", "=< 1", "< 1 and > 0", ""])
def test_bad_conditions(text):
    with pytest.raises(ValueError):
        rules.parse_condition(text)


def test_measurement_verdict_follows_argo():
    below, above = rules.parse_condition("< 0.01"), rules.parse_condition("> 0.05")
    assert rules.measurement_verdict(0.001, below, above) is S
    assert rules.measurement_verdict(0.1, below, above) is V
    assert rules.measurement_verdict(0.03, below, above) is INC  # neither holds
    assert rules.measurement_verdict(0.03, below, None) is V  # only success: its opposite fails
    assert rules.measurement_verdict(0.03, None, above) is S  # only failure: its opposite succeeds
    assert rules.measurement_verdict(float("nan"), below, above) is INC


def test_burn_rate_and_its_verdict():
    assert rules.burn_rate(1, 1000, 0.999) == pytest.approx(1.0)
    assert rules.burn_rate(0, 0, 0.999) is None
    assert rules.burn_verdict(1.9, 2) is S
    assert rules.burn_verdict(2.0, 2) is V
    assert rules.burn_verdict(None, 2) is E  # no data is never success
    assert rules.burn_verdict(None, 2, no_data=INC) is INC


# ------------------------------------------------------------------------------------------------ check phases


LIMITS = rules.Limits(count=3, failure_limit=1, consecutive_error_limit=2, inconclusive_limit=0)


@pytest.mark.parametrize(
    ("verdicts", "phase"),
    [
        ([], Phase.running),
        ([S, S], Phase.running),
        ([S, S, S], Phase.successful),
        ([S, V, S], Phase.successful),  # one failure is within the limit
        ([S, V, V], Phase.failed),  # the second is not, and ends the check at once
        ([E, E], Phase.running),
        ([E, E, E], Phase.error),  # three errors in a row exceed the limit of two
        ([E, E, S, E, E, S, S], Phase.successful),  # errors apart are tolerated, and do not count as measurements
        ([INC], Phase.inconclusive),
    ],
)
def test_check_phase(verdicts, phase):
    assert rules.check_phase(verdicts, LIMITS) is phase


def test_a_check_that_only_errs_never_passes():
    limits = rules.Limits(count=1, consecutive_error_limit=100)
    assert rules.check_phase([E] * 100, limits) is Phase.running
    assert rules.check_phase([E] * 101, limits) is Phase.error


@pytest.mark.parametrize(
    ("checks", "phase"),
    [
        ([], Phase.successful),
        ([(Phase.successful, False), (Phase.successful, False)], Phase.successful),
        ([(Phase.successful, False), (Phase.running, False)], Phase.running),
        ([(Phase.failed, False), (Phase.running, False)], Phase.failed),  # the worst decides at once
        ([(Phase.error, False), (Phase.inconclusive, False)], Phase.error),
        ([(Phase.failed, False), (Phase.error, False)], Phase.failed),
        ([(Phase.inconclusive, False), (Phase.successful, False)], Phase.inconclusive),
        ([(Phase.failed, True), (Phase.successful, False)], Phase.successful),  # dry run never decides
        ([(Phase.running, True)], Phase.successful),
    ],
)
def test_run_phase(checks, phase):
    assert rules.run_phase(checks) is phase


def test_analysis_events():
    assert rules.analysis_event(Phase.running) is None
    assert rules.analysis_event(Phase.successful) is Event.analysis_successful
    assert rules.analysis_event(Phase.failed) is Event.analysis_failed
    assert rules.analysis_event(Phase.error) is Event.analysis_failed
    assert rules.analysis_event(Phase.inconclusive) is Event.analysis_inconclusive


# ---------------------------------------------------------------------------------------------------- misc


def test_templates():
    values = {"environment": "green", "version": "v2"}
    assert (
        rules.render_template('up{color="{{environment}}", v="{{ version }}"}', values) == 'up{color="green", v="v2"}'
    )
    assert rules.render_template("{{nope}}", values) == "{{nope}}"
    assert rules.unknown_placeholders("{{environment}} {{colour}} {{ x }}") == ["colour", "x"]


def test_retry_delays_double_and_are_capped():
    assert [rules.action_retry_delay(attempt) for attempt in (1, 2, 3, 4, 10)] == [10, 20, 40, 80, 300]


def test_other_environment():
    assert rules.other_environment("blue") == "green"
    assert rules.other_environment("green") == "blue"
