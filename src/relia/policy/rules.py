"""Pure rules of error-budget policies: conditions with hysteresis, the per-service state machine with its
cooldown, which services an action reaches, the release gate's decision, and the velocity verdict.

No I/O, no database, no clock: every instant is an argument. The service layer reads the SLO evaluator's
latest status rows into ``ObjectiveView`` values, asks these functions what they mean, and writes the result.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

# Change types every installation knows. Teams may use their own (any slug); a policy's exemptions name
# whichever it lets through a freeze.
BUILTIN_CHANGE_TYPES = ("feature", "fix", "config", "dependency", "security", "p0-fix", "rollback")
# Google's example policy exempts P0 fixes and security fixes; a rollback returns to a version that already ran,
# which lowers risk instead of adding it, so it is exempt by default too.
DEFAULT_EXEMPTIONS = ("security", "p0-fix", "rollback")

Decision = Literal["allow", "warn", "block"]
RestrictionKind = Literal["freeze", "approval", "warn"]
DECISION_RANK: dict[str, int] = {"allow": 0, "warn": 1, "block": 2}
# The most restrictive first, wherever restrictions are listed.
RESTRICTION_RANK: dict[str, int] = {"freeze": 0, "approval": 1, "warn": 2}


# ----------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ObjectiveView:
    """One SLO objective as the policies see it: the evaluator's latest status, plus when it was last exhausted.

    ``burn_rates`` maps a window length in minutes to the burn rate over it (None: no events in the window).
    ``budget_remaining`` is None when the objective has no data."""

    objective_id: int
    service_id: int
    slo: str
    objective: str
    budget_remaining: float | None
    page_active: bool = False
    burn_rates: Mapping[int, float | None] = field(default_factory=dict)
    last_exhausted_at: datetime | None = None

    @property
    def label(self) -> str:
        return self.slo if self.objective == "default" else f"{self.slo}/{self.objective}"


# ------------------------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class BudgetBelow:
    """The remaining budget (a fraction of the whole) is below ``below``."""

    below: float


@dataclass(frozen=True)
class BurnAbove:
    """The burn rate over the last ``window_minutes`` is above ``above`` (1 = the budget lasts exactly the
    SLO's window)."""

    window_minutes: int
    above: float


@dataclass(frozen=True)
class Exhausted:
    """The budget is exhausted now (``within_minutes`` None), or was at any time in the trailing window."""

    within_minutes: int | None = None


@dataclass(frozen=True)
class PageAlert:
    """The objective's page alert is firing."""


Condition = BudgetBelow | BurnAbove | Exhausted | PageAlert


def percent(value: float) -> str:
    """0.1234 -> "12.3 %"; trailing zeros go (0.5 -> "50 %")."""
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{'0' if text == '-0' else text} %"


def format_minutes(minutes: int) -> str:
    """The largest exact unit: 60 -> "1h", 40320 -> "4w", 90 -> "90m"."""
    for suffix, size in (("w", 10080), ("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{suffix}"
    return f"{minutes}m"


def condition_text(condition: Condition) -> str:
    """The condition in words, for lists and docs."""
    if isinstance(condition, BudgetBelow):
        return f"budget remaining below {percent(condition.below)}"
    if isinstance(condition, BurnAbove):
        return f"burn rate over {format_minutes(condition.window_minutes)} above {condition.above:g}x"
    if isinstance(condition, Exhausted):
        if condition.within_minutes is None:
            return "budget exhausted"
        return f"budget exhausted within the last {format_minutes(condition.within_minutes)}"
    return "page alert firing"


def condition_holds(
    condition: Condition, objective: ObjectiveView, *, now: datetime, engaged: bool, margin: float = 0.0
) -> str | None:
    """Why ``condition`` holds for ``objective`` (a sentence), or None when it does not.

    Hysteresis: once a policy is engaged (active, or cooling down), a threshold condition keeps holding until the
    value is past the threshold by ``margin`` (a share of the budget for budget conditions, a share of the factor
    for burn rates), so a value hovering at the threshold cannot switch it on and off."""
    remaining = objective.budget_remaining
    if isinstance(condition, BudgetBelow):
        if remaining is None:
            return None
        bar = condition.below + margin if engaged else condition.below
        if remaining < bar:
            return f"{objective.label} has {percent(remaining)} of its error budget left (below {percent(bar)})"
        return None
    if isinstance(condition, Exhausted):
        exhausted_now = remaining is not None and (remaining <= 0 or (engaged and remaining < margin))
        if exhausted_now:
            assert remaining is not None
            if remaining <= 0:
                return f"{objective.label} has exhausted its error budget ({percent(remaining)} left)"
            return f"{objective.label} has only {percent(remaining)} of its error budget back (needs {percent(margin)})"
        if condition.within_minutes is not None and objective.last_exhausted_at is not None:
            since = now - objective.last_exhausted_at
            if since <= timedelta(minutes=condition.within_minutes):
                last = f"{objective.last_exhausted_at:%Y-%m-%d %H:%M} UTC"
                return (
                    f"{objective.label} exhausted its error budget within the last "
                    f"{format_minutes(condition.within_minutes)} (last at {last})"
                )
        return None
    if isinstance(condition, BurnAbove):
        rate = objective.burn_rates.get(condition.window_minutes)
        if rate is None:
            return None
        bar = condition.above * (1 - margin) if engaged else condition.above
        if rate > bar:
            return (
                f"{objective.label} burns its error budget at {rate:.2f}x over "
                f"{format_minutes(condition.window_minutes)} (above {bar:g}x)"
            )
        return None
    if objective.page_active:
        return f"{objective.label} has a page alert firing"
    return None


def burn_rate(good: float, total: float, target: float) -> float | None:
    """How fast a window spent budget: its error ratio over the budget's ratio (1 - target). None without events."""
    if total <= 0 or target >= 1:
        return None
    return max(0.0, (total - good) / total) / (1 - target)


@dataclass(frozen=True)
class CompiledPolicy:
    """A budget policy reduced to what evaluation needs (see ``schemas.BudgetPolicySpec`` for the written form)."""

    name: str
    conditions: tuple[Condition, ...]
    match_all: bool = False
    slos: frozenset[str] | None = None
    cooldown: timedelta = timedelta(hours=1)
    margin: float = 0.0


@dataclass(frozen=True)
class ObjectiveMatch:
    objective_id: int
    slo: str
    objective: str
    reasons: tuple[str, ...]


def match_objectives(
    policy: CompiledPolicy, objectives: Iterable[ObjectiveView], *, now: datetime, engaged: bool
) -> list[ObjectiveMatch]:
    """The objectives (of one service) for which the policy's conditions hold: any of them (``match_all``
    False) or all of them for the same objective."""
    found: list[ObjectiveMatch] = []
    for objective in objectives:
        if policy.slos is not None and objective.slo not in policy.slos:
            continue
        reasons = [
            condition_holds(condition, objective, now=now, engaged=engaged, margin=policy.margin)
            for condition in policy.conditions
        ]
        held = [reason for reason in reasons if reason is not None]
        if held and (not policy.match_all or len(held) == len(reasons)):
            found.append(ObjectiveMatch(objective.objective_id, objective.slo, objective.objective, tuple(held)))
    return sorted(found, key=lambda match: (match.slo, match.objective))


# ---------------------------------------------------------------------------------------- state machine


class Phase(enum.StrEnum):
    """Where one policy stands for one service. ``clear`` is never stored: no row means clear."""

    clear = "clear"
    active = "active"  # the conditions hold; the actions are in force
    cooling = "cooling"  # the conditions stopped holding; the actions stay until the cooldown has passed


class Transition(enum.StrEnum):
    triggered = "triggered"  # clear -> active: actions start
    cooling = "cooling"  # active -> cooling: the cooldown starts, actions stay
    retriggered = "retriggered"  # cooling -> active: the conditions came back before the cooldown ended
    cleared = "cleared"  # cooling -> clear: the cooldown passed, actions end


@dataclass(frozen=True)
class PolicyState:
    phase: Phase
    triggered_at: datetime
    phase_since: datetime
    cooling_until: datetime | None = None

    @property
    def engaged(self) -> bool:
        return self.phase in (Phase.active, Phase.cooling)


@dataclass(frozen=True)
class Step:
    state: PolicyState | None
    transition: Transition | None


def advance(previous: PolicyState | None, holds: bool, *, now: datetime, cooldown: timedelta) -> Step:
    """One evaluation of one policy for one service. Idempotent: the same inputs at the same instant give the
    same state and no transition. Leaving the condition undoes nothing until it has stayed away for the whole
    cooldown; coming back during the cooldown keeps the actions in force without starting them again, so a
    condition that flaps never switches actions on and off."""
    if previous is None or previous.phase == Phase.clear:
        if holds:
            return Step(PolicyState(Phase.active, now, now), Transition.triggered)
        return Step(None, None)
    if previous.phase == Phase.active:
        if holds:
            return Step(previous, None)
        until = now + cooldown
        return Step(PolicyState(Phase.cooling, previous.triggered_at, now, until), Transition.cooling)
    # cooling
    if holds:
        return Step(PolicyState(Phase.active, previous.triggered_at, now), Transition.retriggered)
    if previous.cooling_until is not None and now >= previous.cooling_until:
        return Step(None, Transition.cleared)
    return Step(previous, None)


# ------------------------------------------------------------------------------------------------ reach


def dependents_of(service_id: int, dependents: Mapping[int, Iterable[int]], *, transitive: bool) -> list[int]:
    """The services that depend on ``service_id`` (directly, or through others), without it, sorted.
    ``dependents`` maps a service to the services that depend on it directly."""
    seen: set[int] = set()
    frontier = list(dependents.get(service_id, ()))
    while frontier:
        current = frontier.pop()
        if current in seen or current == service_id:
            continue
        seen.add(current)
        if transitive:
            frontier.extend(dependents.get(current, ()))
    return sorted(seen)


# -------------------------------------------------------------------------------------------------- gate


@dataclass(frozen=True)
class SloBudget:
    slo: str
    objective: str
    budget_remaining: float | None

    @property
    def label(self) -> str:
        return self.slo if self.objective == "default" else f"{self.slo}/{self.objective}"

    def text(self) -> str:
        if self.budget_remaining is None:
            return f"{self.label} (no data)"
        if self.budget_remaining <= 0:
            return f"{self.label} ({percent(self.budget_remaining)} of its budget left: exhausted)"
        return f"{self.label} ({percent(self.budget_remaining)} of its budget left)"


@dataclass(frozen=True)
class Restriction:
    """A restriction in force on the service being released."""

    kind: RestrictionKind
    policy: str
    cause_service: str  # the service whose SLOs triggered it: this one, or one it depends on
    exemptions: frozenset[str]
    slos: tuple[SloBudget, ...] = ()  # the objectives that triggered it, least budget first
    lifts_at: datetime | None = None  # set while the policy cools down: when the restriction ends


@dataclass(frozen=True)
class OverrideGrant:
    """An approved, unexpired override for exactly this service and version."""

    id: int
    expires_at: datetime
    approved_by: str
    reason: str


@dataclass(frozen=True)
class GateReason:
    code: str
    message: str
    slo: str | None = None
    objective: str | None = None
    budget_remaining: float | None = None
    policy: str | None = None
    service: str | None = None  # the service whose SLOs caused it (of several, the one with the least budget)
    override: int | None = None
    services: tuple[str, ...] = ()  # every service whose SLOs caused it, least budget first


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer for one change. ``check_id`` is the recorded check (None until recorded)."""

    decision: Decision
    reasons: tuple[GateReason, ...]
    service: str
    version: str
    change_type: str
    phase: str
    exempt: bool = False
    override_id: int | None = None
    check_id: int | None = None
    checked_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        """Whether the change may go ahead: allow and warn do, block does not."""
        return self.decision != "block"


def _worst(slos: Sequence[SloBudget]) -> SloBudget | None:
    return slos[0] if slos else None


def _budget_order(slo: SloBudget) -> tuple[bool, float, str]:
    return (slo.budget_remaining is None, slo.budget_remaining or 0.0, slo.label)


@dataclass(frozen=True)
class PolicyRestrictions:
    """One policy's restrictions of one kind on the service being released: its own, or every one put on it
    through its dependencies. A service deep in a dependency graph can be frozen by one policy through dozens
    of services; the gate gives that as one reason naming them all, worst first, not dozens of reasons."""

    kind: RestrictionKind
    policy: str
    exemptions: frozenset[str]
    members: tuple[Restriction, ...]  # worst first: the cause whose SLO has the least budget left

    # Cached: the API keeps a service's groups between gate checks (relia.policy.gate).
    @cached_property
    def causes(self) -> tuple[str, ...]:
        return tuple(member.cause_service for member in self.members)

    @cached_property
    def slos(self) -> tuple[SloBudget, ...]:
        return tuple(sorted((slo for member in self.members for slo in member.slos), key=_budget_order))

    @cached_property
    def lifts_at(self) -> datetime | None:
        """When the last of them lifts, if every one is cooling down; None while any is still engaged."""
        lifts = [member.lifts_at for member in self.members]
        return None if any(at is None for at in lifts) else max(at for at in lifts if at is not None)


def group_restrictions(restrictions: Sequence[Restriction], service: str) -> list[PolicyRestrictions]:
    """The restrictions on ``service`` by policy and kind (its own apart from those through dependencies), in
    the order the gate gives its reasons: freezes, then approvals, then warnings."""
    groups: dict[tuple[str, str, bool], list[Restriction]] = {}
    for restriction in restrictions:
        own = restriction.cause_service == service
        groups.setdefault((restriction.kind, restriction.policy, own), []).append(restriction)

    def worst_first(member: Restriction) -> tuple[bool, float, str, str]:
        worst = _worst(member.slos)
        budget = _budget_order(worst) if worst else (True, 0.0, "")
        return (*budget, member.cause_service)

    found = [
        PolicyRestrictions(
            kind=kind,
            policy=policy,
            # One policy grants the same exemptions everywhere; should they differ, only the common ones count.
            exemptions=frozenset.intersection(*(member.exemptions for member in members)),
            members=tuple(sorted(members, key=worst_first)),
        )
        for (kind, policy, _), members in groups.items()
    ]
    found.sort(key=lambda group: (RESTRICTION_RANK[group.kind], group.policy, group.causes[0] != service))
    return found


def _cause(group: PolicyRestrictions, service: str) -> str:
    causes = group.causes
    if causes == (service,):
        return f"policy {group.policy}"
    if len(causes) == 1:
        return f"policy {group.policy} (through {causes[0]}, which {service} depends on)"
    named = ", ".join(causes[:3]) + (f" and {len(causes) - 3} more" if len(causes) > 3 else "")
    return f"policy {group.policy} (through {len(causes)} services {service} depends on: {named})"


def _why(group: PolicyRestrictions) -> str:
    slos = group.slos
    listed = ", ".join(slo.text() for slo in slos[:3])
    more = f" and {len(slos) - 3} more" if len(slos) > 3 else ""
    why = f": {listed}{more}" if listed else ""
    lifts_at = group.lifts_at
    if lifts_at is not None:
        why += f" (recovering: it lifts at {lifts_at:%Y-%m-%d %H:%M} UTC unless the conditions return)"
    return why


def _reason(code: str, message: str, group: PolicyRestrictions, override: int | None = None) -> GateReason:
    worst = _worst(group.slos)
    return GateReason(
        code=code,
        message=message,
        slo=worst.slo if worst else None,
        objective=worst.objective if worst else None,
        budget_remaining=worst.budget_remaining if worst else None,
        policy=group.policy,
        service=group.causes[0],
        override=override,
        services=group.causes,
    )


def decide(
    *,
    service: str,
    version: str,
    change_type: str,
    phase: str,
    restrictions: Sequence[Restriction],
    override: OverrideGrant | None,
    lowest: SloBudget | None = None,
    grouped: Sequence[PolicyRestrictions] | None = None,
) -> GateDecision:
    """Allow, warn or block one change, with the reasons.

    - A freeze blocks every change whose type is not exempt, unless an approved override covers this version;
      an exempt change or an overridden one passes with a warning (the service is still frozen).
    - A required approval blocks a change that is not exempt until an override for this version is approved;
      then it is allowed.
    - A warning restriction warns.
    - Nothing in force: allowed, naming the SLO with the least budget left.

    ``grouped``: ``group_restrictions(restrictions, service)`` when the caller has it already."""
    reasons: list[GateReason] = []
    decision: Decision = "allow"
    exempt = False
    used_override: int | None = None

    def raise_to(level: Decision) -> None:
        nonlocal decision
        if DECISION_RANK[level] > DECISION_RANK[decision]:
            decision = level

    for restriction in grouped if grouped is not None else group_restrictions(restrictions, service):
        cause, why = _cause(restriction, service), _why(restriction)
        if restriction.kind == "warn":
            reasons.append(_reason("policy-warning", f"{cause} warns about releases of {service}{why}.", restriction))
            raise_to("warn")
            continue
        what = "frozen" if restriction.kind == "freeze" else "under required approval"
        if change_type in restriction.exemptions:
            exempt = True
            reasons.append(
                _reason(
                    "exempt",
                    f"{service} is {what} by {cause}{why}; {change_type} changes are exempt, so this one may go.",
                    restriction,
                )
            )
            raise_to("warn")
        elif override is not None:
            used_override = override.id
            if restriction.kind == "freeze":
                message = (
                    f"{service} is frozen by {cause}{why}; override #{override.id} (approved by "
                    f"{override.approved_by}, until {override.expires_at:%Y-%m-%d %H:%M} UTC) lets version {version} "
                    "through."
                )
                reasons.append(_reason("override", message, restriction, override.id))
                raise_to("warn")
            else:
                message = (
                    f"Releases of {service} need approval under {cause}{why}; override #{override.id} approved "
                    f"version {version} ({override.approved_by})."
                )
                reasons.append(_reason("approved", message, restriction, override.id))
        else:
            exemptions = ", ".join(sorted(restriction.exemptions)) or "none"
            if restriction.kind == "freeze":
                message = (
                    f"{service} is frozen by {cause}{why}. Only exempt changes ({exemptions}) may ship, or this "
                    "version with an approved override."
                )
                reasons.append(_reason("frozen", message, restriction))
            else:
                message = (
                    f"Releases of {service} need an approved override under {cause}{why}; none is approved for "
                    f"version {version}. Exempt changes: {exemptions}."
                )
                reasons.append(_reason("approval-required", message, restriction))
            raise_to("block")
    if not restrictions:
        if lowest is None:
            message = f"No budget policy restricts releases of {service} (it has no evaluated SLOs)."
            reasons.append(GateReason("no-restrictions", message))
        else:
            message = f"No budget policy restricts releases of {service}; the least budget left: {lowest.text()}."
            reasons.append(
                GateReason(
                    "no-restrictions",
                    message,
                    slo=lowest.slo,
                    objective=lowest.objective,
                    budget_remaining=lowest.budget_remaining,
                )
            )
    return GateDecision(
        decision=decision,
        reasons=tuple(reasons),
        service=service,
        version=version,
        change_type=change_type,
        phase=phase,
        exempt=exempt,
        override_id=used_override,
    )


def exit_code(decision: str) -> int:
    """What `relia gate check` exits with: 0 to go ahead (allow or warn), 1 to stop (block)."""
    return 1 if decision == "block" else 0


# ---------------------------------------------------------------------------------------------- velocity

Verdict = Literal["faster", "on-track", "slow-down", "unknown"]
VERDICT_TEXT: dict[str, str] = {
    "faster": "room to ship faster",
    "on-track": "on track",
    "slow-down": "slow down",
    "unknown": "not enough data",
}
ROOM_ABOVE = 0.5  # every objective keeps at least half its budget ...
ROOM_MAX_SPENT = 0.2  # ... and spent at most a fifth of it over the period
SLOW_BELOW = 0.25  # an objective below a quarter of its budget is at risk
SLOW_FROZEN_SHARE = 0.25  # frozen for a quarter of the period or more


@dataclass(frozen=True)
class BudgetTrend:
    slo: str
    objective: str
    remaining_now: float | None
    remaining_at_start: float | None

    @property
    def label(self) -> str:
        return self.slo if self.objective == "default" else f"{self.slo}/{self.objective}"

    @property
    def change(self) -> float | None:
        if self.remaining_now is None or self.remaining_at_start is None:
            return None
        return self.remaining_now - self.remaining_at_start


def trend_word(change: float | None) -> str:
    """How the budget moved over the period, in one word."""
    if change is None:
        return "unknown"
    if change <= -0.05:
        return "falling"
    if change >= 0.05:
        return "rising"
    return "steady"


def verdict(
    *, service: str, budgets: Sequence[BudgetTrend], frozen_minutes: float, period_minutes: float, frozen_now: bool
) -> tuple[Verdict, str]:
    """A plain verdict on the pace of releases, with the reason in a sentence.

    slow down: an objective is exhausted, below a quarter of its budget, on a trend that spends the rest within
    another such period, or the service was frozen for a quarter of the period or is frozen now.
    room to ship faster: every objective keeps at least half its budget, none spent more than a fifth of it
    over the period, and the service was never frozen.
    on track: anything between."""
    known = [item for item in budgets if item.remaining_now is not None]
    if not known:
        return "unknown", f"None of {service}'s SLOs has data, so there is nothing to judge the pace by."
    worst = min(known, key=lambda item: (item.remaining_now, item.label))
    assert worst.remaining_now is not None
    frozen_share = frozen_minutes / period_minutes if period_minutes > 0 else 0.0
    if worst.remaining_now <= 0:
        return "slow-down", f"{worst.label} has exhausted its error budget ({percent(worst.remaining_now)} left)."
    if frozen_now:
        return "slow-down", f"{service} is frozen by a budget policy right now."
    if worst.remaining_now < SLOW_BELOW:
        return "slow-down", f"{worst.label} has only {percent(worst.remaining_now)} of its error budget left."
    for item in sorted(known, key=lambda entry: entry.label):
        change = item.change
        assert item.remaining_now is not None
        if change is not None and change < 0 and item.remaining_now + change <= 0:
            return "slow-down", (
                f"{item.label} spent {percent(-change)} of its budget this period; at that pace the remaining "
                f"{percent(item.remaining_now)} runs out within another period."
            )
    if frozen_share >= SLOW_FROZEN_SHARE:
        return "slow-down", f"{service} was frozen for {percent(frozen_share)} of the period."
    spent = [-(item.change or 0.0) for item in known]
    most_spent = max(spent)
    if worst.remaining_now >= ROOM_ABOVE and most_spent <= ROOM_MAX_SPENT and frozen_minutes == 0:
        return "faster", (
            f"Every SLO kept at least {percent(ROOM_ABOVE)} of its budget (the least: {worst.label} with "
            f"{percent(worst.remaining_now)}) and none spent more than {percent(ROOM_MAX_SPENT)} of it this period: "
            "there is room to ship faster."
        )
    if frozen_minutes > 0:
        return "on-track", f"{service} was frozen for {percent(frozen_share)} of the period but has recovered."
    return "on-track", (
        f"The least budget left is {percent(worst.remaining_now)} ({worst.label}): enough to keep shipping at this "
        "pace, not enough to speed up."
    )
