"""SLO and DataSource specs (config kinds and API bodies), and the API's response models.

An SLO belongs to a service (its owner team may change it), measures one indicator (ratio, threshold or
probe) fed by pushed events or a Prometheus data source, over a rolling or calendar window, against one or
more objectives.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from relia.core.schemas import ApiModel, OutModel, Slug, Text, TimeZone

DURATION_PATTERN = r"^[1-9][0-9]{0,5}(m|h|d|w)$"
Duration = Annotated[
    str,
    StringConstraints(pattern=DURATION_PATTERN, max_length=8),
    Field(description="A whole number of minutes (m), hours (h), days (d) or weeks (w), e.g. 5m, 1h, 28d"),
]
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
LabelMap = Annotated[dict[str, Annotated[str, StringConstraints(max_length=1000)]], Field(max_length=64)]
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

BudgetingMethod = Literal["Occurrences", "Timeslices", "RatioTimeslices"]
CalendarUnit = Literal["week", "month", "quarter", "year"]
Comparison = Literal["lt", "lte", "gt", "gte"]


def _check_label_names(value: dict[str, str] | None) -> dict[str, str] | None:
    for name in value or {}:
        if not _LABEL_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid Prometheus label name")
    return value


# ------------------------------------------------------------------------------------------- data sources


class DataSourceSpec(ApiModel):
    type: Literal["prometheus", "external"] = Field(
        description="`prometheus`: Relia queries it. `external`: a system Relia cannot query (for example "
        "an imported OpenSLO Datadog source); its SLOs are fed by pushed events."
    )
    url: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="Base URL of the Prometheus HTTP API, e.g. http://prometheus:9090"
    )
    headers: Annotated[dict[str, Annotated[str, StringConstraints(max_length=4000)]], Field(max_length=20)] = Field(
        default_factory=dict,
        description="Sent with every query (e.g. Authorization); shown and exported only to administrators.",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    vendor: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="For external sources: the vendor's name (Datadog, CloudWatch, ...)"
    )
    description: Text = ""

    @model_validator(mode="after")
    def _url_for_prometheus(self) -> DataSourceSpec:
        if self.type == "prometheus" and not (self.url and re.match(r"^https?://[^/\s]+", self.url)):
            raise ValueError("a prometheus data source needs an http(s) url")
        return self


# --------------------------------------------------------------------------------------------- indicator


class RatioIndicator(ApiModel):
    """Good (or bad) events over total events. Without a data source the counts are pushed; with a
    Prometheus source each field is PromQL returning a per-second rate over `{{.window}}` (as in Sloth)."""

    good: PromQL | None = None
    bad: PromQL | None = None
    total: PromQL | None = None
    error_ratio: PromQL | None = Field(
        default=None,
        description="PromQL giving the error ratio (0..1) over `{{.window}}` directly (Sloth raw).",
    )

    @model_validator(mode="after")
    def _one_shape(self) -> RatioIndicator:
        if self.good and self.bad:
            raise ValueError("give good or bad, not both")
        if self.error_ratio and (self.good or self.bad or self.total):
            raise ValueError("errorRatio stands alone: give either errorRatio or good/bad with total")
        if (self.good or self.bad) and not self.total:
            raise ValueError("total is required with good or bad")
        if self.total and not (self.good or self.bad):
            raise ValueError("give good or bad with total")
        return self

    @property
    def has_queries(self) -> bool:
        return bool(self.total or self.error_ratio)


class ThresholdIndicator(ApiModel):
    """A value (latency, size, ...) compared with each objective's threshold. Pushed raw values, or a
    Prometheus histogram whose buckets include each objective's threshold."""

    metric: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", max_length=200)] | None = Field(
        default=None, description="Histogram base name, e.g. http_request_duration_seconds"
    )
    selector: Annotated[str, StringConstraints(max_length=2000)] = Field(
        default="", description='Label matchers without braces, e.g. job="checkout",code!~"5.."'
    )
    op: Comparison = Field(default="lte", description="An event is good when value <op> threshold")
    unit: Annotated[str, StringConstraints(max_length=20)] = "s"


class ProbeIndicator(ApiModel):
    """Up/down samples (1 = up). Pushed as ok=true/false, or a PromQL 0/1 gauge such as probe_success."""

    query: PromQL | None = None


class IndicatorSpec(ApiModel):
    source: Slug | None = Field(default=None, description="A DataSource name; without one, events are pushed.")
    ratio: RatioIndicator | None = None
    threshold: ThresholdIndicator | None = None
    probe: ProbeIndicator | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> IndicatorSpec:
        kinds = [name for name in ("ratio", "threshold", "probe") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of ratio, threshold or probe")
        return self

    @property
    def kind(self) -> Literal["ratio", "threshold", "probe"]:
        return "ratio" if self.ratio else "threshold" if self.threshold else "probe"


# ---------------------------------------------------------------------------------------- window, targets


class WindowSpec(ApiModel):
    rolling: Duration | None = Field(default=None, description="A rolling window, e.g. 28d or 30d")
    calendar: CalendarUnit | None = Field(default=None, description="A calendar window: week, month, ...")
    time_zone: TimeZone = Field(default="UTC", description="Where calendar periods start (midnight local)")

    @model_validator(mode="after")
    def _exactly_one(self) -> WindowSpec:
        if (self.rolling is None) == (self.calendar is None):
            raise ValueError("give exactly one of rolling or calendar")
        if self.rolling is not None and self.rolling.endswith("m"):
            raise ValueError(
                f"a rolling SLO window of {self.rolling} is minutes; months are not a rolling "
                "unit here: use e.g. 30d, or calendar: month"
            )
        return self


Ratio = Annotated[float, Field(gt=0, lt=1)]


class ObjectiveSpec(ApiModel):
    name: Slug = "default"
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    target: Ratio = Field(description="The objective as a ratio, e.g. 0.999")
    threshold: float | None = Field(default=None, description="Threshold indicators: the bound on the value")
    time_slice_target: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="Timeslices: a slice is good when its ratio is at least this"
    )
    time_slice_window: Duration | None = Field(default=None, description="Timeslices: the slice length")


# ------------------------------------------------------------------------------------------------ alerts


class AlertTierSpec(ApiModel):
    severity: Literal["page", "ticket"]
    budget_percent: Annotated[float, Field(gt=0, le=100)]
    long: Duration
    short: Duration


class AlertSpec(ApiModel):
    enabled: bool = True
    name: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Alert name in exported Prometheus rules"
    )
    labels: LabelMap = Field(default_factory=dict)
    annotations: LabelMap = Field(default_factory=dict)

    _labels = field_validator("labels")(_check_label_names)


class NoDataSpec(ApiModel):
    enabled: bool = False
    after: Duration = Field(default="30m", description="Alert when no events arrived for this long")


class AlertingSpec(ApiModel):
    name: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Default alert name for page and ticket"
    )
    labels: LabelMap = Field(default_factory=dict)
    annotations: LabelMap = Field(default_factory=dict)
    page: AlertSpec = Field(default_factory=AlertSpec)
    ticket: AlertSpec = Field(default_factory=AlertSpec)
    no_data: NoDataSpec = Field(default_factory=NoDataSpec)
    windows: list[AlertTierSpec] | None = Field(
        default=None,
        max_length=8,
        description="Multiwindow multi-burn-rate tiers; default: the SRE Workbook / Sloth catalog for the period",
    )
    min_events: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=0, description="A window with fewer events never fires (low-traffic guard)"
    )

    _labels = field_validator("labels")(_check_label_names)


# --------------------------------------------------------------------------------------------------- SLO


class SLOSpec(ApiModel):
    service: Slug
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Text = ""
    labels: LabelMap = Field(default_factory=dict)
    indicator: IndicatorSpec
    budgeting_method: BudgetingMethod = "Occurrences"
    window: WindowSpec
    objectives: list[ObjectiveSpec] = Field(min_length=1, max_length=12)
    alerting: AlertingSpec = Field(default_factory=AlertingSpec)

    _labels = field_validator("labels")(_check_label_names)

    @model_validator(mode="after")
    def _consistent(self) -> SLOSpec:
        names = [objective.name for objective in self.objectives]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"objective names must be unique; repeated: {', '.join(repeated)}")
        for objective in self.objectives:
            if self.indicator.threshold is not None and objective.threshold is None:
                raise ValueError(f"objective {objective.name!r} needs a threshold for a threshold indicator")
            if self.indicator.threshold is None and objective.threshold is not None:
                raise ValueError(f"objective {objective.name!r}: threshold is only for threshold indicators")
            if self.budgeting_method == "Timeslices" and (
                objective.time_slice_target is None or objective.time_slice_window is None
            ):
                raise ValueError(f"objective {objective.name!r}: Timeslices needs timeSliceTarget and timeSliceWindow")
            if self.budgeting_method == "RatioTimeslices" and objective.time_slice_window is None:
                raise ValueError(f"objective {objective.name!r}: RatioTimeslices needs timeSliceWindow")
            if self.budgeting_method == "Occurrences" and (
                objective.time_slice_target is not None or objective.time_slice_window is not None
            ):
                raise ValueError(
                    f"objective {objective.name!r}: time slices are only for Timeslices and RatioTimeslices"
                )
        if self.indicator.source is None and self.indicator.ratio is not None and self.indicator.ratio.has_queries:
            raise ValueError("indicator queries need a source (a DataSource name); pushed SLOs have none")
        return self


class SLOCreate(SLOSpec):
    name: Slug


# ---------------------------------------------------------------------------------------------- ingestion


class CountPoint(ApiModel):
    timestamp: datetime
    good: Annotated[float, Field(ge=0)] | None = None
    bad: Annotated[float, Field(ge=0)] | None = None
    total: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _consistent(self) -> CountPoint:
        if (self.good is None) == (self.bad is None):
            raise ValueError("give good or bad (not both) with total")
        counted = self.good if self.good is not None else self.bad
        assert counted is not None
        if counted > self.total:
            raise ValueError(
                f"{'good' if self.good is not None else 'bad'} ({counted:g}) exceeds total ({self.total:g})"
            )
        return self


class EventPoint(ApiModel):
    timestamp: datetime
    ok: bool | None = Field(default=None, description="Ratio or probe indicators: was this event good?")
    value: float | None = Field(default=None, description="Threshold indicators: the measured value")

    @model_validator(mode="after")
    def _one(self) -> EventPoint:
        if (self.ok is None) == (self.value is None):
            raise ValueError("give ok or value")
        return self


MAX_BATCH = 10_000


class EventBatch(ApiModel):
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="A repeated batch with the same key changes nothing"
    )
    objective: Slug | None = Field(default=None, description="Pre-counted points for one objective only")
    points: list[CountPoint] = Field(default_factory=list, max_length=MAX_BATCH)
    events: list[EventPoint] = Field(default_factory=list, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _something(self) -> EventBatch:
        if not self.points and not self.events:
            raise ValueError("give points (pre-counted) or events (raw)")
        return self


class IngestResult(OutModel):
    accepted: int
    minutes: int
    duplicate: bool = False


class AdjustmentCreate(ApiModel):
    start: datetime
    end: datetime
    reason: Annotated[str, StringConstraints(min_length=3, max_length=2000)]

    @model_validator(mode="after")
    def _ordered(self) -> AdjustmentCreate:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AdjustmentOut(OutModel):
    id: int
    start: datetime
    end: datetime
    reason: str
    created_by: str
    created_at: datetime
    deleted_at: datetime | None = None


def json_schema_of(model: type[ApiModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True)


# ------------------------------------------------------------------------------------------------ outputs


class DataSourceOut(OutModel):
    name: str
    spec: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class SourceHealthOut(OutModel):
    kind: str = Field(description="push, prometheus or external")
    data_source: str | None = None
    failing: bool = False
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_sample_at: datetime | None = None
    backfilled: bool = True


class ObjectiveStatusOut(OutModel):
    objective: str
    display_name: str | None = None
    target: float
    state: Literal["healthy", "at_risk", "exhausted", "no_data", "pending"] = Field(
        description="pending: not evaluated yet"
    )
    budget_remaining: float | None = None
    evaluated_at: datetime | None = None
    detail: dict[str, Any] | None = None


class SLOOut(OutModel):
    name: str
    service: str
    spec: dict[str, Any]
    source: SourceHealthOut
    objectives: list[ObjectiveStatusOut]
    lints: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
