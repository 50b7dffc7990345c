"""Alerting models at the edges: the config kinds' specs (Integration, RoutingRule, Silence), API bodies and
answers, and the payloads senders post (Alertmanager, Grafana, PagerDuty Events v2, the generic webhook).

Sender payloads are tolerant: unknown fields are ignored (senders keep adding them: Alertmanager's
``notification_reason`` and ``routeLabels``, Grafana's ``appVersion``). Relia's own models refuse them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from relia.alerting import rules
from relia.core.schemas import ApiModel, OutModel, Slug, Text, Versioned

# ------------------------------------------------------------------------------------------------ values


def _check_duration(value: str) -> str:
    rules.parse_duration(value)
    return value


Duration = Annotated[
    str,
    StringConstraints(max_length=8, strip_whitespace=True),
    AfterValidator(_check_duration),
    Field(description="A whole number of seconds (s), minutes (m), hours (h), days (d) or weeks (w): 30m, 4h, 7d"),
]


def _canonical_matcher(value: str) -> str:
    return str(rules.parse_matcher(value))


MatcherText = Annotated[
    str,
    StringConstraints(min_length=3, max_length=1100),
    AfterValidator(_canonical_matcher),
    Field(
        description='A label matcher as in Alertmanager: name="value", name!="value", name=~"regex", name!~"regex" '
        "(regular expressions match the whole value; a missing label counts as empty)",
        examples=['severity="critical"', 'team=~"payments|checkout"'],
    ),
]


def _check_label_name(value: str) -> str:
    if not rules.is_label_name(value):
        raise ValueError(f"{value!r} is not a label name (letters, digits and underscores, not starting with a digit)")
    return value


LabelName = Annotated[str, StringConstraints(max_length=100), AfterValidator(_check_label_name)]


def _lenient_time(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    parsed = rules.parse_timestamp(value)
    if parsed is None:
        raise ValueError("not an ISO 8601 time (e.g. 2026-03-02T09:00:00Z)")
    return parsed


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-03-02T09:00:00Z)")
    return value


Instant = Annotated[datetime, BeforeValidator(_lenient_time), AfterValidator(_aware)]


def _unique(values: list[str] | None, what: str) -> list[str] | None:
    if values is None:
        return None
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise ValueError(f"each {what} may appear once; repeated: {', '.join(duplicates)}")
    return values


# ------------------------------------------------------------------------------------------- integration


class IntegrationSpec(ApiModel):
    description: Text = ""
    service: Slug = Field(description="The default service: where alerts go when no routing rule matches them.")
    enabled: bool = Field(default=True, description="A disabled integration answers like an unknown key (404).")
    group_by: list[LabelName] | None = Field(
        default=None,
        max_length=20,
        description="Group alerts of a service that agree on these labels (from any integration). Without it, "
        "the sender's own grouping is kept: one group per Alertmanager/Grafana group key, per PagerDuty "
        "dedup_key, per generic `group` (or alert).",
    )
    group_window: Duration = Field(
        default="1h", description="A new alert joins an open group only while the group is younger than this."
    )
    auto_resolve_after: Duration | None = Field(
        default=None, description="Resolve a group once none of its alerts has been reported for this long."
    )

    @field_validator("group_by")
    @classmethod
    def _unique_labels(cls, value: list[str] | None) -> list[str] | None:
        return _unique(value, "label")


class IntegrationCreate(IntegrationSpec):
    name: Slug


class KeyInfo(OutModel):
    hint: str | None = Field(description="The key's last four characters, to tell keys apart; null: no key yet.")
    created_at: datetime | None
    previous_key_valid_until: datetime | None = Field(
        description="After a rotation with a grace period, the old key works until then."
    )


class IntegrationOut(Versioned):
    name: str
    description: str
    service: str
    enabled: bool
    group_by: list[str] | None
    group_window: str
    auto_resolve_after: str | None
    key: KeyInfo
    endpoints: dict[str, str] = Field(
        description="Where senders post, with the key written as {key} (it is shown only when created or rotated)."
    )


class IntegrationWithKey(IntegrationOut):
    secret: str = Field(description="The integration key. Shown this once; only a hash is stored.")
    urls: dict[str, str] = Field(description="The endpoints with the key filled in.")


class RotateKey(ApiModel):
    grace: Duration | None = Field(
        default=None, description="Let the old key keep working this long (at most 7d); default: it stops at once."
    )


# ----------------------------------------------------------------------------------------------- routing


class RoutingRuleSpec(ApiModel):
    description: Text = ""
    integration: Slug | None = Field(
        default=None,
        description="Only alerts of this integration. Without it, the rule applies to every integration (after "
        "the integration's own rules) and only administrators may write it.",
    )
    order: int = Field(default=100, ge=0, le=100_000, description="Lower first; ties by name.")
    matchers: list[MatcherText] = Field(
        default_factory=list, max_length=50, description="All must match; none matches every alert."
    )
    service: Slug = Field(description="The service that matching alerts go to.")


class RoutingRuleCreate(RoutingRuleSpec):
    name: Slug


class RoutingRuleOut(Versioned):
    name: str
    description: str
    integration: str | None
    order: int
    matchers: list[str]
    service: str


# ---------------------------------------------------------------------------------------------- silences


class SilenceSpec(ApiModel):
    service: Slug | None = Field(
        default=None, description="Only alerts of this service. With no matchers: a maintenance window."
    )
    matchers: list[MatcherText] = Field(default_factory=list, max_length=50)
    starts_at: Instant
    ends_at: Instant
    comment: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")] = Field(
        description="Why: shown wherever the silence is."
    )

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime, info: Any) -> datetime:
        starts = info.data.get("starts_at")
        if starts is not None and value <= starts:
            raise ValueError("must be after startsAt")
        return value

    @model_validator(mode="after")
    def _scoped(self) -> SilenceSpec:
        if self.service is None and not self.matchers:
            raise ValueError("give a service, matchers, or both: a silence of everything is not allowed")
        return self


class SilenceCreate(ApiModel):
    """A new silence through the API: ``startsAt`` defaults to now, and ``duration`` may replace ``endsAt``."""

    name: Slug | None = Field(default=None, description="Default: silence-<random>.")
    service: Slug | None = None
    matchers: list[MatcherText] = Field(default_factory=list, max_length=50)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    duration: Duration | None = None
    comment: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


class SilenceOut(Versioned):
    name: str
    service: str | None
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    state: Literal["pending", "active", "expired"]
    suppressed: int = Field(description="How many alerts it has suppressed.")


class SuppressedAlertOut(OutModel):
    alert_id: int
    summary: str
    service: str
    at: datetime
    released_at: datetime | None
    outcome: str | None = Field(description="grouped (it still fired when the silence ended) or resolved")
    group_id: int | None


class SilenceDetail(SilenceOut):
    suppressed_alerts: list[SuppressedAlertOut]


# ------------------------------------------------------------------------------------------ alerts, groups


class LinkOut(OutModel):
    href: str
    text: str


class AlertOut(OutModel):
    id: int
    group_id: int | None
    service: str
    integration: str | None
    source: str
    dedup_key: str
    status: str
    summary: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    links: list[LinkOut]
    details: dict[str, Any]
    routed_by: str | None = Field(description="The routing rule that chose the service; null: the default.")
    starts_at: datetime | None
    ends_at: datetime | None
    received_at: datetime
    last_received_at: datetime
    occurrences: int
    resolved_at: datetime | None
    resolved_by: str | None
    suppressed_by: str | None = Field(description="The silence that suppressed it (while it had no group).")


class AlertGroupOut(OutModel):
    id: int
    service: str
    integration: str | None
    source: str
    title: str
    severity: str
    state: str
    alert_count: int
    firing_count: int
    group_labels: dict[str, str]
    opened_at: datetime
    last_alert_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    source_url: str | None


class AlertGroupDetail(AlertGroupOut):
    alerts: list[AlertOut]


class SnoozeRequest(ApiModel):
    duration: Duration | None = Field(default=None, description="How long, e.g. 30m or 4h (at most 7d).")
    until: Instant | None = Field(default=None, description="Or until when.")


# --------------------------------------------------------------------------------------- sender payloads


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class AlertmanagerAlert(_Tolerant):
    status: Literal["firing", "resolved"]
    labels: dict[str, Any] = Field(default_factory=dict)
    annotations: dict[str, Any] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = Field(default=None, description="Computed from the labels when missing.")


class AlertmanagerWebhook(_Tolerant):
    """Alertmanager's webhook message (``version`` "4"). Unknown fields are ignored."""

    version: str | None = None
    groupKey: str | None = None
    truncatedAlerts: int | None = None
    status: str | None = None
    receiver: str | None = None
    groupLabels: dict[str, Any] | None = None
    commonLabels: dict[str, Any] | None = None
    commonAnnotations: dict[str, Any] | None = None
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert] = Field(max_length=100_000)


class GrafanaAlert(AlertmanagerAlert):
    silenceURL: str | None = None
    dashboardURL: str | None = None
    panelURL: str | None = None
    imageURL: str | None = None
    values: dict[str, Any] | None = None
    valueString: str | None = None


class GrafanaWebhook(AlertmanagerWebhook):
    """Grafana's webhook message (``version`` "1"): Alertmanager's shape with extras."""

    orgId: int | None = None
    title: str | None = None
    state: str | None = None
    message: str | None = None
    alerts: list[GrafanaAlert] = Field(max_length=100_000)  # type: ignore[assignment]


class PagerDutyPayload(_Tolerant):
    summary: str = Field(max_length=rules.SUMMARY_LIMIT)
    source: str
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: str | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: Any = None


class PagerDutyEventIn(_Tolerant):
    """PagerDuty Events API v2 (documentation of the body; validation follows PagerDuty's own messages)."""

    routing_key: str = Field(description="The integration key.")
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, max_length=rules.DEDUP_KEY_LIMIT)
    payload: PagerDutyPayload | None = None
    client: str | None = None
    client_url: str | None = None
    links: list[dict[str, Any]] | None = None
    images: list[dict[str, Any]] | None = None


class PagerDutyAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


class PagerDutyError(BaseModel):
    status: str
    message: str
    errors: list[str]


class GenericLink(ApiModel):
    href: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    text: Annotated[str, StringConstraints(max_length=200)] = ""


class GenericEvent(BaseModel):
    """Relia's own webhook format: one event per alert. Unknown fields are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_alias=True, validate_by_name=False, str_strip_whitespace=True
    )

    dedup_key: Annotated[str, StringConstraints(min_length=1, max_length=rules.DEDUP_KEY_LIMIT)] | None = Field(
        default=None,
        description="The alert's identity within the integration. Default: a hash of source, summary and labels.",
    )
    status: Literal["firing", "resolved", "acknowledged"] = Field(
        default="firing", description="resolved ends the alert; acknowledged acknowledges its group."
    )
    summary: Annotated[str, StringConstraints(max_length=rules.SUMMARY_LIMIT)] | None = Field(
        default=None, description="Required to fire an alert."
    )
    severity: Literal["critical", "error", "warning", "info"] = "error"
    source: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="The affected system, e.g. a host name (also the label `source`)."
    )
    group: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Alerts with the same group (and service) share an alert group."
    )
    labels: dict[str, Annotated[str, StringConstraints(max_length=rules.LABEL_LIMIT)]] = Field(
        default_factory=dict, max_length=rules.MAX_LABELS
    )
    annotations: dict[str, Annotated[str, StringConstraints(max_length=rules.ANNOTATION_LIMIT)]] = Field(
        default_factory=dict, max_length=rules.MAX_LABELS
    )
    links: list[GenericLink] = Field(default_factory=list, max_length=rules.MAX_LINKS)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="Anything else, kept with the alert.")

    @model_validator(mode="after")
    def _identifiable(self) -> GenericEvent:
        if self.status == "firing" and not self.summary:
            raise ValueError("summary is required to fire an alert")
        if self.dedup_key is None and not self.summary:
            raise ValueError("give dedupKey (or the summary the alert fired with) to resolve or acknowledge")
        return self


class GenericBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    alerts: list[GenericEvent] = Field(min_length=1, max_length=1000)


class AlertOutcome(OutModel):
    dedup_key: str
    outcome: Literal["created", "updated", "resolved", "acknowledged", "suppressed", "ignored"]
    alert_id: int | None
    group_id: int | None


class IntakeResult(OutModel):
    status: Literal["ok"] = "ok"
    received: int
    truncated: int = Field(description="Alerts the sender left out of its message (its max_alerts).")
    counts: dict[str, int]
    alerts: list[AlertOutcome]
