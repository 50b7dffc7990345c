"""The pure policy rules: conditions and their hysteresis, the state machine and its cooldown, who a freeze
reaches, the gate's decision, and the velocity verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relia.policy import rules
from relia.policy.rules import (
    BudgetBelow,
    BudgetTrend,
    BurnAbove,
    CompiledPolicy,
    Exhausted,
    ObjectiveView,
    OverrideGrant,
    PageAlert,
    Phase,
    PolicyState,
    Restriction,
    SloBudget,
    Transition,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def view(remaining: float | None = 0.5, **extra) -> ObjectiveView:  # type: ignore[no-untyped-def]
    return ObjectiveView(
        objective_id=extra.pop("objective_id", 1),
        service_id=1,
        slo=extra.pop("slo", "checkout-availability"),
        objective=extra.pop("objective", "default"),
        budget_remaining=remaining,
        **extra,
    )


# ------------------------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("condition", "objective", "holds"),
    [
        (BudgetBelow(0.25), view(0.2), True),
        (BudgetBelow(0.25), view(0.25), False),
        (BudgetBelow(0.25), view(None), False),  # no data is no evidence
        (Exhausted(), view(0.0), True),
        (Exhausted(), view(-0.4), True),
        (Exhausted(), view(0.01), False),
        (Exhausted(), view(None), False),
        (BurnAbove(60, 14.4), view(burn_rates={60: 15.0}), True),
        (BurnAbove(60, 14.4), view(burn_rates={60: 14.4}), False),
        (BurnAbove(60, 14.4), view(burn_rates={360: 20.0}), False),  # another window
        (BurnAbove(60, 14.4), view(burn_rates={60: None}), False),
        (PageAlert(), view(page_active=True), True),
        (PageAlert(), view(page_active=False), False),
    ],
)
def test_conditions(condition, objective, holds):
    assert (rules.condition_holds(condition, objective, now=NOW, engaged=False) is not None) is holds


def test_exhausted_within_a_trailing_window_remembers_the_last_exhaustion():
    condition = Exhausted(within_minutes=28 * 1440)
    recovered = view(0.8, last_exhausted_at=NOW - timedelta(days=27))
    assert "within the last 4w" in (rules.condition_holds(condition, recovered, now=NOW, engaged=False) or "")
    long_ago = view(0.8, last_exhausted_at=NOW - timedelta(days=29))
    assert rules.condition_holds(condition, long_ago, now=NOW, engaged=False) is None
    assert rules.condition_holds(condition, view(-0.1), now=NOW, engaged=False) is not None


def test_hysteresis_keeps_an_engaged_condition_until_past_the_margin():
    below = BudgetBelow(0.25)
    assert rules.condition_holds(below, view(0.27), now=NOW, engaged=False) is None
    assert rules.condition_holds(below, view(0.27), now=NOW, engaged=True, margin=0.05) is not None
    assert rules.condition_holds(below, view(0.30), now=NOW, engaged=True, margin=0.05) is None
    exhausted = Exhausted()
    assert rules.condition_holds(exhausted, view(0.03), now=NOW, engaged=True, margin=0.05) is not None
    assert rules.condition_holds(exhausted, view(0.06), now=NOW, engaged=True, margin=0.05) is None
    burn = BurnAbove(60, 10)
    assert rules.condition_holds(burn, view(burn_rates={60: 9.6}), now=NOW, engaged=True, margin=0.05) is not None
    assert rules.condition_holds(burn, view(burn_rates={60: 9.4}), now=NOW, engaged=True, margin=0.05) is None


def test_matching_any_or_all_conditions_of_the_same_objective():
    low = view(0.1, objective_id=1, slo="a")
    burning = view(0.9, objective_id=2, slo="b", burn_rates={60: 20.0})
    both = view(0.1, objective_id=3, slo="c", burn_rates={60: 20.0})
    conditions = (BudgetBelow(0.25), BurnAbove(60, 10))
    any_policy = CompiledPolicy("p", conditions)
    all_policy = CompiledPolicy("p", conditions, match_all=True)
    assert [m.slo for m in rules.match_objectives(any_policy, [low, burning, both], now=NOW, engaged=False)] == [
        "a",
        "b",
        "c",
    ]
    matched = rules.match_objectives(all_policy, [low, burning, both], now=NOW, engaged=False)
    assert [m.slo for m in matched] == ["c"] and len(matched[0].reasons) == 2
    only_b = CompiledPolicy("p", conditions, slos=frozenset({"b"}))
    assert [m.slo for m in rules.match_objectives(only_b, [low, burning], now=NOW, engaged=False)] == ["b"]


# ---------------------------------------------------------------------------------------- state machine


def test_a_policy_triggers_cools_down_and_clears_after_the_cooldown():
    step = rules.advance(None, True, now=NOW, cooldown=HOUR)
    assert step.transition == Transition.triggered and step.state == PolicyState(Phase.active, NOW, NOW)
    assert rules.advance(step.state, True, now=NOW + HOUR, cooldown=HOUR).transition is None
    cooling = rules.advance(step.state, False, now=NOW + 2 * HOUR, cooldown=HOUR)
    assert cooling.transition == Transition.cooling
    assert cooling.state is not None and cooling.state.cooling_until == NOW + 3 * HOUR
    assert cooling.state.triggered_at == NOW
    still = rules.advance(cooling.state, False, now=NOW + 3 * HOUR - timedelta(seconds=1), cooldown=HOUR)
    assert still.transition is None and still.state == cooling.state
    cleared = rules.advance(cooling.state, False, now=NOW + 3 * HOUR, cooldown=HOUR)
    assert cleared == rules.Step(None, Transition.cleared)


def test_coming_back_during_the_cooldown_keeps_the_actions_without_starting_again():
    active = rules.advance(None, True, now=NOW, cooldown=HOUR).state
    cooling = rules.advance(active, False, now=NOW + HOUR, cooldown=HOUR).state
    back = rules.advance(cooling, True, now=NOW + HOUR + timedelta(minutes=30), cooldown=HOUR)
    assert back.transition == Transition.retriggered
    assert back.state is not None and back.state.phase == Phase.active and back.state.triggered_at == NOW


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=90)), min_size=1, max_size=80))
def test_actions_start_and_end_at_most_once_per_cooldown(samples):
    """Whatever the condition does, the actions (triggered ... cleared) never start again within a cooldown of
    ending, every clear follows a stretch of at least a cooldown without the condition, and running a step
    twice at the same instant changes nothing."""
    cooldown = HOUR
    state: PolicyState | None = None
    now = NOW
    last_cleared: datetime | None = None
    last_held: datetime | None = None
    for holds, minutes in samples:
        now += timedelta(minutes=minutes)
        step = rules.advance(state, holds, now=now, cooldown=cooldown)
        again = rules.advance(step.state, holds, now=now, cooldown=cooldown)
        assert again.state == step.state and again.transition is None
        if holds:
            last_held = now
        if step.transition == Transition.cleared:
            assert last_held is not None and now - last_held >= cooldown
            last_cleared = now
        if step.transition == Transition.triggered and last_cleared is not None:
            assert now > last_cleared
        assert (step.state is None) == (step.transition == Transition.cleared or (state is None and not holds))
        state = step.state


# ------------------------------------------------------------------------------------------------- reach


def test_dependents_directly_or_transitively():
    graph = {1: [2, 3], 2: [4], 4: [1]}  # 4 depends on 2, which depends on 1; a cycle back to 1 is ignored
    assert rules.dependents_of(1, graph, transitive=False) == [2, 3]
    assert rules.dependents_of(1, graph, transitive=True) == [2, 3, 4]
    assert rules.dependents_of(3, graph, transitive=True) == []


# -------------------------------------------------------------------------------------------------- gate

FREEZE = Restriction(
    "freeze",
    "default",
    "checkout",
    frozenset(rules.DEFAULT_EXEMPTIONS),
    (SloBudget("checkout-availability", "default", -0.3),),
)
GRANT = OverrideGrant(7, NOW + HOUR, "alice", "hotfix for the outage")


def decide(restrictions, change_type="feature", override=None, service="checkout", lowest=None):  # type: ignore[no-untyped-def]
    return rules.decide(
        service=service,
        version="v2",
        change_type=change_type,
        phase="pre_deploy",
        restrictions=restrictions,
        override=override,
        lowest=lowest,
    )


def test_nothing_in_force_allows_and_names_the_least_budget():
    decision = decide([], lowest=SloBudget("checkout-availability", "default", 0.42))
    assert decision.decision == "allow" and decision.allowed
    [reason] = decision.reasons
    assert reason.code == "no-restrictions" and reason.slo == "checkout-availability"
    assert reason.budget_remaining == 0.42 and "42 %" in reason.message


@pytest.mark.parametrize("change_type", ["feature", "fix", "config", "my-own-type"])
def test_a_freeze_blocks_what_is_not_exempt(change_type):
    decision = decide([FREEZE], change_type)
    assert decision.decision == "block" and not decision.allowed
    [reason] = decision.reasons
    assert (reason.code, reason.policy, reason.slo, reason.budget_remaining) == (
        "frozen",
        "default",
        "checkout-availability",
        -0.3,
    )
    assert "exhausted" in reason.message and "p0-fix, rollback, security" in reason.message


@pytest.mark.parametrize("change_type", rules.DEFAULT_EXEMPTIONS)
def test_exempt_changes_pass_a_freeze_with_a_warning(change_type):
    decision = decide([FREEZE], change_type)
    assert decision.decision == "warn" and decision.exempt and decision.reasons[0].code == "exempt"


def test_an_override_lets_the_version_through_a_freeze_with_a_warning_and_through_an_approval():
    frozen = decide([FREEZE], override=GRANT)
    assert frozen.decision == "warn" and frozen.override_id == 7 and frozen.reasons[0].override == 7
    approval = Restriction("approval", "strict", "checkout", frozenset())
    assert decide([approval]).decision == "block"
    assert decide([approval]).reasons[0].code == "approval-required"
    approved = decide([approval], override=GRANT)
    assert approved.decision == "allow" and approved.reasons[0].code == "approved"


def test_the_worst_restriction_decides_and_every_reason_is_given():
    warning = Restriction("warn", "caution", "checkout", frozenset())
    upstream = Restriction("freeze", "strict", "payments-api", frozenset({"security"}))
    decision = decide([warning, upstream], service="checkout")
    assert decision.decision == "block"
    assert [reason.code for reason in decision.reasons] == ["frozen", "policy-warning"]
    assert "through payments-api, which checkout depends on" in decision.reasons[0].message
    assert decide([warning]).decision == "warn"


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["freeze", "approval", "warn"]), max_size=4),
    change_type=st.sampled_from(["feature", "security", "p0-fix", "rollback", "docs"]),
    with_override=st.booleans(),
)
def test_gate_decision_properties(kinds, change_type, with_override):
    restrictions = [Restriction(kind, f"p{index}", "svc", frozenset({"security"})) for index, kind in enumerate(kinds)]
    decision = decide(restrictions, change_type, GRANT if with_override else None, service="svc")
    blocking = [k for k in kinds if k in ("freeze", "approval")]
    if blocking and change_type != "security" and not with_override:
        assert decision.decision == "block"
    elif not kinds:
        assert decision.decision == "allow"
    else:
        assert decision.decision in ("allow", "warn")
    # A freeze never answers a plain allow, and every restriction gives a reason.
    if "freeze" in kinds:
        assert decision.decision != "allow"
    assert len(decision.reasons) == max(1, len(kinds))
    assert rules.exit_code(decision.decision) == (1 if decision.decision == "block" else 0)


# ---------------------------------------------------------------------------------------------- velocity


def trend(now, start, slo="a"):  # type: ignore[no-untyped-def]
    return BudgetTrend(slo, "default", now, start)


@pytest.mark.parametrize(
    ("budgets", "frozen", "frozen_now", "expected", "words"),
    [
        ([trend(0.9, 0.95), trend(0.7, 0.75, "b")], 0, False, "faster", "room to ship faster"),
        ([trend(0.6, 0.9)], 0, False, "on-track", "not enough to speed up"),
        ([trend(0.45, 0.5)], 0, False, "on-track", "45 %"),
        ([trend(0.9, 0.9)], 600, False, "on-track", "frozen for"),
        ([trend(-0.1, 0.4)], 0, False, "slow-down", "exhausted"),
        ([trend(0.2, 0.3)], 0, False, "slow-down", "only 20 %"),
        ([trend(0.4, 0.9)], 0, False, "slow-down", "runs out within another period"),
        ([trend(0.9, 0.9)], 0, True, "slow-down", "frozen"),
        ([trend(0.9, 0.9)], 3000, False, "slow-down", "frozen for"),
        ([trend(None, None)], 0, False, "unknown", "nothing to judge"),
        ([], 0, False, "unknown", "nothing to judge"),
    ],
)
def test_velocity_verdicts(budgets, frozen, frozen_now, expected, words):
    verdict, reason = rules.verdict(
        service="checkout", budgets=budgets, frozen_minutes=frozen, period_minutes=10080, frozen_now=frozen_now
    )
    assert verdict == expected and words in reason


@given(
    st.lists(st.tuples(st.floats(-2, 1, allow_nan=False), st.floats(-2, 1, allow_nan=False)), min_size=1, max_size=6)
)
def test_an_exhausted_budget_always_says_slow_down(values):
    budgets = [trend(now, start, f"s{index}") for index, (now, start) in enumerate(values)]
    verdict, _ = rules.verdict(service="svc", budgets=budgets, frozen_minutes=0, period_minutes=10080, frozen_now=False)
    if min(now for now, _ in values) <= 0:
        assert verdict == "slow-down"
    if verdict == "faster":
        assert min(now for now, _ in values) >= rules.ROOM_ABOVE


def test_words():
    assert rules.percent(0.5) == "50 %" and rules.percent(-0.125) == "-12.5 %" and rules.percent(-0.0001) == "0 %"
    assert rules.format_minutes(40320) == "4w" and rules.format_minutes(90) == "90m"
    assert rules.condition_text(BurnAbove(60, 14.4)) == "burn rate over 1h above 14.4x"
    assert rules.condition_text(Exhausted(40320)) == "budget exhausted within the last 4w"
    assert (
        rules.trend_word(-0.2) == "falling"
        and rules.trend_word(0.01) == "steady"
        and rules.trend_word(None) == "unknown"
    )
    assert rules.burn_rate(90, 100, 0.99) == pytest.approx(10.0) and rules.burn_rate(0, 0, 0.99) is None


def test_one_policy_through_many_dependencies_is_one_reason_naming_them_worst_first():
    def through(cause: str, budget: float) -> Restriction:
        return Restriction(
            "freeze", "strict", cause, frozenset({"security"}), slos=(SloBudget(f"{cause}-avail", "default", budget),)
        )

    upstream = [through("auth", -0.1), through("payments-api", -0.5), through("search", 0.05), through("ledger", 0.2)]
    own = Restriction("freeze", "strict", "checkout", frozenset({"security"}))
    decision = decide([*upstream, own], service="checkout")
    assert decision.decision == "block"
    mine, theirs = decision.reasons
    assert mine.services == ("checkout",) and "through" not in mine.message
    assert theirs.services == ("payments-api", "auth", "search", "ledger")
    assert (theirs.service, theirs.slo, theirs.budget_remaining) == ("payments-api", "payments-api-avail", -0.5)
    assert "through 4 services checkout depends on: payments-api, auth, search and 1 more" in theirs.message


def test_a_group_recovers_only_when_every_cause_cools_down_and_exempts_only_what_all_grant():
    cooling = Restriction("freeze", "strict", "auth", frozenset({"security", "p0-fix"}), lifts_at=NOW + HOUR)
    later = Restriction("freeze", "strict", "ledger", frozenset({"security"}), lifts_at=NOW + 2 * HOUR)
    engaged = Restriction("freeze", "strict", "search", frozenset({"security"}))
    [reason] = decide([cooling, later], service="checkout").reasons
    assert f"lifts at {NOW + 2 * HOUR:%Y-%m-%d %H:%M}" in reason.message
    assert "recovering" not in decide([cooling, engaged], service="checkout").reasons[0].message
    assert decide([cooling, later], "p0-fix", service="checkout").decision == "block"
    assert decide([cooling, later], "security", service="checkout").decision == "warn"
