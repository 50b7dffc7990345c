"""Notification rules (config kind ``NotificationRules`` and API body), and what the delivery log and the
pipeline's health look like from outside."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from relia.core.schemas import ApiModel, OutModel, Slug
from relia.notify.rules import DURATION, parse_duration

MAX_RULE_DELAY = 24 * 3600


def _check_delay(value: str) -> str:
    if parse_duration(value) > MAX_RULE_DELAY:
        raise ValueError("at most 1d: a notification a day late pages nobody in time")
    return value


Delay = Annotated[
    str,
    StringConstraints(pattern=DURATION.pattern, max_length=8),
    AfterValidator(_check_delay),
    Field(description="How long after the escalation step pages you: 0m (at once), 5m, 1h... at most 1d"),
]


class NotificationRuleSpec(ApiModel):
    contact_method: Slug = Field(description="The name of one of your contact methods")
    after: Delay = "0m"


class NotificationRulesSpec(ApiModel):
    """A user's personal notification rules, in order. Each page starts all of them: the rules with ``after:
    0m`` at once, the others later unless the alert group was acknowledged or resolved by then. No rules:
    every contact method at once."""

    rules: list[NotificationRuleSpec] = Field(default_factory=list, max_length=20)

    @field_validator("rules")
    @classmethod
    def _no_duplicates(cls, rules: list[NotificationRuleSpec]) -> list[NotificationRuleSpec]:
        seen = set()
        for rule in rules:
            key = (rule.contact_method, rule.after)
            if key in seen:
                raise ValueError(f"{rule.contact_method} after {rule.after} is listed twice")
            seen.add(key)
        return rules


class NotificationRulesIn(NotificationRulesSpec):
    version: int | None = Field(default=None, description="The version you read; a stale one gets 409")


class EffectiveContactOut(OutModel):
    contact_method: str
    kind: str
    after_seconds: int
    after: str


class NotificationRulesOut(OutModel):
    user: str
    rules: list[NotificationRuleSpec]
    effective: list[EffectiveContactOut] = Field(description="What a page does now, fallbacks included")
    notes: list[str]
    version: int = Field(description="0 while the user has never set rules")


class DeliveryAttemptOut(OutModel):
    attempt: int
    at: datetime
    ok: bool
    duration_ms: int
    detail: str


NotificationStatus = Literal[
    "queued", "throttled", "retrying", "delivered", "failed", "cancelled", "unreachable", "unknown"
]


class NotificationOut(OutModel):
    """One contact attempt of one page, with its delivery. Addresses are never shown: contact method names
    and kinds are enough to act on, and the log is visible to everyone who can see the alert group."""

    id: int
    group_id: int
    round: int
    step: int = Field(description="The escalation step, counted from 1 as on the policy page")
    repeat: int
    user: str
    contact_method: str | None
    kind: str | None
    after_seconds: int
    status: NotificationStatus
    note: str | None
    paged_at: datetime
    scheduled_for: datetime | None = Field(description="When the message is due to leave, while it waits")
    delivered_at: datetime | None
    bundled_with: int = Field(description="Other pages listed in the same message")
    attempts: list[DeliveryAttemptOut]


class PipelineHealthOut(OutModel):
    status: Literal["ok", "stalled"]
    checked_at: datetime
    stall_after_seconds: int
    overdue_timers: int
    oldest_timer_due_at: datetime | None
    overdue_messages: int
    oldest_message_due_at: datetime | None
    failed_last_hour: int = Field(description="Notifications whose delivery gave up in the last hour")
    unreachable_last_hour: int = Field(description="Pages that found no contact method in the last hour")
    stalled_since: datetime | None
    last_alert_at: datetime | None
    last_alert_result: str | None
    last_ping_at: datetime | None
    last_ping_result: str | None
