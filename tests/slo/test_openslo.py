"""OpenSLO import: the spec's and the Go SDK's examples validate, and each mapping decision holds. Offline
(``relia.config.service.validate``), except the last test, which applies through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from relia.config import service as config_service
from relia.config.documents import ConfigInvalid, ConfigProblem, SourceFile, read_paths
from relia.slo.models import SLO
from tests.config.support import apply_ok, changed, example_files
from tests.conformance import CONFORMANCE
from tests.factories import make_token, make_user

CONFORMANCE = CONFORMANCE
OPENSLO = CONFORMANCE / "openslo"
SLOTH_INPUTS = CONFORMANCE / "sloth" / "inputs"
VALID_FILES = sorted(
    [
        *(OPENSLO / "go-sdk-v1").glob("*.yaml"),
        *(OPENSLO / "go-sdk-v1alpha").glob("*.yaml"),
        *(OPENSLO / "spec-examples").rglob("*.yaml"),
    ]
)


def validate(content: str, name: str = "openslo.yaml") -> config_service.Loaded:
    return config_service.validate([SourceFile(name=name, content=content)])


def specs(loaded: config_service.Loaded, kind: str = "SLO") -> dict[str, dict[str, Any]]:
    return {obj.name: obj.normalised() for obj in loaded.objects if obj.kind == kind}


def refused(content: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigInvalid) as raised:
        validate(content)
    return raised.value.problems


def warned(loaded: config_service.Loaded, fragment: str) -> list[ConfigProblem]:
    return [warning for warning in loaded.warnings if fragment in warning.message]


def slo(spec: str, *, name: str = "checkout-availability", metadata: str = "") -> str:
    """An openslo/v1 SLO; ``spec`` is the YAML under ``spec:`` after service, indented two spaces."""
    return f"apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: {name}\n{metadata}spec:\n  service: checkout\n{spec}"


ROLLING = "  timeWindow: [{duration: 28d, isRolling: true}]\n  budgetingMethod: Occurrences\n"
PROMETHEUS = (
    "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: prom}\n"
    "spec:\n  type: Prometheus\n  connectionDetails: [{url: 'http://prometheus:9090'}]\n---\n"
)


def ratio(good: str = "sum(http_requests_total{code!~'5..'})", total: str = "sum(http_requests_total)") -> str:
    return (
        "  indicator:\n    metadata: {name: requests}\n    spec:\n      ratioMetric:\n        counter: true\n"
        f'        good: {{metricSource: {{metricSourceRef: prom, spec: {{query: "{good}"}}}}}}\n'
        f'        total: {{metricSource: {{metricSourceRef: prom, spec: {{query: "{total}"}}}}}}\n'
    )


# ------------------------------------------------------------------------------------ conformance files


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda path: str(path.relative_to(OPENSLO)))
def test_every_example_of_the_spec_and_the_sdk_validates(path: Path) -> None:
    loaded = config_service.validate(read_paths([path]))
    assert all(warning.file == str(path) for warning in loaded.warnings)


def test_the_sdk_v1_examples_validate_together_and_say_what_they_do_not_create() -> None:
    loaded = config_service.validate(read_paths([OPENSLO / "go-sdk-v1"]))
    assert sorted((obj.kind, obj.name) for obj in loaded.objects) == [
        ("DataSource", "datadog"),
        ("DataSource", "prometheus"),
        ("SLO", "web-availability"),
    ]
    unused = {(warning.kind, warning.name) for warning in warned(loaded, "not used by any SLO")}
    assert unused == {
        ("AlertCondition", "cpu-usage-breach"),
        ("AlertCondition", "latency-too-high"),
        ("AlertPolicy", "low-priority"),
        ("AlertPolicy", "high-priority"),
        ("AlertPolicy", "medium-priority"),
        ("AlertNotificationTarget", "devs-email-notification"),
        ("AlertNotificationTarget", "pd-on-call-notification"),
        ("SLI", "search-availability"),
        ("SLI", "end-user-response"),
        ("SLI", "wifi-client-satisfaction"),
        ("SLI", "annotator-throughput"),
    }
    # Both copies of the example service are read and neither is created: they name no owning team.
    assert len(warned(loaded, "read but not created")) == 2


def test_a_burn_rate_condition_whose_operator_points_the_wrong_way_is_flagged() -> None:
    loaded = config_service.validate(read_paths([OPENSLO / "go-sdk-v1" / "alert_conditions.yaml"]))
    [lint] = warned(loaded, "you probably meant gt")
    assert (lint.kind, lint.name, lint.path, lint.line) == (
        "AlertCondition",
        "cpu-usage-breach",
        "spec.condition.op",
        17,
    )
    assert lint.item == 1
    assert "op lte" in lint.message


def test_the_one_minute_calendar_window_of_the_spec_example_is_read_as_a_month_with_a_warning() -> None:
    path = OPENSLO / "spec-examples" / "budgeting-method" / "timeslices-slo.yaml"
    loaded = config_service.validate(read_paths([path]))
    spec = specs(loaded)["service-availability"]
    assert spec["window"] == {"rolling": None, "calendar": "month", "timeZone": "America/New_York"}
    [lint] = warned(loaded, "a calendar month is '1M'")
    assert (lint.path, lint.line) == ("spec.timeWindow.0.duration", 27)
    assert "reads it as 1M" in lint.message
    # Its start time (noon on the 1st) is not where Relia's months start.
    assert warned(loaded, "startTime 2022-01-01 12:00:00 is not the start of a calendar month")
    assert [objective["name"] for objective in spec["objectives"]] == ["internal-objective", "sla"]
    assert spec["objectives"][1]["displayName"] == "SLA"
    assert spec["objectives"][0]["timeSliceTarget"] == 0.99
    # The example's "Any" source cannot be queried: pushed events, and a warning says so.
    assert spec["indicator"]["source"] is None
    assert warned(loaded, "fed by events pushed")


def test_the_sdk_v1_slo_reads_its_prometheus_counters_as_rates_over_the_window() -> None:
    loaded = config_service.validate(read_paths([OPENSLO / "go-sdk-v1" / "slos.yaml"]))
    spec = specs(loaded)["web-availability"]
    assert spec["indicator"]["source"] == "prometheus"
    assert spec["indicator"]["ratio"]["good"] == (
        'sum(rate(http_requests{k8s_cluster="prod",component="web",code=~"2xx|4xx"}[{{.window}}]))'
    )
    assert (
        spec["indicator"]["ratio"]["total"]
        == 'sum(rate(http_requests{k8s_cluster="prod",component="web"}[{{.window}}]))'
    )
    assert spec["window"] == {"rolling": None, "calendar": "week", "timeZone": "America/New_York"}
    assert spec["budgetingMethod"] == "Timeslices"
    assert spec["objectives"] == [
        {
            "name": "good",
            "displayName": "Good",
            "target": 0.995,
            "threshold": None,
            "timeSliceTarget": 0.95,
            "timeSliceWindow": "1m",
        }
    ]
    assert spec["labels"] == {"env": "prod", "team": "team-a,team-b"}
    assert warned(loaded, "names no DataSource (metricSourceRef)")
    assert warned(loaded, "op applies to threshold metrics only")


def test_the_sdk_v1alpha_slos_give_a_probe_and_a_pushed_timeslice_slo() -> None:
    loaded = config_service.validate(read_paths([OPENSLO / "go-sdk-v1alpha" / "slos.yaml"]))
    latency, availability = specs(loaded)["web-latency-threshold"], specs(loaded)["web-availability-ratio"]
    assert latency["indicator"]["probe"] == {"query": '(api_server_requestMsec{host="*",job="nginx"}) > bool 200'}
    assert latency["indicator"]["source"] == "prometheus"
    assert availability["indicator"]["ratio"] == {"good": None, "bad": None, "total": None, "errorRatio": None}
    assert availability["objectives"][0]["timeSliceWindow"] == "1m"
    assert warned(loaded, "no timeSliceWindow: Relia uses 1m slices")


@pytest.mark.parametrize("name", ["in-openslo.yaml", "openslo-getting-started.yml"])
def test_slothss_openslo_inputs_read_from_the_prometheus_data_source_without_warnings(name: str) -> None:
    loaded = config_service.validate(read_paths([SLOTH_INPUTS / name]))
    assert loaded.warnings == []
    [spec] = specs(loaded).values()
    assert spec["indicator"]["source"] == "prometheus"
    assert (
        spec["indicator"]["ratio"]["total"]
        == 'sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))'
    )
    assert spec["window"]["rolling"] == "30d"
    assert spec["objectives"][0]["name"] == "default"


def test_the_28_day_window_sloth_once_refused_is_an_ordinary_rolling_window() -> None:
    # Sloth marked this file bad only because it then supported 30-day periods alone (SLO-SOURCES.md); Relia
    # takes any rolling window, and 28 days has its own alert catalog, so there is nothing to say.
    loaded = config_service.validate(read_paths([SLOTH_INPUTS / "openslo-28d-marked-bad.yaml"]))
    assert loaded.warnings == []
    assert specs(loaded)["slo1"]["window"] == {"rolling": "28d", "calendar": None, "timeZone": "UTC"}


def test_v2alpha_is_refused_naming_its_api_version() -> None:
    with pytest.raises(ConfigInvalid) as raised:
        config_service.validate(read_paths([OPENSLO / "go-sdk-v2alpha" / "slos.yaml"]))
    assert {problem.path for problem in raised.value.problems} == {"apiVersion"}
    assert "unsupported apiVersion 'openslo.com/v2alpha'" in raised.value.problems[0].message
    assert "openslo/v1" in raised.value.problems[0].message


# ------------------------------------------------------------------------------- data sources, services


def test_data_sources_become_prometheus_or_external_sources() -> None:
    loaded = validate(
        PROMETHEUS + "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: cloudwatch}\n"
        "spec: {type: CloudWatch, description: AWS, connectionDetails: {accessKeyID: x}}\n"
    )
    sources = specs(loaded, "DataSource")
    assert sources["prom"] | {"headers": {}} == {
        "type": "prometheus",
        "url": "http://prometheus:9090",
        "headers": {},
        "timeoutSeconds": 10.0,
        "vendor": None,
        "description": "",
    }
    assert sources["cloudwatch"]["type"] == "external"
    assert sources["cloudwatch"]["vendor"] == "CloudWatch"
    [warning] = warned(loaded, "Relia cannot query CloudWatch")
    assert "connectionDetails are not kept" in warning.message


def test_a_prometheus_data_source_needs_its_url() -> None:
    [problem] = refused("apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: prom}\nspec: {type: Prometheus}\n")
    assert problem.path == "spec.connectionDetails.url"


def test_a_service_with_an_owner_annotation_becomes_a_relia_service() -> None:
    loaded = validate(
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: web-shop\n  displayName: Web shop\n"
        "  annotations: {relia.dev/owner: storefront}\nspec: {description: The shop}\n"
    )
    [service] = loaded.objects
    assert (service.kind, service.name) == ("Service", "web-shop")
    assert service.normalised() | {"links": [], "dependsOn": []} == {
        "name": "Web shop",
        "owner": "storefront",
        "tier": 3,
        "description": "The shop",
        "links": [],
        "dependsOn": [],
    }
    assert loaded.warnings == []


# ------------------------------------------------------------------------------------------- indicators


def test_a_metric_source_ref_picks_the_data_source_and_counters_become_rates() -> None:
    loaded = validate(PROMETHEUS + slo(ratio() + ROLLING + "  objectives: [{target: 0.999}]\n"))
    indicator = specs(loaded)["checkout-availability"]["indicator"]
    assert indicator["source"] == "prom"
    assert indicator["ratio"]["good"] == "sum(rate(http_requests_total{code!~'5..'}[{{.window}}]))"
    assert indicator["ratio"]["total"] == "sum(rate(http_requests_total[{{.window}}]))"
    assert loaded.warnings == []


def test_a_counter_not_marked_as_one_is_averaged_with_a_warning() -> None:
    body = ratio().replace("counter: true", "counter: false")
    loaded = validate(PROMETHEUS + slo(body + ROLLING + "  objectives: [{target: 0.999}]\n"))
    indicator = specs(loaded)["checkout-availability"]["indicator"]
    assert indicator["ratio"]["total"] == "sum(avg_over_time(http_requests_total[{{.window}}]))"
    assert warned(loaded, "http_requests_total looks like a counter but counter is not true")


def test_a_query_that_cannot_be_put_over_the_window_is_refused_naming_it() -> None:
    body = ratio(total="sum(rate(http_requests_total[5m] offset 1h))")
    [problem] = refused(PROMETHEUS + slo(body + ROLLING + "  objectives: [{target: 0.999}]\n"))
    assert problem.path == "spec.indicator.spec.ratioMetric.total.metricSource.spec.query"
    assert "offset" in problem.message


def test_an_indicator_ref_is_resolved_and_an_unknown_one_refused() -> None:
    sli = (
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: errors}\nspec:\n  ratioMetric:\n"
        "    rawType: success\n"
        "    raw: {metricSource: {metricSourceRef: prom, spec: {query: 'sum(rate(ok[5m])) / sum(rate(all[5m]))'}}}\n"
        "---\n"
    )
    loaded = validate(PROMETHEUS + sli + slo("  indicatorRef: errors\n" + ROLLING + "  objectives: [{target: 0.99}]\n"))
    assert specs(loaded)["checkout-availability"]["indicator"]["ratio"]["errorRatio"] == (
        "1 - (sum(rate(ok[{{.window}}])) / sum(rate(all[{{.window}}])))"
    )
    assert not warned(loaded, "not used by any SLO")
    [problem] = refused(slo("  indicatorRef: nothing\n" + ROLLING + "  objectives: [{target: 0.99}]\n"))
    assert (problem.path, problem.message) == (
        "spec.indicatorRef",
        "there is no openslo/v1 SLI named 'nothing' in these files",
    )


def test_a_failure_ratio_is_kept_as_the_error_ratio() -> None:
    body = (
        "  indicator:\n    metadata: {name: e}\n    spec:\n      ratioMetric:\n        rawType: failure\n"
        "        raw: {metricSource: {metricSourceRef: prom, spec: {query: 'sum(rate(e[{{ .window }}]))'}}}\n"
    )
    loaded = validate(PROMETHEUS + slo(body + ROLLING + "  objectives: [{target: 0.99}]\n"))
    assert specs(loaded)["checkout-availability"]["indicator"]["ratio"]["errorRatio"] == "sum(rate(e[{{.window}}]))"


def test_an_external_source_feeds_the_slo_by_pushed_events() -> None:
    datadog = "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: dd}\nspec: {type: Datadog}\n---\n"
    body = ratio().replace("metricSourceRef: prom", "metricSourceRef: dd")
    loaded = validate(datadog + slo(body + ROLLING + "  objectives: [{target: 0.99}]\n"))
    indicator = specs(loaded)["checkout-availability"]["indicator"]
    assert indicator["source"] == "dd"
    assert indicator["ratio"] == {"good": None, "bad": None, "total": None, "errorRatio": None}
    [warning] = warned(loaded, "Relia cannot query data source 'dd' (Datadog)")
    assert warning.path == "spec.indicator.spec.ratioMetric.good.metricSource.spec.query"


def threshold(query: str, objectives: str, *, annotations: str = "") -> str:
    return (
        f"  indicator:\n    metadata: {{name: latency{annotations}}}\n    spec:\n      thresholdMetric:\n"
        f"        metricSource: {{metricSourceRef: prom, spec: {{query: '{query}'}}}}\n"
        + ROLLING
        + f"  objectives: {objectives}\n"
    )


def test_a_prometheus_threshold_query_becomes_a_probe_of_its_samples() -> None:
    loaded = validate(PROMETHEUS + slo(threshold("max(kafka_lag)", "[{op: lt, value: 500, target: 0.99}]")))
    spec = specs(loaded)["checkout-availability"]
    assert spec["indicator"]["probe"] == {"query": "(max(kafka_lag)) < bool 500"}
    assert spec["objectives"][0]["threshold"] is None


def test_a_histogram_bucket_threshold_query_becomes_a_threshold_indicator() -> None:
    objectives = "[{displayName: Fast, op: lte, value: 0.3, target: 0.99}, {op: lte, value: 1, target: 0.999}]"
    query = 'http_request_duration_seconds_bucket{job="api"}'
    loaded = validate(PROMETHEUS + slo(threshold(query, objectives)))
    spec = specs(loaded)["checkout-availability"]
    assert spec["indicator"]["threshold"] == {
        "metric": "http_request_duration_seconds",
        "selector": 'job="api"',
        "op": "lte",
        "unit": "s",
    }
    assert [(o["name"], o["threshold"]) for o in spec["objectives"]] == [("fast", 0.3), ("objective-2", 1.0)]


def test_threshold_objectives_must_compare_one_way() -> None:
    objectives = "[{op: lte, value: 0.3, target: 0.99}, {op: gte, value: 1, target: 0.999}]"
    [problem] = refused(PROMETHEUS + slo(threshold('x_bucket{job="a"}', objectives)))
    assert problem.path == "spec.objectives.1.op"
    # A probe compares with one value.
    objectives = "[{op: lte, value: 0.3, target: 0.99}, {op: lte, value: 1, target: 0.999}]"
    [problem] = refused(PROMETHEUS + slo(threshold("max(lag)", objectives)))
    assert problem.path == "spec.objectives.1.value"


def test_pushed_threshold_values_keep_their_objectives_thresholds() -> None:
    body = threshold("x", "[{op: lt, value: 500, target: 0.99}]").replace("metricSourceRef: prom, ", "type: Relia, ")
    loaded = validate(slo(body))
    spec = specs(loaded)["checkout-availability"]
    assert spec["indicator"]["threshold"]["op"] == "lt"
    assert spec["objectives"][0]["threshold"] == 500.0
    assert spec["indicator"]["source"] is None


def test_a_probe_annotation_keeps_the_gauge_as_it_is() -> None:
    loaded = validate(
        PROMETHEUS
        + slo(threshold("probe_success", "[{op: gte, value: 1, target: 0.99}]", annotations=PROBE_ANNOTATION))
    )
    assert specs(loaded)["checkout-availability"]["indicator"]["probe"] == {"query": "probe_success"}
    [problem] = refused(
        PROMETHEUS + slo(threshold("probe_success", "[{op: gt, value: 0, target: 0.99}]", annotations=PROBE_ANNOTATION))
    )
    assert "op gte, value 1" in problem.message


PROBE_ANNOTATION = ", annotations: {relia.dev/indicator: probe}"


def test_unknown_fields_are_refused_rather_than_skipped() -> None:
    body = ratio() + ROLLING + "  objectives: [{target: 0.99, timeSliceWindw: 5m}]\n"
    [problem] = refused(PROMETHEUS + slo(body))
    assert problem.path == "spec.objectives.0.timeSliceWindw"
    assert problem.message.startswith("unknown field 'timeSliceWindw'; known here: compositeWeight, displayName")
    sli = "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: unused}\nspec: {ratioMetrik: {}}\n"
    [problem] = refused(sli)
    assert (problem.kind, problem.path) == ("SLI", "spec.ratioMetrik")


def test_composite_slos_are_refused() -> None:
    body = ratio() + ROLLING + "  objectives: [{target: 0.99, indicatorRef: other}]\n"
    problems = refused(PROMETHEUS + slo(body))
    assert any(problem.path == "spec.objectives.0" and "composite" in problem.message for problem in problems)


# --------------------------------------------------------------------------------- windows, objectives


@pytest.mark.parametrize(
    ("window", "path", "fragment"),
    [
        ("{duration: 1M, isRolling: true}", "spec.timeWindow.0.duration", "calendar month"),
        ("{duration: 1m, isRolling: true}", "spec.timeWindow.0.duration", "did you mean '1M'"),
        ("{duration: 2w, calendar: {timeZone: UTC}}", "spec.timeWindow.0.duration", "1w, 1M, 1Q or 1Y"),
        ("{duration: 1w, calendar: {timeZone: Mars/Olympus}}", "spec.timeWindow.0.calendar.timeZone", "IANA"),
        ("{duration: 1w, calendar: {startTime: soon}}", "spec.timeWindow.0.calendar.startTime", "YYYY-MM-DD"),
        ("{duration: 1w, isRolling: true, calendar: {}}", "spec.timeWindow.0.calendar", "isRolling is true"),
    ],
)
def test_windows_relia_cannot_read_are_refused(window: str, path: str, fragment: str) -> None:
    problems = refused(slo(f"{ratio()}  timeWindow: [{window}]\n  objectives: [{{target: 0.9}}]\n"))
    assert any(problem.path == path and fragment in problem.message for problem in problems), problems


def test_a_calendar_window_starting_on_its_boundary_needs_no_warning() -> None:
    window = "{duration: 1Q, isRolling: false, calendar: {startTime: '2024-04-01 00:00:00', timeZone: Europe/Berlin}}"
    loaded = validate(PROMETHEUS + slo(f"{ratio()}  timeWindow: [{window}]\n  objectives: [{{target: 0.9}}]\n"))
    assert specs(loaded)["checkout-availability"]["window"] == {
        "rolling": None,
        "calendar": "quarter",
        "timeZone": "Europe/Berlin",
    }
    assert loaded.warnings == []


def test_targets_slices_names_and_labels() -> None:
    metadata = "  labels: {team: [a, b], app.kubernetes.io/name: shop}\n"
    body = (
        ratio() + "  timeWindow: [{duration: 7d, isRolling: true}]\n  budgetingMethod: Timeslices\n  objectives:\n"
        "    - {displayName: Good, targetPercent: 99.5, timeSliceTarget: 0.9, timeSliceWindow: 5}\n"
        "    - {displayName: good, target: 0.9, timeSliceTarget: 0.8, timeSliceWindow: 60}\n"
        "    - {target: 0.5, timeSliceTarget: 1, timeSliceWindow: 2m}\n"
    )
    loaded = validate(PROMETHEUS + slo(body, metadata=metadata))
    spec = specs(loaded)["checkout-availability"]
    assert [(o["name"], o["displayName"], o["target"], o["timeSliceWindow"]) for o in spec["objectives"]] == [
        ("good", "Good", 0.995, "5m"),
        ("good-2", "good", 0.9, "1h"),
        ("objective-3", None, 0.5, "2m"),
    ]
    assert spec["labels"] == {"team": "a,b", "app_kubernetes_io_name": "shop"}
    assert warned(loaded, "label 'app.kubernetes.io/name' is kept as 'app_kubernetes_io_name'")


def test_objective_names_may_be_given_by_annotation() -> None:
    metadata = "  annotations: {relia.dev/objective-names: 'fast, slow'}\n"
    body = ratio() + ROLLING + "  objectives: [{displayName: 99 % fast, target: 0.99}, {target: 0.9}]\n"
    spec = specs(validate(PROMETHEUS + slo(body, metadata=metadata)))["checkout-availability"]
    assert [(o["name"], o["displayName"]) for o in spec["objectives"]] == [("fast", "99 % fast"), ("slow", None)]
    [problem] = refused(PROMETHEUS + slo(body, metadata=metadata.replace("fast, slow", "fast")))
    assert problem.path == "metadata.annotations.relia.dev/objective-names"


@pytest.mark.parametrize(
    ("objective", "fragment"),
    [
        ("{target: 0.9, targetPercent: 90}", "not both"),
        ("{displayName: x}", "target (a ratio"),
        ("{target: 1.5}", "above 1"),
        ("{targetPercent: 100}", "below 100 %"),
        ("{target: 0}", "always met"),
    ],
)
def test_targets_outside_relias_range_are_refused(objective: str, fragment: str) -> None:
    [problem] = refused(PROMETHEUS + slo(ratio() + ROLLING + f"  objectives: [{objective}]\n"))
    assert fragment in problem.message


def test_slice_fields_of_another_budgeting_method_are_ignored_with_a_warning() -> None:
    body = ratio() + ROLLING + "  objectives: [{target: 0.99, timeSliceTarget: 0.9, timeSliceWindow: 1m}]\n"
    loaded = validate(PROMETHEUS + slo(body))
    assert specs(loaded)["checkout-availability"]["objectives"][0]["timeSliceWindow"] is None
    assert warned(loaded, "timeSliceTarget and timeSliceWindow ignored: Occurrences")


# ------------------------------------------------------------------------------------------------ alerts


def policies(conditions: str, *, policy: str = "alertWhenBreaching: true") -> str:
    return (
        "  alertPolicies:\n    - kind: AlertPolicy\n      metadata: {name: burn}\n"
        f"      spec:\n        {policy}\n        conditions:\n{conditions}"
    )


def condition(spec: str, *, name: str = "fast", annotations: str = "") -> str:
    return (
        f"          - kind: AlertCondition\n            metadata: {{name: {name}{annotations}}}\n"
        f"            spec: {spec}\n"
    )


THIRTY_DAYS = "  timeWindow: [{duration: 30d, isRolling: true}]\n  objectives: [{target: 0.999}]\n"


def test_burn_rate_conditions_become_relia_tiers() -> None:
    conditions = condition(
        "{severity: page, condition: {kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h}}"
    ) + condition(
        "{severity: warning, condition: {kind: burnrate, op: gte, threshold: 1, lookbackWindow: 3d, alertAfter: 0m}}",
        name="slow",
        annotations=", annotations: {relia.dev/short-window: 3h}",
    )
    loaded = validate(PROMETHEUS + slo(ratio() + THIRTY_DAYS + policies(conditions)))
    alerting = specs(loaded)["checkout-availability"]["alerting"]
    assert alerting["windows"] == [
        {"severity": "page", "budgetPercent": 2.0, "long": "1h", "short": "5m"},
        {"severity": "ticket", "budgetPercent": 10.0, "long": "3d", "short": "3h"},
    ]
    assert alerting["page"]["enabled"] and alerting["ticket"]["enabled"]
    assert loaded.warnings == []


def test_conditions_and_policies_by_reference_are_used_and_not_reported_as_unused() -> None:
    documents = (
        "apiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: fast}\n"
        "spec: {severity: critical, condition: {kind: burnrate, op: gt, threshold: 6, lookbackWindow: 6h}}\n---\n"
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: burn}\n"
        "spec: {alertWhenNoData: true, conditions: [{conditionRef: fast}], notificationTargets: [{targetRef: pd}]}\n"
        "---\napiVersion: openslo/v1\nkind: AlertNotificationTarget\nmetadata: {name: pd}\nspec: {target: pagerduty}\n"
        "---\n"
    )
    body = ratio() + THIRTY_DAYS + "  alertPolicies: [{alertPolicyRef: burn}]\n"
    loaded = validate(PROMETHEUS + documents + slo(body))
    alerting = specs(loaded)["checkout-availability"]["alerting"]
    assert alerting["windows"] == [{"severity": "page", "budgetPercent": 5.0, "long": "6h", "short": "30m"}]
    assert alerting["noData"]["enabled"] is True
    assert not warned(loaded, "not used by any SLO")
    [warning] = warned(loaded, "notificationTargets are read but not applied")
    assert (warning.kind, warning.name) == ("AlertPolicy", "burn")


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ("{severity: page, condition: {kind: burnrate, op: lte, threshold: 2, lookbackWindow: 1h}}", "op", "use gt"),
        (
            "{severity: page, condition: {kind: burnrate, op: gt, threshold: 2, lookbackWindow: 1h, alertAfter: 5m}}",
            "alertAfter",
            "cannot wait 5m",
        ),
        ("{severity: page, condition: {kind: budget, op: gt, threshold: 2, lookbackWindow: 1h}}", "kind", "burnrate"),
        ("{severity: page, condition: {kind: burnrate, op: gt, threshold: 0, lookbackWindow: 1h}}", "threshold", ""),
        ("{severity: page, condition: {kind: burnrate, op: gt, threshold: 2000, lookbackWindow: 1d}}", "threshold", ""),
        (
            "{severity: page, condition: {kind: burnrate, op: gt, threshold: 2, lookbackWindow: 1M}}",
            "lookbackWindow",
            "",
        ),
    ],
)
def test_conditions_that_would_change_when_alerts_fire_are_refused(spec: str, path: str, fragment: str) -> None:
    [problem] = refused(PROMETHEUS + slo(ratio() + THIRTY_DAYS + policies(condition(spec))))
    assert problem.path == f"spec.alertPolicies.0.spec.conditions.0.spec.condition.{path}"
    assert fragment in problem.message


def test_an_attached_condition_is_refused_where_it_is_written() -> None:
    documents = (
        "apiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: wrong-way}\n"
        "spec: {severity: page, condition: {kind: burnrate, op: lte, threshold: 2, lookbackWindow: 1h}}\n---\n"
    )
    body = ratio() + THIRTY_DAYS + policies("          - conditionRef: wrong-way\n")
    [problem] = refused(PROMETHEUS + documents + slo(body))
    assert (problem.kind, problem.name, problem.document, problem.path, problem.line) == (
        "AlertCondition",
        "wrong-way",
        2,
        "spec.condition.op",
        11,  # the AlertCondition's own line in the file, not the SLO's
    )


def test_policies_that_do_not_alert_on_breaches_turn_the_burn_rate_alerts_off() -> None:
    conditions = condition("{severity: page, condition: {kind: burnrate, op: gt, threshold: 2, lookbackWindow: 1h}}")
    body = ratio() + THIRTY_DAYS + policies(conditions, policy="alertWhenBreaching: false")
    loaded = validate(PROMETHEUS + slo(body))
    alerting = specs(loaded)["checkout-availability"]["alerting"]
    assert (alerting["page"]["enabled"], alerting["ticket"]["enabled"], alerting["windows"]) == (False, False, None)
    assert warned(loaded, "alertWhenBreaching is false")


def test_an_slo_without_policies_keeps_relias_default_tiers() -> None:
    spec = specs(validate(PROMETHEUS + slo(ratio() + THIRTY_DAYS + "  alertPolicies:\n")))["checkout-availability"]
    assert spec["alerting"]["windows"] is None
    assert spec["alerting"]["page"]["enabled"] is True


# ------------------------------------------------------------------------------------------ lines, apply


def test_translated_fields_point_at_the_openslo_lines_they_came_from() -> None:
    from relia.config.documents import parse
    from relia.config.registry import TranslationContext
    from relia.slo.openslo import translate_slo

    [document] = parse([SourceFile("slo.yaml", slo(ratio() + THIRTY_DAYS))])
    [translated] = translate_slo(document, TranslationContext([document]))
    assert translated.line_of(("spec", "service")) == 6
    assert translated.line_of(("spec", "indicator", "ratio", "total")) == 13
    assert translated.line_of(("spec", "window")) == 14
    assert translated.origin == "openslo/v1 SLO 'checkout-availability'"


def test_an_openslo_set_applies_and_a_second_apply_changes_nothing(client: Any, db: Any, clock: Any) -> None:
    make_user(db, clock, "root", admin=True)
    headers = {"Authorization": f"Bearer {make_token(db, clock, 'root', 'admin')}"}
    service = (
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: web-shop\n"
        "  annotations: {relia.dev/owner: storefront}\nspec: {description: The shop}\n---\n"
    )
    conditions = condition("{severity: page, condition: {kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h}}")
    openslo = (
        PROMETHEUS
        + service
        + slo(ratio() + THIRTY_DAYS + policies(conditions), name="shop-requests").replace(
            "service: checkout", "service: web-shop"
        )
    )
    files = {**example_files(), "openslo.yaml": openslo}
    plan = apply_ok(client, headers, files)
    assert {
        ("create", "DataSource", "prom"),
        ("create", "Service", "web-shop"),
        ("create", "SLO", "shop-requests"),
    } <= set(changed(plan))
    assert changed(apply_ok(client, headers, files)) == []
    with db.session(write=False) as session:
        stored = session.scalars(select(SLO).where(SLO.name == "shop-requests")).one()
        assert stored.spec["alerting"]["windows"][0]["budgetPercent"] == 2.0
