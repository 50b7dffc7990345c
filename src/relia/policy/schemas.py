"""BudgetPolicy specs (config kind and API bodies), gate checks, overrides, and the API's response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from relia.core.schemas import ApiModel, OutModel, Slug, Text
from relia.policy.rules import DEFAULT_EXEMPTIONS

DURATION_PATTERN = r"^[1-9][0-9]{0,5}(m|h|d|w)$"
Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=8),
    Field(description="A whole number of minutes (m), hours (h), days (d) or weeks (w), e.g. 30m, 1h, 28d"),
]
ChangeType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", max_length=40),
    Field(
        description="What kind of change: feature, fix, config, dependency, security, p0-fix, rollback, or a type "
        "of your own (lower-case letters, digits and dashes)",
        examples=["feature", "security", "p0-fix", "rollback"],
    ),
]
Version = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(description="The version being released: a tag, a commit, a build number", examples=["v1.42.0"]),
]
Reason = Annotated[str, StringConstraints(min_length=3, max_length=2000, pattern=r"^[^\x00]*$")]
Note = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]
Phase = Literal["pre_deploy", "pre_switch"]


# -------------------------------------------------------------------------------------------------- scope


class ScopeSpec(ApiModel):
    """Exactly one of: a service, a team (every service it owns), or the whole organisation."""

    service: Slug | None = None
    team: Slug | None = None
    organisation: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> ScopeSpec:
        given = [name for name in ("service", "team") if getattr(self, name) is not None]
        if self.organisation:
            given.append("organisation")
        if len(given) != 1:
            raise ValueError("give exactly one of service, team or organisation: true")
        return self

    @property
    def kind(self) -> Literal["service", "team", "organisation"]:
        return "service" if self.service else "team" if self.team else "organisation"


# --------------------------------------------------------------------------------------------- conditions


class BudgetRemainingCondition(ApiModel):
    below: Annotated[float, Field(gt=-10, le=1)] = Field(
        description="Holds when the remaining budget (a fraction: 0.25 is 25 %) is below this"
    )


class BurnRateCondition(ApiModel):
    window: Duration = Field(description="The window the burn rate is taken over, e.g. 1h or 6h")
    above: Annotated[float, Field(gt=0, le=100_000)] = Field(
        description="Holds when the burn rate is above this factor (1 spends exactly the budget over the SLO's window)"
    )


class BudgetExhaustedCondition(ApiModel):
    within: Duration | None = Field(
        default=None,
        description="Without it: the budget is exhausted now. With it: the budget was exhausted at any time in "
        "this trailing window, e.g. 28d",
    )


class PageAlertCondition(ApiModel):
    """Holds while an objective's page alert fires."""


class ConditionSpec(ApiModel):
    """One condition; exactly one of its fields."""

    budget_remaining: BudgetRemainingCondition | None = None
    burn_rate: BurnRateCondition | None = None
    budget_exhausted: BudgetExhaustedCondition | None = None
    page_alert: PageAlertCondition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ConditionSpec:
        given = [name for name, value in self if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of budgetRemaining, burnRate, budgetExhausted or pageAlert")
        return self


# ------------------------------------------------------------------------------------------------ actions


class FreezeAction(ApiModel):
    dependents: Literal["none", "direct", "transitive"] = Field(
        default="none",
        description="Also freeze the services that depend on the affected one: directly, or through others too",
    )


class ApprovalAction(ApiModel):
    """Releases that are not exempt need an approved override for their version."""


class WarnAction(ApiModel):
    """Releases go ahead with a warning."""


class PagerAction(ApiModel):
    from_team: Slug = Field(description="The team whose escalation holds the pager now (usually the SRE team)")
    to_team: Slug | None = Field(default=None, description="Who takes it; default: the service's owning team")


Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+\S*$", max_length=2000)]


class NotifyTarget(ApiModel):
    webhook: Url = Field(description="Receives a JSON POST when the policy triggers and when it clears")


class ActionItemAction(ApiModel):
    title: Annotated[str, StringConstraints(min_length=3, max_length=300)] = Field(
        default="Bring {service} back within its SLOs",
        description="The item's title; {service} and {policy} are replaced",
    )


class ActionsSpec(ApiModel):
    freeze: FreezeAction | None = None
    require_approval: ApprovalAction | None = None
    warn: WarnAction | None = None
    hand_pager: PagerAction | None = None
    notify: list[NotifyTarget] = Field(default_factory=list, max_length=10)
    action_item: ActionItemAction | None = None

    @model_validator(mode="after")
    def _something(self) -> ActionsSpec:
        if not any(value for _, value in self):
            raise ValueError("give at least one action: freeze, requireApproval, warn, handPager, notify or actionItem")
        return self


# ------------------------------------------------------------------------------------------------- policy


class BudgetPolicySpec(ApiModel):
    description: Text = ""
    enabled: bool = Field(default=True, description="A disabled policy is kept but not evaluated")
    scope: ScopeSpec
    slos: list[Slug] = Field(
        default_factory=list,
        max_length=100,
        description="Only these SLOs (default: every SLO of the services in scope)",
    )
    match: Literal["any", "all"] = Field(
        default="any", description="any: one condition is enough; all: every condition, for the same objective"
    )
    conditions: list[ConditionSpec] = Field(min_length=1, max_length=10)
    actions: ActionsSpec
    exemptions: list[ChangeType] = Field(
        default_factory=lambda: list(DEFAULT_EXEMPTIONS),
        max_length=20,
        description="Change types that pass freezes and required approvals",
    )
    cooldown: Duration = Field(
        default="1h", description="How long the conditions must stay away before the actions are undone"
    )
    clear_margin: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.0,
        description="Hysteresis: to leave, budget conditions need this much budget above their threshold, burn "
        "rates this share below their factor (0.05 = 5 %)",
    )

    @field_validator("slos", "exemptions")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({item for item in value if value.count(item) > 1})
        if repeated:
            raise ValueError(f"must be unique; repeated: {', '.join(repeated)}")
        return value


# ------------------------------------------------------------------------------------------------- gate


class GateCheckIn(ApiModel):
    service: Slug
    version: Version
    change_type: ChangeType
    phase: Phase = Field(
        default="pre_deploy", description="pre_deploy (CI, before deploying) or pre_switch (before moving traffic)"
    )


class GateReasonOut(OutModel):
    code: str = Field(
        description="no-restrictions, frozen, exempt, override, approval-required, approved or policy-warning"
    )
    message: str
    slo: str | None = None
    objective: str | None = None
    budget_remaining: float | None = None
    policy: str | None = None
    service: str | None = Field(
        default=None, description="The service whose SLOs caused it (of several, the one with the least budget left)"
    )
    override: int | None = None
    services: list[str] = Field(
        default_factory=list,
        description="Every service whose SLOs caused it, least budget first: the service itself, or the ones it "
        "depends on that put it under this policy",
    )


class GateDecisionOut(OutModel):
    decision: Literal["allow", "warn", "block"]
    reasons: list[GateReasonOut]
    service: str
    version: str
    change_type: str
    phase: str
    exempt: bool
    override: int | None = None
    check_id: int | None = None
    checked_at: datetime | None = None


class GateCheckOut(OutModel):
    id: int
    at: datetime
    service: str
    version: str
    change_type: str
    phase: str
    decision: str
    reasons: list[dict[str, Any]]
    override: int | None = None
    requested_by: str
    via: str


# --------------------------------------------------------------------------------------------- overrides


class OverrideCreate(ApiModel):
    service: Slug
    version: Version
    reason: Reason
    duration: Duration = Field(default="4h", description="How long the override may be used (at most 7d)")


class OverrideDecision(ApiModel):
    note: Note = ""


class OverrideOut(OutModel):
    id: int
    service: str
    version: str
    reason: str
    status: Literal["pending", "approved", "rejected", "expired"]
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None


# ------------------------------------------------------------------------------------------------ outputs


class PolicyStateOut(OutModel):
    policy: str
    service: str
    phase: Literal["active", "cooling"]
    triggered_at: datetime
    phase_since: datetime
    cooling_until: datetime | None = None
    matched: list[dict[str, Any]]


class BudgetPolicyOut(OutModel):
    name: str
    built_in: bool = Field(description="The built-in default (replace it with a BudgetPolicy named default)")
    enabled: bool
    spec: dict[str, Any]
    summary: str
    states: list[PolicyStateOut]
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RestrictionOut(OutModel):
    id: int
    service: str
    kind: Literal["freeze", "approval", "warn"]
    policy: str
    cause_service: str
    exemptions: list[str]
    summary: str
    started_at: datetime
    ended_at: datetime | None = None


class PagerHandoffOut(OutModel):
    id: int
    service: str
    policy: str
    from_team: str
    to_team: str
    reason: str
    started_at: datetime
    ended_at: datetime | None = None


class ActionItemOut(OutModel):
    id: int
    title: str
    service: str
    policy: str
    status: Literal["open", "done"]
    detail: str
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None


class ServicePolicyStatusOut(OutModel):
    service: str
    frozen: bool
    approval_required: bool
    restrictions: list[RestrictionOut]
    pager_handoff: PagerHandoffOut | None = None
    states: list[PolicyStateOut]
    policies: list[str] = Field(description="The enabled policies whose scope includes the service")
    pending_overrides: list[OverrideOut]
    open_action_items: list[ActionItemOut]


class BudgetTrendOut(OutModel):
    slo: str
    objective: str
    remaining_now: float | None = None
    remaining_at_start: float | None = None
    change: float | None = None
    trend: str
    points: list[dict[str, Any]] = Field(description="Budget remaining over the period: [{at, budgetRemaining}]")


class FreezePeriodOut(OutModel):
    policy: str
    cause_service: str
    started_at: datetime
    ended_at: datetime | None = None
    minutes_in_period: float


class VelocityReportOut(OutModel):
    service: str
    period: str
    start: datetime
    end: datetime
    verdict: Literal["faster", "on-track", "slow-down", "unknown"]
    verdict_text: str
    reason: str
    budgets: list[BudgetTrendOut]
    freezes: list[FreezePeriodOut]
    frozen_minutes: float
    frozen_now: bool
    releases: dict[str, int] = Field(description="Gate checks in the period by decision: allow, warn, block")
    versions: dict[str, int] = Field(description="Distinct versions by their latest decision in the period")
