"""Pure escalation logic: durations, compiling a policy's steps into notify stages, and where an escalation
goes next. No I/O, no database, no clock: the service passes ``now`` and stores what these functions return.

A policy is an ordered list of steps, each either ``wait`` or ``notify``. Compiled, it becomes *stages*: one per
notify step, each with the time to wait before it (the waits in front of it added up). An escalation's position
is (stage, repeat); after the last stage it starts again from the first, ``repeat`` times, after the policy's
trailing wait. The stage keeps the index of its step in the policy, which is what people see ("step 3") and
what step runs are keyed by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relia.notify.rules import parse_duration


@dataclass(frozen=True)
class Targets:
    """Who a notify step pages: named users, whoever is on call in the named schedules at that moment, and the
    members of the named teams."""

    users: tuple[str, ...] = ()
    schedules: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.users:
            parts.append(", ".join(self.users))
        if self.schedules:
            parts.append(", ".join(f"on call in {name}" for name in self.schedules))
        if self.teams:
            parts.append(", ".join(f"team {name}" for name in self.teams))
        return "; ".join(parts) or "nobody"


@dataclass(frozen=True)
class Stage:
    step_index: int  # the notify step's index in the policy's steps (0-based)
    targets: Targets
    delay_before: int  # seconds to wait after the previous stage (or the start) before this one


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]
    trailing_wait: int  # seconds after the last stage before a repeat starts
    repeat: int  # how many more times the whole list runs after the first time
    ack_timeout: int | None  # seconds an acknowledgement holds before the group is paged again


@dataclass(frozen=True)
class Position:
    stage: int
    repeat: int


@dataclass(frozen=True)
class Move:
    """Where the escalation goes next and how long after the stage that just ran."""

    position: Position
    delay: int


def compile_plan(spec: Mapping[str, Any]) -> Plan:
    """A policy spec (the camelCase JSON stored with the policy and in each group's snapshot) as a Plan.

    The schema guarantees at least one notify step; a plan without one would page nobody, so it is refused
    here too rather than silently accepted."""
    stages: list[Stage] = []
    waited = 0
    for index, step in enumerate(spec.get("steps", [])):
        if "wait" in step:
            waited += parse_duration(step["wait"])
            continue
        notify = step["notify"]
        targets = Targets(
            users=tuple(notify.get("users", ())),
            schedules=tuple(notify.get("schedules", ())),
            teams=tuple(notify.get("teams", ())),
        )
        stages.append(Stage(step_index=index, targets=targets, delay_before=waited))
        waited = 0
    if not stages:
        raise ValueError("an escalation policy needs at least one notify step")
    ack_timeout = spec.get("ackTimeout")
    return Plan(
        stages=tuple(stages),
        trailing_wait=waited,
        repeat=int(spec.get("repeat", 0)),
        ack_timeout=parse_duration(ack_timeout) if ack_timeout else None,
    )


def first_move(plan: Plan) -> Move:
    return Move(Position(0, 0), plan.stages[0].delay_before)


def next_move(plan: Plan, position: Position) -> Move | None:
    """After the stage at ``position`` ran: the next stage, the first stage of the next repeat, or None when the
    policy is exhausted."""
    if position.stage + 1 < len(plan.stages):
        return Move(Position(position.stage + 1, position.repeat), plan.stages[position.stage + 1].delay_before)
    if position.repeat < plan.repeat:
        return Move(Position(0, position.repeat + 1), plan.trailing_wait + plan.stages[0].delay_before)
    return None


@dataclass(frozen=True)
class PreviewRow:
    offset: int  # seconds after the group opened
    stage: Stage
    repeat: int


def preview(plan: Plan) -> list[PreviewRow]:
    """Every stage the policy would run if nobody acknowledged, with its time after the group opened."""
    rows: list[PreviewRow] = []
    move: Move | None = first_move(plan)
    offset = 0
    while move is not None:
        offset += move.delay
        rows.append(PreviewRow(offset, plan.stages[move.position.stage], move.position.repeat))
        move = next_move(plan, move.position)
    return rows


def spec_problems(steps: Sequence[Mapping[str, Any]], repeat: int) -> list[tuple[str, str]]:
    """(path, message) for step lists that validate field by field but make no sense as a whole."""
    problems: list[tuple[str, str]] = []
    notify_steps = [index for index, step in enumerate(steps) if "notify" in step]
    if not notify_steps:
        problems.append(("steps", "add at least one notify step: a policy that notifies nobody pages nobody"))
    for index in range(1, len(steps)):
        if "wait" in steps[index] and "wait" in steps[index - 1]:
            problems.append((f"steps.{index}", "two waits in a row: merge them into one"))
    if repeat > 0 and steps and "wait" not in steps[-1]:
        problems.append(
            (
                f"steps.{len(steps) - 1}",
                "a policy that repeats must end with a wait, or the repeat would page again at once",
            )
        )
    return problems
