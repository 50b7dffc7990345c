"""The blue-green state machine and the analysis verdicts, as pure functions: no I/O, no database, no clock.

A deployment moves through these states (Argo Rollouts' blue-green sequence, made explicit; see
``../shared/reference/runbooks_deploy_status.md`` B2 and B3)::

    deploying -> pre_analysis -> awaiting_promotion -> switching -> post_analysis -> keeping_warm -> succeeded
                      |  inconclusive                      |              |  inconclusive
                      v                                    |              v
                    paused  (a person promotes, resumes or aborts)        paused
    abort before the switch: -> aborting -> aborted
    abort or failure after it: -> rolling_back -> rolled_back (or failed, when even that did not work)

``transition`` is the whole table: given a state, what happened, and the few facts the answer depends on, it
returns the next state or raises ``IllegalTransition``. The service applies it; it never decides a state by
itself.

Analysis follows Argo's AnalysisRun: each check takes one measurement per interval, whose verdict is
successful, failed, inconclusive or error; ``check_phase`` folds a check's verdicts against its limits and
``run_phase`` folds the checks into the run's verdict (worst first, dry-run checks ignored).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    deploying = "deploying"
    pre_analysis = "pre_analysis"
    awaiting_promotion = "awaiting_promotion"
    paused = "paused"
    switching = "switching"
    post_analysis = "post_analysis"
    keeping_warm = "keeping_warm"
    aborting = "aborting"
    rolling_back = "rolling_back"
    succeeded = "succeeded"
    aborted = "aborted"
    rolled_back = "rolled_back"
    failed = "failed"


TERMINAL = frozenset({State.succeeded, State.aborted, State.rolled_back, State.failed})
# States a person can still change with abort (the others are on their way out already).
ABORTABLE = frozenset(State) - TERMINAL - {State.aborting, State.rolling_back}


class Event(StrEnum):
    deployed = "deployed"
    deploy_failed = "deploy_failed"
    analysis_successful = "analysis_successful"
    analysis_failed = "analysis_failed"
    analysis_inconclusive = "analysis_inconclusive"
    promote = "promote"
    promotion_timed_out = "promotion_timed_out"
    resume = "resume"
    gate_blocked = "gate_blocked"
    switched = "switched"
    switch_failed = "switch_failed"
    retired = "retired"
    rolled_back = "rolled_back"
    rollback_failed = "rollback_failed"
    abort = "abort"


class AnalysisPhase(StrEnum):
    """Which analysis: before the switch (against the idle environment) or after it (against the new live one)."""

    pre = "pre"
    post = "post"


class Action(StrEnum):
    """Work with I/O that the state machine hands to the action runner (never done inside a transaction)."""

    deploy = "deploy"  # the adapter's deploy hook puts the version on the idle environment
    measure = "measure"  # one measurement of every analysis check
    switch = "switch"  # live traffic to the new environment
    rollback = "rollback"  # live traffic back to the old environment
    retire = "retire"  # the adapter's retire hook (scale down the environment that is no longer needed)


class IllegalTransition(ValueError):
    def __init__(self, state: State, event: Event, reason: str = "") -> None:
        super().__init__(reason or f"{event} does not apply to a deployment that is {state}")
        self.state = state
        self.event = event


@dataclass(frozen=True)
class Facts:
    """What some transitions depend on besides the state and the event."""

    switched: bool = False  # live traffic is on the new environment (or may be: a switch is in flight)
    paused_phase: AnalysisPhase | None = None  # which analysis a paused deployment paused in
    on_inconclusive: str = "pause"  # "pause" for a person, or "fail"
    on_promotion_timeout: str = "abort"  # what a manual promotion does when nobody decided: "abort" or "promote"


_FIXED: dict[tuple[State, Event], State] = {
    (State.deploying, Event.deployed): State.pre_analysis,
    (State.deploying, Event.deploy_failed): State.aborting,
    (State.pre_analysis, Event.analysis_successful): State.awaiting_promotion,
    (State.pre_analysis, Event.analysis_failed): State.aborting,
    (State.awaiting_promotion, Event.promote): State.switching,
    (State.switching, Event.gate_blocked): State.aborting,
    (State.switching, Event.switched): State.post_analysis,
    (State.switching, Event.switch_failed): State.rolling_back,
    (State.post_analysis, Event.analysis_successful): State.keeping_warm,
    (State.post_analysis, Event.analysis_failed): State.rolling_back,
    (State.keeping_warm, Event.retired): State.succeeded,
    (State.aborting, Event.retired): State.aborted,
    (State.rolling_back, Event.rolled_back): State.rolled_back,
    (State.rolling_back, Event.rollback_failed): State.failed,
}


def transition(state: State, event: Event, facts: Facts = Facts()) -> State:
    """The state after ``event``; IllegalTransition when the event does not apply to ``state``."""
    fixed = _FIXED.get((state, event))
    if fixed is not None:
        return fixed
    if event is Event.abort:
        if state not in ABORTABLE:
            raise IllegalTransition(state, event, _why_not_abortable(state))
        switched = facts.switched or (state is State.paused and facts.paused_phase is AnalysisPhase.post)
        return State.rolling_back if switched or state in (State.post_analysis, State.keeping_warm) else State.aborting
    if event is Event.analysis_inconclusive and state in (State.pre_analysis, State.post_analysis):
        if facts.on_inconclusive == "pause":
            return State.paused
        return State.aborting if state is State.pre_analysis else State.rolling_back
    if event is Event.promotion_timed_out and state is State.awaiting_promotion:
        return State.switching if facts.on_promotion_timeout == "promote" else State.aborting
    if state is State.paused and event in (Event.promote, Event.resume):
        if facts.paused_phase is None:
            raise IllegalTransition(state, event, "the deployment is paused outside an analysis")
        if event is Event.resume:
            return State.pre_analysis if facts.paused_phase is AnalysisPhase.pre else State.post_analysis
        return State.switching if facts.paused_phase is AnalysisPhase.pre else State.keeping_warm
    raise IllegalTransition(state, event, _refusal(state, event))


def _why_not_abortable(state: State) -> str:
    if state in TERMINAL:
        return f"the deployment has ended ({state}); there is nothing to abort"
    return f"the deployment is already {state.replace('_', ' ')}"


def _refusal(state: State, event: Event) -> str:
    """Why a person's verb does not apply now, in words they can act on."""
    if state in TERMINAL:
        return f"the deployment has ended ({state})"
    if event is Event.promote:
        return f"only a deployment awaiting promotion or paused can be promoted; this one is {_words(state)}"
    if event is Event.resume:
        return f"only a paused deployment can be resumed; this one is {_words(state)}"
    return f"{event} does not apply to a deployment that is {_words(state)}"


def _words(state: State) -> str:
    return state.replace("_", " ")


def allowed_verbs(state: State, facts: Facts = Facts()) -> list[str]:
    """The verbs a person may use now (for buttons and for the CLI's hints)."""
    verbs = []
    for verb, event in (("promote", Event.promote), ("resume", Event.resume), ("abort", Event.abort)):
        try:
            transition(state, event, facts)
        except IllegalTransition:
            continue
        verbs.append(verb)
    return verbs


def analysis_phase_of(state: State) -> AnalysisPhase | None:
    if state is State.pre_analysis:
        return AnalysisPhase.pre
    if state is State.post_analysis:
        return AnalysisPhase.post
    return None


# ------------------------------------------------------------------------------------------------- durations

_DURATION = re.compile(r"^(0|[1-9][0-9]{0,5})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_PATTERN = _DURATION.pattern


def parse_seconds(text: str) -> int:
    """``"30s"`` -> 30, ``"5m"`` -> 300, ``"0s"`` -> 0. ValueError for anything else."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h or 2d")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


# ----------------------------------------------------------------------------------------------- measurements


class Verdict(StrEnum):
    """One measurement's result."""

    successful = "successful"
    failed = "failed"
    inconclusive = "inconclusive"
    error = "error"


class Phase(StrEnum):
    """A check's (or a whole run's) result so far."""

    running = "running"
    successful = "successful"
    failed = "failed"
    inconclusive = "inconclusive"
    error = "error"


_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """``result < 0.01``, written ``"< 0.01"``."""

    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return _COMPARATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


def parse_condition(text: str) -> Condition:
    found = _CONDITION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a condition such as '< 0.01' or '>= 0.99' (operators < <= > >= == !=)")
    return Condition(found.group(1), float(found.group(2)))


def measurement_verdict(value: float, success: Condition | None, failure: Condition | None) -> Verdict:
    """Argo's rule: with both conditions, neither holding is inconclusive; with one, its opposite decides."""
    if not math.isfinite(value):
        return Verdict.inconclusive
    if success is not None and success.holds(value):
        return Verdict.successful
    if failure is not None and failure.holds(value):
        return Verdict.failed
    if success is not None and failure is not None:
        return Verdict.inconclusive
    if success is not None:
        return Verdict.failed
    if failure is not None:
        return Verdict.successful
    return Verdict.inconclusive


def burn_rate(bad: float, total: float, target: float) -> float | None:
    """How fast the error budget burns: the error ratio over the allowed one. None without events."""
    if total <= 0:
        return None
    return (bad / total) / (1.0 - target)


def burn_verdict(rate: float | None, max_burn_rate: float, *, no_data: Verdict = Verdict.error) -> Verdict:
    """Below the factor succeeds, at or above it fails; no events is ``no_data`` (never success)."""
    if rate is None:
        return no_data
    return Verdict.successful if rate < max_burn_rate else Verdict.failed


@dataclass(frozen=True)
class Limits:
    """When a check ends. ``count`` measurements that are not errors make it complete; it fails early when
    failures exceed ``failure_limit``, errs when consecutive errors exceed ``consecutive_error_limit`` and is
    inconclusive when inconclusive measurements exceed ``inconclusive_limit``."""

    count: int = 3
    failure_limit: int = 0
    consecutive_error_limit: int = 4
    inconclusive_limit: int = 0


def check_phase(verdicts: Sequence[Verdict], limits: Limits) -> Phase:
    """A check's phase after these measurements (oldest first).

    Errors do not count towards ``count``: a check whose source never answers must not pass by running out of
    measurements ("no data" is never success); the consecutive-error limit ends it instead."""
    failed = sum(1 for verdict in verdicts if verdict is Verdict.failed)
    if failed > limits.failure_limit:
        return Phase.failed
    consecutive_errors = 0
    for verdict in reversed(verdicts):
        if verdict is not Verdict.error:
            break
        consecutive_errors += 1
    if consecutive_errors > limits.consecutive_error_limit:
        return Phase.error
    inconclusive = sum(1 for verdict in verdicts if verdict is Verdict.inconclusive)
    if inconclusive > limits.inconclusive_limit:
        return Phase.inconclusive
    measured = sum(1 for verdict in verdicts if verdict is not Verdict.error)
    return Phase.successful if measured >= limits.count else Phase.running


def run_phase(checks: Iterable[tuple[Phase, bool]]) -> Phase:
    """The run's phase from each check's (phase, dry_run). The worst decides at once: failed, then error, then
    inconclusive; successful when every counted check is; running otherwise. Dry-run checks are measured and
    shown but never decide. A run without counted checks is successful."""
    counted = [phase for phase, dry_run in checks if not dry_run]
    for worst in (Phase.failed, Phase.error, Phase.inconclusive):
        if worst in counted:
            return worst
    if all(phase is Phase.successful for phase in counted):
        return Phase.successful
    return Phase.running


def analysis_event(phase: Phase) -> Event | None:
    """The state machine's event for a finished run; None while it runs. Failed and error both fail the run
    (a check that cannot be measured is no evidence of health)."""
    return {
        Phase.successful: Event.analysis_successful,
        Phase.failed: Event.analysis_failed,
        Phase.error: Event.analysis_failed,
        Phase.inconclusive: Event.analysis_inconclusive,
    }.get(phase)


# ----------------------------------------------------------------------------------------------- templating

_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z]+)\s*\}\}")
TEMPLATE_NAMES = ("service", "version", "environment", "upstream", "deployment")


def render_template(text: str, values: dict[str, str]) -> str:
    """``{{environment}}`` and friends (see TEMPLATE_NAMES) replaced; unknown names are left as written (the
    spec validation refuses them before they get here)."""
    return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), text)


def unknown_placeholders(text: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(text) if name not in TEMPLATE_NAMES})


# ------------------------------------------------------------------------------------------------- retries

ACTION_RETRY_BASE_SECONDS = 10
ACTION_RETRY_CAP_SECONDS = 300


def action_retry_delay(attempt: int) -> int:
    """Seconds before attempt ``attempt + 1`` of a failed adapter call: 10 s doubling, capped at five minutes."""
    return min(ACTION_RETRY_CAP_SECONDS, ACTION_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))


def other_environment(environment: str) -> str:
    return "green" if environment == "blue" else "blue"
