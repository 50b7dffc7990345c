"""Escalation policy spec (config kind ``EscalationPolicy`` and API body) and the API's response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from relia.core.schemas import ApiModel, OutModel, Slug, Text
from relia.notify.rules import DURATION, parse_duration
from relia.notify.schemas import NotificationOut

MAX_WAIT = 7 * 86400


def _check_wait(value: str) -> str:
    seconds = parse_duration(value)
    if seconds < 60:
        raise ValueError("at least 1m")
    if seconds > MAX_WAIT:
        raise ValueError("at most 7d")
    return value


Wait = Annotated[
    str,
    StringConstraints(pattern=DURATION.pattern, max_length=8),
    AfterValidator(_check_wait),
    Field(description="Minutes, hours or days: 5m, 2h, 1d (1m to 7d)"),
]


def _unique(values: list[str], what: str) -> list[str]:
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise ValueError(f"{what} listed twice: {', '.join(duplicates)}")
    return values


class NotifyTargets(ApiModel):
    users: list[Slug] = Field(default_factory=list, max_length=50, description="Usernames")
    schedules: list[Slug] = Field(
        default_factory=list, max_length=20, description="On-call schedules: whoever is on call when the step runs"
    )
    teams: list[Slug] = Field(default_factory=list, max_length=20, description="Teams: every member")

    @model_validator(mode="after")
    def _someone(self) -> NotifyTargets:
        if not (self.users or self.schedules or self.teams):
            raise ValueError("name at least one user, schedule or team to notify")
        _unique(self.users, "users")
        _unique(self.schedules, "schedules")
        _unique(self.teams, "teams")
        return self


class StepSpec(ApiModel):
    """One step: either ``wait: 5m`` or ``notify: {users: [...], schedules: [...], teams: [...]}``."""

    wait: Wait | None = None
    notify: NotifyTargets | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        if (self.wait is None) == (self.notify is None):
            raise ValueError("a step is either a wait (wait: 5m) or a notify step (notify: {users: [...]})")
        return self


class EscalationPolicySpec(ApiModel):
    """Who is paged, in which order, when an alert group of the team's services opens.

    Steps run in order: ``notify`` pages its targets at once, ``wait`` holds the next step back. When the last
    step has run and nobody acknowledged, the steps run again ``repeat`` more times (the policy must then end
    with a wait). With ``ackTimeout``, an acknowledgement that lasts that long without the group being resolved
    pages again from the first step. Each team has at most one ``default`` policy, used by its services unless a
    policy lists the service under ``services``."""

    team: Slug = Field(description="The team that owns the policy; its managers (and administrators) change it")
    default: bool = Field(default=False, description="The team's default policy for its services")
    description: Text = ""
    services: list[Slug] = Field(
        default_factory=list,
        max_length=200,
        description="Services paged by this policy instead of their team's default (another team's service: this"
        " team holds its pager, e.g. an SRE team supporting it)",
    )
    repeat: int = Field(default=0, ge=0, le=9, description="Run the steps again this many times")
    ack_timeout: Wait | None = Field(default=None, description="Page again when acknowledged this long")
    steps: list[StepSpec] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _services_once(self) -> EscalationPolicySpec:
        _unique(self.services, "services")
        return self


class EscalationPolicyIn(EscalationPolicySpec):
    version: int | None = Field(default=None, description="The version you read; a stale one gets 409")


def spec_json(spec: EscalationPolicySpec) -> dict[str, Any]:
    """The stored (and compared, and exported) form: camelCase, without empty optional fields."""
    return canonical(spec.model_dump(mode="json", by_alias=True))


def canonical(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec as stored: no null fields, and a notify step lists only the kinds of target it names, so what
    is exported reads like what was written."""
    spec = drop_none(spec)
    steps = []
    for step in spec.get("steps", []):
        if isinstance(step.get("notify"), dict):
            step = {**step, "notify": {key: value for key, value in step["notify"].items() if value != []}}
        steps.append(step)
    return {**spec, "steps": steps}


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_none(item) for item in value]
    return value


# ----------------------------------------------------------------------------------------------- output


class PreviewStepOut(OutModel):
    after_seconds: int = Field(description="Seconds after the alert group opened, if nobody acknowledges")
    after: str
    step: int = Field(description="Counted from 1")
    repeat: int
    targets: str


class EscalationPolicyOut(OutModel):
    name: str
    spec: dict[str, Any]
    preview: list[PreviewStepOut]
    live_groups: int = Field(description="Alert groups escalating under this policy now (their snapshots)")
    version: int
    created_at: datetime
    updated_at: datetime


class ServiceEscalationOut(OutModel):
    service: str
    team: str | None
    policy: str | None
    source: str = Field(description="service, team-default, handoff, fallback or none")
    detail: str


class StepTargetOut(OutModel):
    user: str
    via: str


class EscalationStepOut(OutModel):
    step: int
    repeat: int
    round: int
    ran_at: datetime
    targets: list[StepTargetOut]
    notes: list[str]


class EscalationSummaryOut(OutModel):
    group_id: int
    title: str
    service: str | None
    policy: str | None
    status: str
    round: int
    next_step_at: datetime | None
    opened_at: datetime


class EscalationOut(OutModel):
    group_id: int
    title: str
    service: str | None
    team: str | None
    policy: str | None
    policy_version: int | None
    source: str
    source_detail: str
    status: str
    round: int
    next_step: int | None
    next_repeat: int | None
    next_step_at: datetime | None
    opened_at: datetime
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    exhausted_at: datetime | None
    snapshot: dict[str, Any]
    steps: list[EscalationStepOut]
    notifications: list[NotificationOut]
