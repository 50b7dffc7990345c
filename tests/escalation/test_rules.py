"""The pure escalation rules: compiling a policy into stages, where an escalation goes next, the preview, and
the cross-step checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relia.escalation import rules
from relia.escalation.rules import Move, Position, Targets

SPEC = {
    "repeat": 2,
    "ackTimeout": "30m",
    "steps": [
        {"wait": "1m"},
        {"notify": {"users": ["ada"]}},
        {"notify": {"schedules": ["primary"]}},
        {"wait": "5m"},
        {"notify": {"teams": ["platform"], "users": ["kiri"]}},
        {"wait": "15m"},
    ],
}


def test_compile_adds_up_waits_in_front_of_each_notify_step():
    plan = rules.compile_plan(SPEC)
    assert [(stage.step_index, stage.delay_before) for stage in plan.stages] == [(1, 60), (2, 0), (4, 300)]
    assert (plan.trailing_wait, plan.repeat, plan.ack_timeout) == (900, 2, 1800)
    assert plan.stages[2].targets == Targets(users=("kiri",), teams=("platform",))
    assert plan.stages[2].targets.describe() == "kiri; team platform"


def test_moves_through_stages_and_repeats_then_stops():
    plan = rules.compile_plan(SPEC)
    assert rules.first_move(plan) == Move(Position(0, 0), 60)
    assert rules.next_move(plan, Position(0, 0)) == Move(Position(1, 0), 0)
    assert rules.next_move(plan, Position(1, 0)) == Move(Position(2, 0), 300)
    assert rules.next_move(plan, Position(2, 0)) == Move(Position(0, 1), 900 + 60), "trailing wait, then leading"
    assert rules.next_move(plan, Position(2, 2)) is None


def test_preview_times_every_stage():
    rows = rules.preview(rules.compile_plan(SPEC))
    assert [(row.offset, row.stage.step_index, row.repeat) for row in rows] == [
        (60, 1, 0),
        (60, 2, 0),
        (360, 4, 0),
        (1320, 1, 1),
        (1320, 2, 1),
        (1620, 4, 1),
        (2580, 1, 2),
        (2580, 2, 2),
        (2880, 4, 2),
    ]


def test_a_plan_without_notify_steps_is_refused():
    with pytest.raises(ValueError, match="at least one notify step"):
        rules.compile_plan({"steps": [{"wait": "5m"}]})


def test_spec_problems():
    assert rules.spec_problems([{"wait": "5m"}], 0) == [
        ("steps", "add at least one notify step: a policy that notifies nobody pages nobody")
    ]
    assert rules.spec_problems([{"notify": {}}, {"wait": "1m"}, {"wait": "2m"}], 0) == [
        ("steps.2", "two waits in a row: merge them into one")
    ]
    assert rules.spec_problems([{"notify": {}}], 1) == [
        ("steps.0", "a policy that repeats must end with a wait, or the repeat would page again at once")
    ]
    assert rules.spec_problems([{"notify": {}}, {"wait": "1m"}], 3) == []


step = st.one_of(
    st.builds(lambda m: {"wait": f"{m}m"}, st.integers(min_value=1, max_value=600)),
    st.just({"notify": {"users": ["someone"]}}),
)


@given(st.lists(step, min_size=1, max_size=12), st.integers(min_value=0, max_value=4))
def test_every_notify_step_runs_once_per_repeat_and_time_only_moves_forward(steps, repeat):
    if not any("notify" in item for item in steps):
        return
    plan = rules.compile_plan({"steps": steps, "repeat": repeat})
    rows = rules.preview(plan)
    notify_indexes = [index for index, item in enumerate(steps) if "notify" in item]
    assert len(rows) == len(notify_indexes) * (repeat + 1)
    for number in range(repeat + 1):
        assert [row.stage.step_index for row in rows if row.repeat == number] == notify_indexes
    offsets = [row.offset for row in rows]
    assert offsets == sorted(offsets)
