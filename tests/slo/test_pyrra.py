"""Pyrra import: Pyrra's example objects validate (or are refused naming what Relia cannot honour), and each
indicator type keeps Pyrra's arithmetic. Offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relia.config import service as config_service
from relia.config.documents import ConfigInvalid, ConfigProblem, SourceFile, read_paths
from relia.slo import promql
from tests.conformance import CONFORMANCE

INPUTS = CONFORMANCE / "pyrra" / "inputs"
GROUPED = {"boolgauge-probe-success-7d.yaml": "bool_gauge", "latencynative-connect-2w.yaml": "latencyNative"}


def validate(content: str) -> config_service.Loaded:
    return config_service.validate([SourceFile(name="pyrra.yaml", content=content)])


def spec_of(loaded: config_service.Loaded) -> dict[str, Any]:
    [obj] = loaded.objects
    assert obj.kind == "SLO"
    return obj.normalised()


def refused(content: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigInvalid) as raised:
        validate(content)
    return raised.value.problems


def pyrra(spec: str, *, metadata: str = "  namespace: shop\n") -> str:
    return (
        "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata:\n  name: api-errors\n"
        f"{metadata}spec:\n{spec}"
    )


RATIO = (
    "  target: '99.5'\n  window: 4w\n  indicator:\n    ratio:\n"
    '      errors: {metric: \'http_requests_total{job="api",code=~"5.."}\'}\n'
    "      total: {metric: 'http_requests_total{job=\"api\"}'}\n"
)


@pytest.mark.parametrize("path", sorted(INPUTS.glob("*.yaml")), ids=lambda path: path.name)
def test_every_pyrra_example_validates_unless_it_groups(path: Path) -> None:
    if path.name in GROUPED:
        # Relia has no grouped SLOs; the files' grouping is refused, naming the field (the only problem).
        with pytest.raises(ConfigInvalid) as raised:
            config_service.validate(read_paths([path]))
        assert [problem.path for problem in raised.value.problems] == [f"spec.indicator.{GROUPED[path.name]}.grouping"]
        return
    loaded = config_service.validate(read_paths([path]))
    assert loaded.objects
    for obj in loaded.objects:
        indicator = obj.normalised()["indicator"]
        for query in indicator["ratio"].values():
            assert query is None or promql.check(query) is None


def test_a_ratio_objective_becomes_rates_of_errors_and_total() -> None:
    loaded = config_service.validate(read_paths([INPUTS / "ratio-prometheus-http-7d.yaml"]))
    spec = spec_of(loaded)
    assert spec["indicator"] == {
        "source": "prometheus",
        "ratio": {
            "good": None,
            "bad": 'sum(rate(prometheus_http_requests_total{handler="/api/v1/query",code=~"5.."}[{{.window}}]))',
            "total": 'sum(rate(prometheus_http_requests_total{handler="/api/v1/query"}[{{.window}}]))',
            "errorRatio": None,
        },
        "threshold": None,
        "probe": None,
    }
    assert spec["window"]["rolling"] == "7d"
    assert spec["objectives"] == [
        {
            "name": "default",
            "displayName": None,
            "target": 0.99,
            "threshold": None,
            "timeSliceTarget": None,
            "timeSliceWindow": None,
        }
    ]
    assert spec["service"] == "monitoring"
    assert spec["labels"] == {"prometheus": "k8s", "role": "alert-rules", "namespace": "monitoring"}
    # Pyrra's absent alert (on by default) is Relia's no-data alert; the burn-rate tiers are Relia's defaults.
    assert spec["alerting"]["noData"]["enabled"] is True
    assert spec["alerting"]["windows"] is None
    [warning] = loaded.warnings
    assert "service 'monitoring' (its namespace 'monitoring')" in warning.message


def test_a_latency_objective_is_the_bucket_rate_over_the_count_rate() -> None:
    loaded = config_service.validate(read_paths([INPUTS / "latency-caddy-4w.yaml"]))
    spec = spec_of(loaded)
    ratio = spec["indicator"]["ratio"]
    assert ratio["good"] == (
        'sum(rate(caddy_http_response_duration_seconds_bucket{job="caddy",handler="subroute",code!~"5..",'
        'le="0.05"}[{{.window}}]))'
    )
    assert ratio["total"] == (
        'sum(rate(caddy_http_response_duration_seconds_count{job="caddy",handler="subroute",code!~"5.."}[{{.window}}]))'
    )
    assert spec["objectives"][0]["target"] == 0.9
    assert spec["window"]["rolling"] == "4w"
    # No namespace: the SLO's own name stands in for the service Pyrra does not have.
    assert spec["service"] == "caddy-response-latency"


def test_success_and_total_selectors_that_differ_beyond_le_are_flagged() -> None:
    loaded = config_service.validate(read_paths([INPUTS / "nginx-ratio-and-latency-4w.yaml"]))
    assert {obj.name for obj in loaded.objects} == {"nginx-api-errors", "nginx-api-latency"}
    [lint] = [warning for warning in loaded.warnings if "differ in more than le" in warning.message]
    assert (lint.name, lint.path) == ("nginx-api-latency", "spec.indicator.latency.success.metric")


def test_native_latency_uses_histogram_fraction_and_a_bool_gauge_is_a_probe() -> None:
    native = (
        "  target: '99'\n  window: 2w\n  indicator:\n    latencyNative:\n      latency: 200ms\n"
        "      total: {metric: 'connect_server_requests_duration_seconds{job=\"pyrra\"}'}\n"
    )
    ratio = spec_of(validate(pyrra(native)))["indicator"]["ratio"]
    rate = 'sum(rate(connect_server_requests_duration_seconds{job="pyrra"}[{{.window}}]))'
    assert ratio["good"] == f"histogram_fraction(0, 0.2, {rate}) * histogram_count({rate})"
    assert ratio["total"] == f"histogram_count({rate})"
    assert promql.check(ratio["good"]) is None
    gauge = "  target: '99'\n  window: 7d\n  indicator:\n    bool_gauge: {metric: 'probe_success{job=\"bb\"}'}\n"
    assert spec_of(validate(pyrra(gauge)))["indicator"]["probe"] == {"query": 'probe_success{job="bb"}'}


def test_service_data_source_and_labels_can_be_chosen() -> None:
    metadata = (
        "  namespace: shop\n  annotations: {relia.dev/service: checkout, relia.dev/data-source: thanos}\n"
        "  labels: {pyrra.dev/team: payments, app.kubernetes.io/part-of: shop}\n"
    )
    loaded = validate(pyrra(RATIO, metadata=metadata))
    spec = spec_of(loaded)
    assert (spec["service"], spec["indicator"]["source"]) == ("checkout", "thanos")
    assert spec["labels"] == {"team": "payments", "app_kubernetes_io_part_of": "shop", "namespace": "shop"}
    assert [warning.message for warning in loaded.warnings] == [
        "label 'app.kubernetes.io/part-of' is kept as 'app_kubernetes_io_part_of' (a Prometheus label name)"
    ]


def test_alerting_switches() -> None:
    alerting = "  alerting: {burnrates: false, absent: false, name: MyBurn, absentName: Gone}\n"
    loaded = validate(pyrra(RATIO + alerting))
    spec = spec_of(loaded)["alerting"]
    assert (spec["page"]["enabled"], spec["ticket"]["enabled"], spec["noData"]["enabled"]) == (False, False, False)
    assert spec["name"] == "MyBurn"
    assert [warning.path for warning in loaded.warnings] == ["metadata", "spec.alerting.absentName"]
    disabled = spec_of(validate(pyrra(RATIO + "  alerting: {disabled: true}\n")))["alerting"]
    assert (disabled["page"]["enabled"], disabled["noData"]["enabled"]) == (False, False)


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (("'99.5'", "'100'"), "spec.target", "below 100 %"),
        (("'99.5'", "'abc'"), "spec.target", "not a number"),
        (("window: 4w", "window: 90s"), "spec.window", "whole number of minutes"),
        (("window: 4w", "window: 90m"), "spec.window", "whole number of hours"),
        (("window: 4w", "window: soon"), "spec.window", "Prometheus duration"),
        (("errors: {metric:", "errors: {query:"), "spec.indicator.ratio.errors.query", "unknown field"),
        (
            ('http_requests_total{job="api",code=~"5.."}', "sum(rate(x[5m]))"),
            "spec.indicator.ratio.errors.metric",
            "one vector selector",
        ),
        (("  indicator:\n", "  extra: 1\n  indicator:\n"), "spec.extra", "unknown field"),
    ],
)
def test_what_relia_cannot_honour_is_refused_naming_the_field(
    change: tuple[str, str], path: str, fragment: str
) -> None:
    content = pyrra(RATIO.replace(*change))
    assert content != pyrra(RATIO)
    problems = refused(content)
    assert any(problem.path == path and fragment in problem.message for problem in problems), problems


def test_a_latency_success_metric_needs_its_bucket() -> None:
    latency = (
        "  target: '90'\n  window: 4w\n  indicator:\n    latency:\n"
        "      success: {metric: 'x_bucket{job=\"a\"}'}\n      total: {metric: 'x_count{job=\"a\"}'}\n"
    )
    [problem] = refused(pyrra(latency))
    assert problem.path == "spec.indicator.latency.success.metric"
    assert "le matcher" in problem.message
