"""Relia SLOs and data sources written as OpenSLO ``openslo/v1`` documents.

The export is the inverse of :mod:`relia.slo.openslo`: importing it gives back the same Relia specs. Each SLO
becomes one ``SLO`` with an inline indicator (named like the SLO) and its alert tiers as inline
``AlertPolicy`` objects (one burn-rate condition each, as OpenSLO v1 allows); each data source a
``DataSource``. What OpenSLO has no field for travels in ``relia.dev/`` annotations, which other tools ignore:

* ``relia.dev/objective-names`` on the SLO, when an objective's name is not the slug of its display name;
* ``relia.dev/indicator: probe`` on the indicator: a probe is written as a ``thresholdMetric`` whose
  objectives are ``op: gte``, ``value: 1`` (the 0/1 gauge is at least 1), which is what it means to OpenSLO;
* ``relia.dev/short-window`` on a condition whose short window is not the long one / 12.

Pushed events are a ``metricSource`` of type ``Relia`` (external sources: their vendor); a Prometheus
histogram threshold indicator is the query ``<metric>_bucket{<selector>}`` (its unit in the metricSource's
``spec.unit``); a calendar window starts on 2024-01-01 00:00 (a Monday, and the first day of a month, a
quarter and a year) in its time zone. Alert policies carry a notification target ``relia`` (OpenSLO requires
one): alerts stay in Relia.

What does not round-trip is left out, and :attr:`OpenSLOExport.warnings` names it: alerting names, labels
and annotations, disabled page/ticket alerts, the no-data delay, ``minEvents``, a no-data alert on an SLO
with the default tiers, an objective display name equal to its name, and (unless asked for) data source
headers, which may hold credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from relia.slo.openslo import (
    BUDGET_PERCENT_DIGITS,
    INDICATOR_ANNOTATION,
    OBJECTIVE_NAMES_ANNOTATION,
    PUSHED_TYPE,
    RELIA_NOTIFICATION_TARGET,
    SHORT_WINDOW_ANNOTATION,
    V1,
    budget_percent,
    objective_names,
    short_window,
    slugify,
)
from relia.slo.rules import NOMINAL_MINUTES, CalendarUnit, exact, parse_duration
from relia.slo.schemas import AlertingSpec, AlertTierSpec, DataSourceSpec, SLOSpec

CALENDAR_START = "2024-01-01 00:00:00"
_CALENDAR_DURATIONS = {"week": "1w", "month": "1M", "quarter": "1Q", "year": "1Y"}


@dataclass
class OpenSLOExport:
    """OpenSLO document bodies (data sources first, then SLOs, each by name), and what was left out."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def export_openslo(
    slos: Mapping[str, SLOSpec],
    data_sources: Mapping[str, DataSourceSpec] | None = None,
    *,
    with_secrets: bool = False,
) -> OpenSLOExport:
    """``slos`` and ``data_sources`` (by name) as OpenSLO v1 documents. Data sources the SLOs use should be
    given: an SLO's metric source names its type. Headers are written only ``with_secrets``."""
    sources = dict(data_sources or {})
    export = OpenSLOExport()
    for name, source in sorted(sources.items()):
        export.documents.append(_data_source(name, source, export.warnings, with_secrets=with_secrets))
    for name, slo in sorted(slos.items()):
        export.documents.append(_slo(name, slo, sources, export.warnings))
    return export


# ---------------------------------------------------------------------------------------------- data sources


def _data_source(name: str, source: DataSourceSpec, warnings: list[str], *, with_secrets: bool) -> dict[str, Any]:
    spec: dict[str, Any]
    if source.type == "prometheus":
        details: dict[str, Any] = {"url": source.url}
        if source.headers:
            if with_secrets:
                details["headers"] = dict(source.headers)
            else:
                warnings.append(f"DataSource {name}: headers are left out (they may hold credentials)")
        if source.timeout_seconds != DataSourceSpec.model_fields["timeout_seconds"].default:
            details["timeoutSeconds"] = source.timeout_seconds
        spec = {"type": "Prometheus", "connectionDetails": details}
    else:
        spec = {"type": source.vendor or PUSHED_TYPE, "connectionDetails": {}}
    if source.description:
        spec["description"] = source.description
    return {"apiVersion": V1, "kind": "DataSource", "metadata": {"name": name}, "spec": spec}


def _source_type(name: str | None, sources: Mapping[str, DataSourceSpec], *, has_queries: bool) -> str:
    if name is None:
        return PUSHED_TYPE
    source = sources.get(name)
    if source is None:
        return "Prometheus" if has_queries else PUSHED_TYPE
    return "Prometheus" if source.type == "prometheus" else (source.vendor or PUSHED_TYPE)


# ----------------------------------------------------------------------------------------------------- SLOs


def _slo(name: str, slo: SLOSpec, sources: Mapping[str, DataSourceSpec], warnings: list[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if slo.display_name:
        metadata["displayName"] = slo.display_name
    if slo.labels:
        metadata["labels"] = dict(slo.labels)
    annotations = _objective_annotations(name, slo, warnings)
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {}
    if slo.description:
        spec["description"] = slo.description
    indicator, comparison = _indicator(name, slo, sources)
    spec |= {
        "service": slo.service,
        "indicator": indicator,
        "timeWindow": [_time_window(slo)],
        "budgetingMethod": slo.budgeting_method,
        "objectives": [_objective(slo, index, comparison) for index in range(len(slo.objectives))],
    }
    policies = _alert_policies(name, slo, warnings)
    if policies:
        spec["alertPolicies"] = policies
    return {"apiVersion": V1, "kind": "SLO", "metadata": metadata, "spec": spec}


def _objective_annotations(name: str, slo: SLOSpec, warnings: list[str]) -> dict[str, str]:
    display_names = [objective.display_name or objective.name for objective in slo.objectives]
    for objective in slo.objectives:
        if objective.time_slice_target is not None and slo.budgeting_method == "RatioTimeslices":
            warnings.append(
                f"SLO {name}: objective {objective.name!r} has a timeSliceTarget, which RatioTimeslices does not "
                "use; not exported"
            )
        if objective.display_name == objective.name:
            warnings.append(
                f"SLO {name}: objective {objective.name!r} has a display name equal to its name; it comes back "
                "without one"
            )
    if objective_names(display_names) == [objective.name for objective in slo.objectives]:
        return {}
    return {OBJECTIVE_NAMES_ANNOTATION: ",".join(objective.name for objective in slo.objectives)}


def _time_window(slo: SLOSpec) -> dict[str, Any]:
    window = slo.window
    if window.rolling is not None:
        return {"duration": window.rolling, "isRolling": True}
    assert window.calendar is not None
    return {
        "duration": _CALENDAR_DURATIONS[window.calendar],
        "isRolling": False,
        "calendar": {"startTime": CALENDAR_START, "timeZone": window.time_zone},
    }


def _metric_source(source: str | None, source_type: str, spec: dict[str, Any]) -> dict[str, Any]:
    metric_source: dict[str, Any] = {}
    if source is not None:
        metric_source["metricSourceRef"] = source
    metric_source |= {"type": source_type, "spec": spec}
    return {"metricSource": metric_source}


def _indicator(
    name: str, slo: SLOSpec, sources: Mapping[str, DataSourceSpec]
) -> tuple[dict[str, Any], tuple[str, list[float]] | None]:
    """The inline indicator, and for threshold metrics the objectives' op and values."""
    indicator = slo.indicator
    metadata: dict[str, Any] = {"name": name}
    spec: dict[str, Any]
    comparison: tuple[str, list[float]] | None = None
    if indicator.ratio is not None:
        ratio = indicator.ratio
        source_type = _source_type(indicator.source, sources, has_queries=ratio.has_queries)

        def leg(query: str | None) -> dict[str, Any]:
            return _metric_source(indicator.source, source_type, {"query": query} if query else {})

        if ratio.error_ratio is not None:
            spec = {"ratioMetric": {"rawType": "failure", "raw": leg(ratio.error_ratio)}}
        else:
            counted = "bad" if ratio.bad is not None else "good"
            spec = {
                "ratioMetric": {
                    "counter": True,
                    counted: leg(ratio.bad if ratio.bad is not None else ratio.good),
                    "total": leg(ratio.total),
                }
            }
    elif indicator.threshold is not None:
        threshold = indicator.threshold
        source_type = _source_type(indicator.source, sources, has_queries=threshold.metric is not None)
        source_spec: dict[str, Any] = {}
        if threshold.metric is not None:
            selector = f"{{{threshold.selector}}}" if threshold.selector else ""
            source_spec["query"] = f"{threshold.metric}_bucket{selector}"
        if threshold.unit != "s":
            source_spec["unit"] = threshold.unit
        spec = {"thresholdMetric": _metric_source(indicator.source, source_type, source_spec)}
        comparison = (threshold.op, [objective.threshold or 0.0 for objective in slo.objectives])
    else:
        probe = indicator.probe
        assert probe is not None
        source_type = _source_type(indicator.source, sources, has_queries=probe.query is not None)
        spec = {
            "thresholdMetric": _metric_source(
                indicator.source, source_type, {"query": probe.query} if probe.query else {}
            )
        }
        metadata["annotations"] = {INDICATOR_ANNOTATION: "probe"}
        comparison = ("gte", [1.0] * len(slo.objectives))
    return {"metadata": metadata, "spec": spec}, comparison


def _objective(slo: SLOSpec, index: int, comparison: tuple[str, list[float]] | None) -> dict[str, Any]:
    objective = slo.objectives[index]
    out: dict[str, Any] = {"displayName": objective.display_name or objective.name}
    if comparison is not None:
        out |= {"op": comparison[0], "value": comparison[1][index]}
    out["target"] = objective.target
    if objective.time_slice_target is not None and slo.budgeting_method == "Timeslices":
        out["timeSliceTarget"] = objective.time_slice_target
    if objective.time_slice_window is not None and slo.budgeting_method != "Occurrences":
        out["timeSliceWindow"] = objective.time_slice_window
    return out


# --------------------------------------------------------------------------------------------------- alerts


def _period_minutes(slo: SLOSpec) -> int:
    if slo.window.rolling is not None:
        return parse_duration(slo.window.rolling)
    return NOMINAL_MINUTES[CalendarUnit(slo.window.calendar)]


def burn_rate_threshold(tier: AlertTierSpec, period_minutes: int) -> float:
    """The burn rate at which ``tier`` spends its share of the budget within its long window:
    budget% / 100 x period / long. Its import gives the share back to 12 significant digits."""
    return float(exact(tier.budget_percent) / 100 * Fraction(period_minutes, parse_duration(tier.long)))


def _alert_policies(name: str, slo: SLOSpec, warnings: list[str]) -> list[dict[str, Any]]:
    alerting = slo.alerting
    _warn_unexported(name, alerting, warnings)
    if not alerting.windows:
        return []
    period = _period_minutes(slo)
    policies = []
    base = slugify(name)[:48].rstrip("-")
    for index, tier in enumerate(alerting.windows, start=1):
        condition_metadata: dict[str, Any] = {"name": f"{base}-{tier.severity}-burn-{index}"}
        if parse_duration(tier.short) != short_window(parse_duration(tier.long)):
            condition_metadata["annotations"] = {SHORT_WINDOW_ANNOTATION: tier.short}
        threshold = burn_rate_threshold(tier, period)
        if budget_percent(exact(threshold), parse_duration(tier.long), period) != tier.budget_percent:
            warnings.append(
                f"SLO {name}: tier {index} spends {tier.budget_percent!r} % of the budget, which comes back "
                f"rounded to {BUDGET_PERCENT_DIGITS} significant digits"
            )
        policy_spec: dict[str, Any] = {
            "description": f"{tier.budget_percent:g} % of the budget spent within {tier.long}",
            "alertWhenBreaching": True,
        }
        if alerting.no_data.enabled and index == 1:
            policy_spec["alertWhenNoData"] = True
        policy_spec |= {
            "conditions": [
                {
                    "kind": "AlertCondition",
                    "metadata": condition_metadata,
                    "spec": {
                        "severity": tier.severity,
                        "condition": {
                            "kind": "burnrate",
                            "op": "gt",
                            "threshold": threshold,
                            "lookbackWindow": tier.long,
                            "alertAfter": "0m",
                        },
                    },
                }
            ],
            "notificationTargets": [
                {
                    "kind": "AlertNotificationTarget",
                    "metadata": {"name": RELIA_NOTIFICATION_TARGET},
                    "spec": {"target": RELIA_NOTIFICATION_TARGET, "description": "Alerts are kept in Relia"},
                }
            ],
        }
        policies.append(
            {"kind": "AlertPolicy", "metadata": {"name": f"{base}-{tier.severity}-{index}"}, "spec": policy_spec}
        )
    return policies


def _warn_unexported(name: str, alerting: AlertingSpec, warnings: list[str]) -> None:
    defaults = AlertingSpec().model_dump(mode="json")
    current = alerting.model_dump(mode="json")
    left_out = []
    for key in ("name", "labels", "annotations", "minEvents"):
        if current[key] != defaults[key]:
            left_out.append(f"alerting.{key}")
    for severity in ("page", "ticket"):
        for key, value in current[severity].items():
            if value != defaults[severity][key]:
                left_out.append(f"alerting.{severity}.{key}")
    if current["noData"]["after"] != defaults["noData"]["after"]:
        left_out.append("alerting.noData.after")
    if alerting.no_data.enabled and not alerting.windows:
        left_out.append("alerting.noData.enabled (OpenSLO sets it on a policy, and this SLO has default tiers)")
    if left_out:
        warnings.append(f"SLO {name}: OpenSLO has no field for {', '.join(left_out)}; not exported")
