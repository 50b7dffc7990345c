"""Prometheus recording and alerting rules for Relia SLOs, in Sloth's layout.

The rules are those ``sloth generate`` writes (github.com/slok/sloth), so Sloth's Grafana dashboards and any
alert routing built on Sloth's labels keep working; a Sloth spec imported with :mod:`relia.slo.sloth` exports
to rules equivalent to Sloth's own. Per exported SLO ``<id>`` there are three groups:

* ``sloth-slo-sli-recordings-<id>``: ``slo:sli_error:ratio_rate<W>``, the error ratio over every alert window
  ``W`` and over the period (by default, like Sloth, the mean over the period of the ratios of the first page
  tier's short window, 5m: cheap, but a mean of ratios; see :attr:`RuleOptions.optimized_period`);
* ``sloth-slo-meta-recordings-<id>``: ``slo:objective:ratio``, ``slo:error_budget:ratio``,
  ``slo:time_period:days``, ``slo:current_burn_rate:ratio``, ``slo:period_burn_rate:ratio``,
  ``slo:period_error_budget_remaining:ratio`` and ``sloth_slo_info``;
* ``sloth-slo-alerts-<id>``: one page and one ticket alert, each firing when any tier of its severity sees
  the error ratio above ``factor x budget`` over both its short and its long window (multiwindow,
  multi-burn-rate); no ``for:``, as in Sloth.

Labels: ``sloth_id`` = ``<service>-<slo>``, where ``<slo>`` (``sloth_slo``) is the Relia SLO name with a leading
``<service>-`` removed, so an imported Sloth SLO keeps its ids; an SLO with several objectives exports one
Sloth SLO per objective, ``<slo>-<objective>``. ``sloth_service``, ``sloth_window`` (SLI rules) and
``sloth_severity`` (alerts) as in Sloth; the SLO's labels, then the extra labels, on every recording rule.

Error ratios per indicator (``W`` substituted for ``{{.window}}``):

* ratio ``bad``/``total``: ``(bad) / (total)``; ``good``/``total``: ``((total) - (good)) / (total)``;
  ``errorRatio``: the query itself, over the whole window (as Sloth does; Relia's own evaluation reads it
  minute by minute and weighs every minute alike, so the two differ when traffic is uneven);
* threshold (a Prometheus histogram ``metric``): the share of ``metric_count`` outside the bucket of the
  objective's threshold (``lte``, ``lt``) or inside it (``gt``, ``gte``), with ``le`` matched in every
  spelling exporters use, as :mod:`relia.slo.prometheus` reads it;
* probe (a 0/1 gauge): the share of its samples that are 0, ``1 - avg_over_time(query[W])``.

What Sloth's rules cannot say is refused (pushed SLOs, Timeslices) or, where the rules stay close, named in
:attr:`RuleSet.warnings`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import yaml

from relia import __version__
from relia.core.errors import FieldError, InvalidInput
from relia.slo import promql, rules
from relia.slo.prometheus import le_matcher
from relia.slo.rules import AlertCatalog, AlertTier, Severity
from relia.slo.schemas import ObjectiveSpec, SLOSpec

SLI_ERROR_RECORD = "slo:sli_error:ratio_rate"
OBJECTIVE_RECORD = "slo:objective:ratio"
ERROR_BUDGET_RECORD = "slo:error_budget:ratio"
TIME_PERIOD_RECORD = "slo:time_period:days"
CURRENT_BURN_RATE_RECORD = "slo:current_burn_rate:ratio"
PERIOD_BURN_RATE_RECORD = "slo:period_burn_rate:ratio"
PERIOD_BUDGET_REMAINING_RECORD = "slo:period_error_budget_remaining:ratio"
INFO_RECORD = "sloth_slo_info"

ID_LABEL, SERVICE_LABEL, SLO_LABEL = "sloth_id", "sloth_service", "sloth_slo"
WINDOW_LABEL, SEVERITY_LABEL = "sloth_window", "sloth_severity"
RESERVED_LABEL_PREFIX = "sloth_"

DEFAULT_ALERT_NAME = "ErrorBudgetBurn"
"""The alert name of SLOs that give none (Sloth requires one; this is Pyrra's)."""
FALLBACK_BASE_WINDOW = 5  # minutes; only when no tier has a usable short window

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# ------------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RuleOptions:
    """How to export. The defaults give Sloth's rules for each SLO's own window."""

    period_minutes: int | None = None
    """Export every SLO with this period instead of its own window (Sloth's ``--default-slo-period``)."""
    catalog: AlertCatalog | None = None
    """Alert windows for SLOs without their own ``alerting.windows`` (Sloth's ``--slo-period-windows-path``);
    it also sets the period unless ``period_minutes`` does. Default: Relia's catalog for each period."""
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    """Added to every recording rule, over the SLO's labels (Sloth's ``-l k=v``)."""
    recordings: bool = True
    """False leaves out the SLI and metadata groups (Sloth's ``--disable-recordings``)."""
    alerts: bool = True
    """False leaves out the alert groups (Sloth's ``--disable-alerts``)."""
    optimized_period: bool = True
    """True: the period's error ratio is the mean of the base window's ratios over the period, as Sloth
    does by default (cheap; a mean of ratios, so quiet hours weigh as much as busy ones). False: the SLI
    queries over the whole period, which counts events as Relia does (Sloth's ``disableOptimized``)."""
    check_promql: bool = True
    """Parse every query with a PromQL parser and refuse the SLOs whose queries are not PromQL."""
    sloth_mode: str = "cli-gen-prom"
    sloth_spec: str = "prometheus/v1"
    sloth_version: str = f"relia-{__version__}"
    """The ``sloth_slo_info`` labels; Sloth's Kubernetes mode writes ``cli-gen-k8s`` and ``sloth.slok.dev/v1``."""

    def __post_init__(self) -> None:
        if self.period_minutes is not None and self.period_minutes < 1:
            raise ValueError(f"period must be at least one minute, got {self.period_minutes}")
        if (
            self.catalog is not None
            and self.period_minutes is not None
            and self.catalog.period_minutes != self.period_minutes
        ):
            raise ValueError(
                f"the alert window catalog {self.catalog.name!r} is for a "
                f"{prometheus_duration(self.catalog.period_minutes)} period, not "
                f"{prometheus_duration(self.period_minutes)}"
            )
        for name in self.extra_labels:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"extra label {name!r} is not a valid Prometheus label name")
            if name.startswith(RESERVED_LABEL_PREFIX):
                raise ValueError(f"extra label {name!r}: labels starting with sloth_ are the rules' own")

    @property
    def forced_period(self) -> int | None:
        """The period every SLO is exported with, if the options set one (else each SLO's own)."""
        return self.period_minutes or (self.catalog.period_minutes if self.catalog else None)


# ------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Rule:
    """One recording rule (``record``) or alerting rule (``alert``)."""

    expr: str
    record: str | None = None
    alert: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"record": self.record} if self.record else {"alert": self.alert}
        body["expr"] = self.expr
        if self.labels:
            body["labels"] = dict(sorted(self.labels.items()))
        if self.annotations:
            body["annotations"] = dict(sorted(self.annotations.items()))
        return body


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[Rule, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.as_dict() for rule in self.rules]}


@dataclass(frozen=True)
class RuleSet:
    """The rule groups, and what the rules say differently from Relia (calendar periods exported as rolling,
    low-traffic guards left out, ...)."""

    groups: list[RuleGroup]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        """The Prometheus rule file's content (``groups:``)."""
        return {"groups": [group.as_dict() for group in self.groups]}


# -------------------------------------------------------------------------------------------------- export


def prometheus_rules(slos: Iterable[tuple[str, SLOSpec]], options: RuleOptions | None = None) -> RuleSet:
    """Sloth-compatible rule groups for ``(name, spec)`` SLOs, in the order given. Raises InvalidInput naming
    every SLO field the rules cannot express (all SLOs are checked before any is refused)."""
    options = options or RuleOptions()
    groups: list[RuleGroup] = []
    warnings: list[str] = []
    errors: list[FieldError] = []
    seen: dict[str, str] = {}
    for name, spec in slos:
        exports, slo_errors, slo_warnings = _exports(name, spec, options)
        errors += slo_errors
        warnings += [f"SLO {name!r}: {warning}" for warning in slo_warnings]
        for export in exports:
            if export.id in seen:
                errors.append(
                    _error(
                        name,
                        "metadata.name",
                        f"exports as Sloth SLO {export.id!r}, as SLO {seen[export.id]!r} does; "
                        "Prometheus would mix their series",
                    )
                )
                continue
            seen[export.id] = name
            groups += export.groups(options)
    if errors:
        count = len(errors)
        raise InvalidInput(
            f"{count} SLO field{'s' if count > 1 else ''} cannot be exported as Prometheus rules: "
            f"{errors[0].context['slo']} {errors[0].path}: {errors[0].message}" + (" (and more)" if count > 1 else ""),
            errors=errors,
        )
    return RuleSet(groups, warnings)


def prometheus_duration(minutes: int) -> str:
    """A duration as Prometheus prints it (and Sloth names its rules): years and weeks only when exact, then
    days, hours, minutes: 30d -> ``30d``, 28d -> ``4w``, 24h -> ``1d``, 90m -> ``1h30m``."""
    if minutes < 1:
        raise ValueError(f"a rule window is at least one minute, got {minutes}")
    text, left = "", minutes
    for unit, size, exact_only in (
        ("y", 365 * 1440, True),
        ("w", 7 * 1440, True),
        ("d", 1440, False),
        ("h", 60, False),
    ):
        if exact_only and left % size:
            continue
        if left >= size:
            text += f"{left // size}{unit}"
            left %= size
    return text + (f"{left}m" if left else "")


# ----------------------------------------------------------------------------------------------- rendering


class _RuleDumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, so the file reads like the PromQL it holds."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RuleDumper.add_representer(str, _represent_text)


def _dump(body: dict[str, Any]) -> str:
    return yaml.dump(body, Dumper=_RuleDumper, sort_keys=False, allow_unicode=True, width=1_000_000)


def render_rules(rule_set: RuleSet) -> str:
    """A Prometheus rule file (``promtool check rules`` accepts it)."""
    header = (
        f"# Generated by Relia {__version__} from its SLOs, in Sloth's rule layout (https://github.com/slok/sloth).\n"
        "# Do not edit: change the SLOs and export again.\n"
    )
    return header + _dump(rule_set.as_dict())


def render_prometheus_rule(
    rule_set: RuleSet, *, name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
) -> str:
    """The same groups as a prometheus-operator ``PrometheusRule`` object (what Sloth writes for its
    Kubernetes input)."""
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/component": "SLO", "app.kubernetes.io/managed-by": "relia", **(labels or {})},
    }
    if namespace:
        metadata["namespace"] = namespace
    body = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata}
    body["spec"] = rule_set.as_dict()
    return (
        f"# Generated by Relia {__version__} from its SLOs. Do not edit: change the SLOs and export again.\n"
        + _dump(body)
    )


# ---------------------------------------------------------------------------------------------- one export


@dataclass
class _Alert:
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class _Export:
    """One Sloth SLO: one objective of a Relia SLO, with everything its rules need."""

    id: str
    service: str
    slo: str
    target: Fraction
    period: int
    labels: dict[str, str]
    error_ratio: Callable[[str], str]  # the PromQL error ratio over a window given as a Prometheus duration
    tiers: list[rules.AlertRule]
    alerts: dict[Severity, _Alert]
    optimized_period: bool

    @property
    def budget(self) -> Fraction:
        return 1 - self.target

    def id_labels(self) -> dict[str, str]:
        return {ID_LABEL: self.id, SERVICE_LABEL: self.service, SLO_LABEL: self.slo}

    def filter(self) -> str:
        return "{" + ", ".join(f'{name}="{_escape(value)}"' for name, value in sorted(self.id_labels().items())) + "}"

    def windows(self) -> list[int]:
        """The alert windows, ascending (the period has its own rule, even when a tier uses it too)."""
        lengths = {minutes for rule in self.tiers for minutes in (rule.tier.short_minutes, rule.tier.long_minutes)}
        return sorted(lengths - {self.period})

    def period_is_alert_window(self) -> bool:
        return any(self.period in (rule.tier.short_minutes, rule.tier.long_minutes) for rule in self.tiers)

    def base_window(self) -> int:
        """The window the current burn rate and Sloth's optimized period use: the first page tier's short
        window (Sloth's page-quick short window, 5m)."""
        pages = [rule.tier.short_minutes for rule in self.tiers if rule.severity is Severity.PAGE]
        return pages[0] if pages else (min(self.windows(), default=FALLBACK_BASE_WINDOW))

    def groups(self, options: RuleOptions) -> list[RuleGroup]:
        groups = []
        if options.recordings:
            groups.append(RuleGroup(f"sloth-slo-sli-recordings-{self.id}", tuple(self.sli_rules())))
            groups.append(RuleGroup(f"sloth-slo-meta-recordings-{self.id}", tuple(self.meta_rules(options))))
        alerts = tuple(self.alert_rules()) if options.alerts else ()
        if alerts:
            groups.append(RuleGroup(f"sloth-slo-alerts-{self.id}", alerts))
        return groups

    def sli_rules(self) -> list[Rule]:
        out = []
        for minutes in self.windows():
            window = prometheus_duration(minutes)
            labels = {**self.id_labels(), WINDOW_LABEL: window, **self.labels}
            out.append(Rule(record=SLI_ERROR_RECORD + window, expr=self.error_ratio(window), labels=labels))
        period = prometheus_duration(self.period)
        # An alert window needs the true ratio over it, so a period that is also one is never averaged.
        if not self.optimized_period or self.period_is_alert_window() or self.base_window() == self.period:
            expr = self.error_ratio(period)
        else:
            base = f"{SLI_ERROR_RECORD}{prometheus_duration(self.base_window())}{self.filter()}"
            # A ratio per base window, each counted once: sum over count is their plain mean.
            expr = f"sum_over_time({base}[{period}])\n/ ignoring ({WINDOW_LABEL})\ncount_over_time({base}[{period}])\n"
        labels = {**self.id_labels(), WINDOW_LABEL: period, **self.labels}
        out.append(Rule(record=SLI_ERROR_RECORD + period, expr=expr, labels=labels))
        return out

    def meta_rules(self, options: RuleOptions) -> list[Rule]:
        labels = {**self.id_labels(), **self.labels}
        target, selector = _number(self.target), self.filter()
        on = f"/ on({ID_LABEL}, {SLO_LABEL}, {SERVICE_LABEL}) group_left"

        def burn_rate(window: int) -> str:
            ratio = f"{SLI_ERROR_RECORD}{prometheus_duration(window)}{selector}"
            return f"{ratio}\n{on}\n{ERROR_BUDGET_RECORD}{selector}\n"

        info = {
            "sloth_version": options.sloth_version,
            "sloth_mode": options.sloth_mode,
            "sloth_spec": options.sloth_spec,
            "sloth_objective": _number(self.target * 100),
        }
        return [
            Rule(record=OBJECTIVE_RECORD, expr=f"vector({target})", labels=labels),
            # Sloth writes vector(1-<objective>), which Prometheus evaluates to 0.0010000000000000009 for
            # 99.9 %; the budget written as its own decimal is the float nearest the true 0.001.
            Rule(record=ERROR_BUDGET_RECORD, expr=f"vector({_number(self.budget)})", labels=labels),
            Rule(record=TIME_PERIOD_RECORD, expr=f"vector({_number(Fraction(self.period, 1440))})", labels=labels),
            Rule(record=CURRENT_BURN_RATE_RECORD, expr=burn_rate(self.base_window()), labels=labels),
            Rule(record=PERIOD_BURN_RATE_RECORD, expr=burn_rate(self.period), labels=labels),
            Rule(record=PERIOD_BUDGET_REMAINING_RECORD, expr=f"1 - {PERIOD_BURN_RATE_RECORD}{selector}", labels=labels),
            Rule(record=INFO_RECORD, expr="vector(1)", labels={**labels, **info}),
        ]

    def alert_rules(self) -> list[Rule]:
        out = []
        for severity in (Severity.PAGE, Severity.TICKET):
            alert = self.alerts.get(severity)
            tiers = [rule for rule in self.tiers if rule.severity is severity]
            if alert is None or not tiers:
                continue
            budget = _number(self.budget)
            pairs = []
            for rule in tiers:
                threshold = f"({_number(rule.factor or Fraction(0))} * {budget})"
                short, long = (
                    f"max({SLI_ERROR_RECORD}{prometheus_duration(minutes)}{self.filter()} > {threshold}) "
                    f"without ({WINDOW_LABEL})"
                    for minutes in (rule.tier.short_minutes, rule.tier.long_minutes)
                )
                pairs.append(f"(\n    {short}\n    and\n    {long}\n)")
            out.append(
                Rule(
                    alert=alert.name,
                    expr="\nor\n".join(pairs) + "\n",
                    labels=alert.labels,
                    annotations=alert.annotations,
                )
            )
        return out


def _exports(name: str, spec: SLOSpec, options: RuleOptions) -> tuple[list[_Export], list[FieldError], list[str]]:
    """The Sloth SLOs of one Relia SLO (one per objective), the reasons it cannot be exported, warnings."""
    errors: list[FieldError] = []
    warnings: list[str] = []
    indicator = spec.indicator
    if spec.budgeting_method == "Timeslices":
        errors.append(
            _error(
                name,
                "budgetingMethod",
                "Timeslices counts good slices, which Sloth's rules (error ratios over windows) cannot express",
            )
        )
    elif spec.budgeting_method == "RatioTimeslices":
        warnings.append(
            "RatioTimeslices: the alert windows' rules count events over each window, not a mean of slice ratios"
        )
    if indicator.source is None:
        errors.append(_error(name, "indicator.source", "a pushed SLO has no PromQL for Prometheus to evaluate"))
        return [], errors, warnings
    if spec.alerting.min_events:
        warnings.append("alerting.minEvents is not exported: the rules alert however few events a window holds")
    if spec.alerting.no_data.enabled:
        warnings.append("alerting.noData is not exported: the rules do not alert when events stop")
    if options.forced_period is not None:
        period = options.forced_period
    elif spec.window.rolling is not None:
        period = rules.parse_duration(spec.window.rolling)
    else:
        assert spec.window.calendar is not None  # WindowSpec holds exactly one of rolling, calendar
        period = rules.NOMINAL_MINUTES[rules.CalendarUnit(spec.window.calendar)]
        warnings.append(
            f"the calendar {spec.window.calendar} is exported as a rolling {prometheus_duration(period)} period: "
            "Prometheus rules cannot restart the budget at the start of each calendar period"
        )
    catalog = _catalog(spec, period, options)
    prefix = f"{spec.service}-"
    slo_base = name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else name
    reserved = sorted(label for label in spec.labels if label.startswith(RESERVED_LABEL_PREFIX))
    if reserved:
        errors.append(_error(name, "labels", f"labels starting with sloth_ are the rules' own: {', '.join(reserved)}"))
    exports = []
    for objective in spec.objectives:
        ratio = _error_ratio(name, spec, objective, options, errors)
        if ratio is None:
            continue
        slo = slo_base if len(spec.objectives) == 1 else f"{slo_base}-{objective.name}"
        target = rules.parse_target(str(objective.target))
        maths = rules.SLOSpec(target, rules.Budgeting.occurrences(), rules.RollingWindow(period))
        policy = rules.alert_policy(maths, catalog=catalog)
        usable = [rule for rule in policy.rules if rule.tier.short_minutes > 0 and rule.tier.long_minutes > 0]
        for rule in policy.rules:
            if rule not in usable:
                warnings.append(
                    f"alert tier {rule.name} is left out: a window rounds to 0 minutes for a "
                    f"{prometheus_duration(period)} period"
                )
        exports.append(
            _Export(
                id=f"{spec.service}-{slo}",
                service=spec.service,
                slo=slo,
                target=target,
                period=period,
                labels={**spec.labels, **options.extra_labels},
                error_ratio=ratio,
                tiers=usable,
                alerts=_alerts(spec),
                optimized_period=options.optimized_period,
            )
        )
    return exports, errors, warnings


def _catalog(spec: SLOSpec, period: int, options: RuleOptions) -> AlertCatalog:
    """The SLO's own tiers, else the options' catalog, else Relia's catalog for the period (as the SLO is
    evaluated: see ``relia.slo.service.alert_policy``)."""
    if spec.alerting.windows:
        tiers = tuple(
            AlertTier(
                name=f"{tier.severity}-{index + 1}",
                severity=Severity(tier.severity),
                budget_percent=rules.exact(str(tier.budget_percent)),
                long_minutes=rules.parse_duration(tier.long),
                short_minutes=rules.parse_duration(tier.short),
            )
            for index, tier in enumerate(spec.alerting.windows)
        )
        return AlertCatalog("custom", period, tiers)
    if options.catalog is not None:
        return options.catalog
    return rules.alert_catalog(period)


def _alerts(spec: SLOSpec) -> dict[Severity, _Alert]:
    """Name, labels and annotations of each enabled alert: the SLO-wide values, then the severity's own (as
    Sloth merges them), over Sloth's default title and summary."""
    alerting = spec.alerting
    out = {}
    for severity, alert in ((Severity.PAGE, alerting.page), (Severity.TICKET, alerting.ticket)):
        if not alert.enabled:
            continue
        defaults = {
            "title": f"({severity}) {{{{$labels.{SERVICE_LABEL}}}}} {{{{$labels.{SLO_LABEL}}}}} SLO error budget "
            "burn rate is too fast.",
            "summary": f"{{{{$labels.{SERVICE_LABEL}}}}} {{{{$labels.{SLO_LABEL}}}}} SLO error budget burn rate is "
            "over expected.",
        }
        out[severity] = _Alert(
            name=alert.name or alerting.name or DEFAULT_ALERT_NAME,
            labels={SEVERITY_LABEL: str(severity), **alerting.labels, **alert.labels},
            annotations={**defaults, **alerting.annotations, **alert.annotations},
        )
    return out


# ---------------------------------------------------------------------------------------------- indicators

_RatioBuilder = Callable[[str], str]


def _error_ratio(
    name: str,
    spec: SLOSpec,
    objective: ObjectiveSpec,
    options: RuleOptions,
    errors: list[FieldError],
) -> _RatioBuilder | None:
    """A builder of the objective's PromQL error ratio over a window (given as a Prometheus duration), or
    None (with the reasons in ``errors``) when the indicator has no PromQL."""
    indicator = spec.indicator

    def checked(path: str, text: str, *, windowed: bool = True) -> str | None:
        if windowed and not promql.WINDOW_TEMPLATE.search(text):
            errors.append(_error(name, path, "has no {{.window}} variable: every alert window would read one value"))
            return None
        problem = promql.check(text) if options.check_promql else None
        if problem:
            errors.append(_error(name, path, problem))
            return None
        return text

    if indicator.ratio is not None:
        ratio = indicator.ratio
        if ratio.error_ratio is not None:
            error_ratio = checked("indicator.ratio.errorRatio", ratio.error_ratio)
            return None if error_ratio is None else _substituting(f"({error_ratio})")
        if ratio.total is None:
            errors.append(_error(name, "indicator.ratio", "has no PromQL: its events are pushed to Relia"))
            return None
        counted_field = "bad" if ratio.bad is not None else "good"
        total = checked("indicator.ratio.total", ratio.total)
        counted = checked(f"indicator.ratio.{counted_field}", ratio.bad or ratio.good or "")
        if total is None or counted is None:
            return None
        if counted_field == "bad":
            return _substituting(f"({counted})\n/\n({total})\n")
        return _substituting(f"(({total}) - ({counted}))\n/\n({total})\n")

    if indicator.threshold is not None:
        threshold = indicator.threshold
        if threshold.metric is None:
            errors.append(_error(name, "indicator.threshold.metric", "has no histogram: its values are pushed"))
            return None
        selector = threshold.selector.strip().strip(",").strip()
        if options.check_promql and selector and promql.check(f"x{{{selector}}}"):
            errors.append(_error(name, "indicator.threshold.selector", "is not a list of PromQL label matchers"))
            return None
        assert objective.threshold is not None  # SLOSpec requires one per objective of a threshold indicator
        # As Relia reads the histogram (relia.slo.prometheus): the bucket holds the values at or below the
        # threshold, good for lte/lt and bad for gt/gte (a histogram cannot set apart values equal to it).
        bucket_matchers = ", ".join(part for part in (selector, le_matcher(objective.threshold)) if part)
        bucket = f"sum(rate({threshold.metric}_bucket{{{bucket_matchers}}}[{{{{.window}}}}]))"
        count = f"{threshold.metric}_count" + (f"{{{selector}}}" if selector else "")
        total = f"sum(rate({count}[{{{{.window}}}}]))"
        if threshold.op in ("lt", "lte"):
            return _substituting(f"(({total}) - ({bucket}))\n/\n({total})\n")
        return _substituting(f"({bucket})\n/\n({total})\n")

    probe = indicator.probe
    assert probe is not None  # IndicatorSpec holds exactly one of ratio, threshold, probe
    if probe.query is None:
        errors.append(_error(name, "indicator.probe.query", "has no PromQL: its samples are pushed"))
        return None
    probe_query = checked("indicator.probe.query", probe.query, windowed=False)
    if probe_query is None:
        return None
    # The share of samples that are 0. A plain selector has its own samples to average; any other
    # expression needs a subquery.
    if promql.vector_selector(probe_query) is not None:
        return lambda window: f"1 - avg_over_time({probe_query}[{window}])"
    return lambda window: f"1 - avg_over_time(({probe_query})[{window}:])"


def _substituting(template: str) -> _RatioBuilder:
    return lambda window: promql.WINDOW_TEMPLATE.sub(window, template)


# -------------------------------------------------------------------------------------------------- helpers


def _number(value: Fraction) -> str:
    """A PromQL number: the exact decimal when there is one (0.999, 14.4, 13.44), else the nearest float
    (0.9333333333333333). Values here are never negative."""
    assert value >= 0
    if value.denominator == 1:
        return str(value.numerator)
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return repr(float(value))
    digits = max(twos, fives)
    whole, fraction = divmod(value.numerator * 10**digits // value.denominator, 10**digits)
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _error(slo: str, path: str, message: str) -> FieldError:
    return FieldError(path, message, {"slo": slo})
