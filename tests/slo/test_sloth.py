"""Sloth specs (``prometheus/v1`` files and Kubernetes ``PrometheusServiceLevel`` objects) translated into
Relia SLO documents: the conformance inputs, every refusal naming its field, and the config loader claiming
Sloth files. The last test applies a Sloth file through the API (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import select
from starlette.testclient import TestClient

from relia.config import service as config_service
from relia.config.documents import ConfigInvalid, ConfigProblem, SourceFile
from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.slo import sloth
from relia.slo.models import SLO
from relia.slo.promrules import prometheus_rules
from relia.slo.schemas import SLOSpec
from tests.config.support import apply_ok, changed, example_files
from tests.conformance import CONFORMANCE
from tests.factories import make_token, make_user

INPUTS = CONFORMANCE / "sloth" / "inputs"
WINDOWS = INPUTS.parent / "windows"

GETTING_STARTED_SPEC: dict[str, Any] = {
    "service": "myservice",
    "description": "Common SLO based on availability for HTTP request responses.",
    "labels": {"owner": "myteam", "repo": "myorg/myservice", "tier": "2"},
    "indicator": {
        "source": "prometheus",
        "ratio": {
            "bad": 'sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))',
            "total": 'sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))',
        },
    },
    "budgetingMethod": "Occurrences",
    "window": {"rolling": "30d"},
    "objectives": [{"name": "default", "target": 0.999}],
    "alerting": {
        "name": "MyServiceHighErrorRate",
        "labels": {"category": "availability"},
        "annotations": {"summary": "High error rate on 'myservice' requests responses"},
        "page": {"enabled": True, "labels": {"severity": "pageteam", "routing_key": "myteam"}},
        "ticket": {"enabled": True, "labels": {"severity": "slack", "slack_channel": "#alerts-myteam"}},
    },
}


def convert_text(content: str, name: str = "slos.yaml", **options: Any) -> sloth.Converted:
    return sloth.convert([SourceFile(name, content)], **options)


def convert_input(name: str, **options: Any) -> sloth.Converted:
    return convert_text((INPUTS / name).read_text(encoding="utf-8"), name, **options)


def refusal(content: str, **options: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigInvalid) as raised:
        convert_text(content, **options)
    return raised.value.problems


def spec_file(slo: str, *, service: str = "svc", top: str = "") -> str:
    """A prometheus/v1 file with one SLO, written as YAML under ``slos:`` (indented by 4)."""
    return f'version: "prometheus/v1"\nservice: "{service}"\n{top}slos:\n  - {slo.strip()}\n'


EVENTS = (
    "sli:\n"
    "      events:\n"
    "        error_query: sum(rate(errors[{{.window}}]))\n"
    "        total_query: sum(rate(requests[{{.window}}]))\n"
)
NO_ALERTS = "alerting:\n      page_alert: {disable: true}\n      ticket_alert: {disable: true}\n"


def one_slo(*lines: str) -> str:
    return spec_file("\n    ".join(lines))


# ----------------------------------------------------------------------------------------- conformance


def test_the_getting_started_spec_becomes_one_relia_slo() -> None:
    converted = convert_input("getting-started.yml")
    assert converted.documents == [
        {
            "apiVersion": "relia.dev/v1",
            "kind": "SLO",
            "metadata": {"name": "myservice-requests-availability"},
            "spec": GETTING_STARTED_SPEC,
        }
    ]
    assert converted.warnings == []


def test_the_kubernetes_object_says_the_same_and_its_metadata_is_named_as_not_kept() -> None:
    converted = convert_input("k8s-getting-started.yml")
    assert converted.documents == convert_input("getting-started.yml").documents
    assert [(warning.path, warning.line, warning.message) for warning in converted.warnings] == [
        (
            "metadata",
            9,
            "not kept: the Kubernetes object's name 'sloth-slo-my-service' and namespace 'monitoring' (Relia names "
            "each SLO <service>-<slo name>)",
        )
    ]


def test_the_base_spec_gives_an_events_slo_with_alerts_and_a_raw_slo_without() -> None:
    first, second = convert_input("in-base.yaml").documents
    assert first["metadata"]["name"] == "svc01-slo1"
    assert first["spec"]["labels"] == {"global01k1": "global01v1", "global02k1": "global02v1"}
    assert first["spec"]["alerting"] == {
        "name": "myServiceAlert",
        "labels": {"alert01k1": "alert01v1"},
        "annotations": {"alert02k1": "alert02k2"},
        "page": {"enabled": True, "labels": {"alert03k1": "alert03v1"}},
        "ticket": {"enabled": True, "labels": {"alert04k1": "alert04v1"}},
    }
    assert second["metadata"]["name"] == "svc01-slo02"
    assert second["spec"]["objectives"] == [{"name": "default", "target": 0.95}]
    assert second["spec"]["indicator"]["ratio"] == {
        "errorRatio": 'sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}'
        '[{{.window}}]))\n/\nsum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))'
    }
    assert second["spec"]["alerting"] == {"page": {"enabled": False}, "ticket": {"enabled": False}}


def test_the_no_alerts_spec_keeps_its_multi_line_queries_and_a_99_99_objective() -> None:
    (document,) = convert_input("no-alerts.yml").documents
    assert document["spec"]["objectives"] == [{"name": "default", "target": 0.9999}]
    assert document["spec"]["indicator"]["ratio"]["bad"].startswith("sum(\n  rate(http_request_duration")


def test_every_translated_slo_is_a_valid_relia_spec() -> None:
    for name in ("getting-started.yml", "k8s-getting-started.yml", "in-base.yaml", "no-alerts.yml"):
        for document in convert_input(name).documents:
            SLOSpec.model_validate(document["spec"])


def test_an_objective_of_101_is_refused_naming_the_field_and_its_line() -> None:
    with pytest.raises(ConfigInvalid) as raised:
        convert_input("invalid-objective-101.yaml")
    objective = [problem for problem in raised.value.problems if problem.path == "slos.1.objective"]
    assert [(problem.line, problem.message) for problem in objective] == [
        (28, "must be above 0 and at most 100 (a percentage, e.g. 99.9), got 101")
    ]
    # The file also spells the alert fields in the Kubernetes style, which a prometheus/v1 reader would
    # ignore (enabling both alerts with no labels): named too.
    assert sorted(problem.path for problem in raised.value.problems if problem.path != "slos.1.objective") == [
        "slos.0.alerting.pageAlert",
        "slos.0.alerting.ticketAlert",
    ]


def test_a_sloth_imported_slo_exports_back_to_its_sloth_ids() -> None:
    documents = convert_input("in-base.yaml").documents
    rule_set = prometheus_rules((doc["metadata"]["name"], SLOSpec.model_validate(doc["spec"])) for doc in documents)
    assert [group.name for group in rule_set.groups if group.name.startswith("sloth-slo-meta")] == [
        "sloth-slo-meta-recordings-svc01-slo1",
        "sloth-slo-meta-recordings-svc01-slo02",
    ]


# ------------------------------------------------------------------------------------------------ fields


def test_slo_labels_win_over_the_files_labels() -> None:
    content = spec_file(
        f"name: api\n    objective: 99\n    labels: {{team: b, extra: x}}\n    {EVENTS}    {NO_ALERTS}",
        top="labels: {team: a, tier: 1}\n",
    )
    (document,) = convert_text(content).documents
    assert document["spec"]["labels"] == {"team": "b", "tier": "1", "extra": "x"}


def test_the_window_variable_is_written_the_one_way_relia_reads_it() -> None:
    content = one_slo(
        "name: api",
        "objective: 99",
        "sli:",
        "  raw:",
        "    error_ratio_query: my:error_ratio{{ .window }}",
        "alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}",
    )
    (document,) = convert_text(content).documents
    assert document["spec"]["indicator"]["ratio"] == {"errorRatio": "my:error_ratio{{.window}}"}


def test_the_data_source_is_prometheus_unless_an_annotation_or_the_caller_names_another() -> None:
    content = slo_with(EVENTS, NO_ALERTS)
    assert convert_text(content).documents[0]["spec"]["indicator"]["source"] == "prometheus"
    assert convert_text(content, data_source="thanos").documents[0]["spec"]["indicator"]["source"] == "thanos"
    kubernetes = (
        (INPUTS / "k8s-getting-started.yml")
        .read_text()
        .replace(
            "  namespace: monitoring\n", "  namespace: monitoring\n  annotations: {relia.dev/data-source: mimir}\n"
        )
    )
    assert convert_text(kubernetes).documents[0]["spec"]["indicator"]["source"] == "mimir"
    assert convert_text(kubernetes, data_source="thanos").documents[0]["spec"]["indicator"]["source"] == "thanos"


def test_a_data_source_name_relia_cannot_hold_is_refused() -> None:
    problems = refusal(slo_with(EVENTS, NO_ALERTS), data_source="Not A Slug")
    assert [problem.path for problem in problems] == ["slos.0.sli"]
    assert "in Relia's spec.indicator.source" in problems[0].message


# ---------------------------------------------------------------------------------------------- refusals


def problems_of(content: str, **options: Any) -> list[tuple[str, str]]:
    return [(problem.path, problem.message) for problem in refusal(content, **options)]


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("100", "an objective of 100 % leaves no error budget; Relia needs an objective below 100"),
        ("0", "must be above 0 and at most 100 (a percentage, e.g. 99.9), got 0"),
        ("-5", "must be above 0 and at most 100 (a percentage, e.g. 99.9), got -5"),
        ('"99.9"', "must be a number (a percentage, e.g. 99.9), got '99.9'"),
        ("true", "must be a number (a percentage, e.g. 99.9), got True"),
    ],
)
def test_objectives_outside_relias_range_are_refused(objective: str, message: str) -> None:
    assert problems_of(one_slo("name: api", f"objective: {objective}", EVENTS, NO_ALERTS)) == [
        ("slos.0.objective", message)
    ]


def test_a_missing_objective_is_refused() -> None:
    assert problems_of(one_slo("name: api", EVENTS, NO_ALERTS)) == [
        ("slos.0.objective", "required: the objective as a percentage, e.g. 99.9")
    ]


def slo_with(*lines: str) -> str:
    return one_slo("name: api", "objective: 99", *lines)


def test_sli_plugins_are_refused_naming_the_field() -> None:
    content = slo_with("sli:", "  plugin:", "    id: sloth-common/kubernetes/apiserver/availability", NO_ALERTS)
    (problem,) = problems_of(content)
    assert problem[0] == "slos.0.sli.plugin"
    assert "Relia cannot run them" in problem[1]


def test_slo_plugin_chains_are_refused_at_both_levels() -> None:
    top = spec_file(
        f"name: api\n    objective: 99\n    {EVENTS}    {NO_ALERTS}", top="slo_plugins:\n  chain: [{id: x}]\n"
    )
    assert [path for path, _ in problems_of(top)] == ["slo_plugins"]
    per_slo = slo_with(EVENTS, NO_ALERTS, "plugins:", "  chain: [{id: x}]")
    assert [path for path, _ in problems_of(per_slo)] == ["slos.0.plugins"]


@pytest.mark.parametrize(
    ("sli", "path", "message"),
    [
        (
            "sli:\n      events:\n        error_query: sum(rate(e[5m]))\n"
            "        total_query: sum(rate(t[{{.window}}]))\n",
            "slos.0.sli.events.error_query",
            "the query must contain the {{.window}} variable",
        ),
        (
            "sli:\n      events:\n        error_query: sum(rate(t[{{.window}}]))\n"
            "        total_query: sum(rate(t[{{.window}}]))\n",
            "slos.0.sli.events",
            "the error and total queries are the same",
        ),
        ("sli:\n      events:\n        error_query: x[{{.window}}]\n", "slos.0.sli.events.total_query", "required"),
        (
            "sli:\n      raw: {error_ratio_query: 'a[{{.window}}]'}\n      events: {error_query: x, total_query: y}\n",
            "slos.0.sli",
            "give exactly one SLI type: events or raw",
        ),
        (
            "sli:\n      raw:\n        error_ratio_query: sum(rate(e[{{.window}}])\n",
            "slos.0.sli.raw.error_ratio_query",
            "not valid PromQL: unclosed left parenthesis",
        ),
        ("sli: {}\n", "slos.0.sli", "give exactly one SLI type: events or raw"),
        ("", "slos.0.sli", "required"),
    ],
    ids=["no-window", "same-queries", "no-total", "two-types", "not-promql", "empty", "missing"],
)
def test_slis_sloth_refuses_are_refused(sli: str, path: str, message: str) -> None:
    ((problem_path, problem_message),) = problems_of(slo_with(sli, NO_ALERTS))
    assert problem_path == path
    assert problem_message.startswith(message)


def test_an_alert_name_is_required_unless_both_alerts_are_disabled() -> None:
    page_only = slo_with(EVENTS, "alerting:\n      ticket_alert: {disable: true}\n")
    assert problems_of(page_only) == [
        (
            "slos.0.alerting.name",
            "required unless both page_alert and ticket_alert are disabled (the alerts' name; Sloth refuses it too)",
        )
    ]
    assert [path for path, _ in problems_of(slo_with(EVENTS))] == ["slos.0.alerting.name"]


def test_disable_must_be_a_boolean() -> None:
    content = slo_with(EVENTS, "alerting:\n      name: A\n      page_alert: {disable: 'yes'}\n")
    assert problems_of(content) == [("slos.0.alerting.page_alert.disable", "must be true or false")]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("a", "invalid SLO name 'a': at least 2 characters"),
        ("-api", "invalid SLO name '-api'"),
        ("Api", "Relia names this SLO 'svc-Api' (<service>-<slo name>), which is not a valid Relia name"),
        ("api_v2", "Relia names this SLO 'svc-api_v2'"),
        ("a" * 62, "at most 63 in all"),
    ],
)
def test_slo_names_that_sloth_or_relia_cannot_hold_are_refused(name: str, fragment: str) -> None:
    ((path, message),) = problems_of(one_slo(f"name: {name}", "objective: 99", EVENTS, NO_ALERTS))
    assert path == "slos.0.name"
    assert fragment in message


def test_a_service_relia_cannot_name_is_refused_once_for_the_file() -> None:
    content = spec_file(f"name: api\n    objective: 99\n    {EVENTS}    {NO_ALERTS}", service="My.Service")
    assert [path for path, _ in problems_of(content)] == ["service"]
    assert [path for path, _ in problems_of(content.replace('service: "My.Service"\n', ""))] == ["service"]


@pytest.mark.parametrize(
    ("content", "path", "fragment"),
    [
        (
            'version: "prometheus/v1"\nservice: svc\nslos:\n  - name: api\n    objective: 99\n    sli:\n      events:\n'
            "        errorQuery: x[{{.window}}]\n        total_query: y[{{.window}}]\n",
            "slos.0.sli.events.errorQuery",
            "the Sloth prometheus/v1 format spells it 'error_query'",
        ),
        (
            'version: "prometheus/v1"\nservice: svc\nowner: me\nslos: []\n',
            "owner",
            "unknown field 'owner' (known here: labels, service, slo_plugins, slos, version)",
        ),
    ],
)
def test_unknown_fields_are_refused_with_the_spelling_this_format_uses(content: str, path: str, fragment: str) -> None:
    assert any(problem_path == path and fragment in message for problem_path, message in problems_of(content))


def test_the_kubernetes_shape_wants_camel_case() -> None:
    content = (INPUTS / "k8s-getting-started.yml").read_text().replace("errorQuery", "error_query")
    assert (
        "spec.slos.0.sli.events.error_query",
        "unknown field 'error_query': the Sloth PrometheusServiceLevel format spells it 'errorQuery'",
    ) in problems_of(content)


def test_label_values_keep_their_spelling_or_are_refused() -> None:
    content = spec_file(
        f"name: api\n    objective: 99\n    {EVENTS}    {NO_ALERTS}", top="labels: {tier: 2, ratio: 1.50}\n"
    )
    assert problems_of(content) == [("labels.ratio", "must be a string: quote 1.5 so that it keeps its spelling")]


def test_a_spec_without_slos_or_of_another_version_is_refused() -> None:
    assert problems_of('version: "prometheus/v1"\nservice: svc\nslos: []\n') == [
        ("slos", "at least one SLO is required")
    ]
    assert problems_of('version: "prometheus/v2"\nservice: svc\n') == [
        ("version", "unsupported Sloth spec version 'prometheus/v2'; Relia reads 'prometheus/v1'")
    ]


def test_every_problem_of_a_file_is_named_at_once() -> None:
    content = (
        'version: "prometheus/v1"\nservice: svc\nslos:\n'
        f"  - name: a\n    objective: 99\n    {EVENTS}    {NO_ALERTS}"
        f"  - name: ok\n    objective: 101\n    {EVENTS}    {NO_ALERTS}"
    )
    assert [(problem.path, problem.line) for problem in refusal(content)] == [
        ("slos.0.name", 4),
        ("slos.1.objective", 14),
    ]


def test_convert_refuses_documents_that_are_not_sloths() -> None:
    (problem,) = refusal("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n")
    assert problem.message.startswith("not a Sloth SLO document")


# -------------------------------------------------------------------------------------- the config loader


def load(*files: tuple[str, str]) -> config_service.Loaded:
    return config_service.load_objects([SourceFile(name, content) for name, content in files])


def test_the_config_loader_claims_sloth_files_without_api_version_and_kubernetes_objects() -> None:
    loaded = load(
        ("in-base.yaml", (INPUTS / "in-base.yaml").read_text()),
        ("k8s.yaml", (INPUTS / "k8s-getting-started.yml").read_text()),
    )
    assert [(obj.kind, obj.name) for obj in loaded.objects] == [
        ("SLO", "svc01-slo1"),
        ("SLO", "svc01-slo02"),
        ("SLO", "myservice-requests-availability"),
    ]
    assert loaded.objects[0].spec == SLOSpec.model_validate(convert_input("in-base.yaml").documents[0]["spec"])
    assert [warning.file for warning in loaded.warnings] == ["k8s.yaml"]


def test_the_config_loader_reports_sloth_problems_with_their_lines() -> None:
    with pytest.raises(ConfigInvalid) as raised:
        load(("bad.yaml", (INPUTS / "invalid-objective-101.yaml").read_text()))
    assert ("slos.1.objective", 28) in [(problem.path, problem.line) for problem in raised.value.problems]


def test_an_alert_windows_catalog_given_as_config_is_refused_with_where_it_belongs() -> None:
    with pytest.raises(ConfigInvalid) as raised:
        load(("7d.yaml", (WINDOWS / "custom-7d.yaml").read_text()))
    (problem,) = raised.value.problems
    assert (problem.path, problem.message) == (
        "kind",
        "a Sloth AlertWindows catalog is not an SLO: give it to the Prometheus rules export instead, or write "
        "its tiers into an SLO's spec.alerting.windows",
    )


def test_a_relia_document_missing_its_api_version_is_still_reported_as_such() -> None:
    with pytest.raises(ConfigInvalid) as raised:
        load(("team.yaml", "kind: Team\nmetadata: {name: a}\nspec: {name: A}\n"))
    assert [(problem.path, problem.message) for problem in raised.value.problems] == [("apiVersion", "required")]


def test_translated_fields_point_at_the_sloth_line_they_came_from() -> None:
    (document,) = sloth.translate(
        config_service.parse([SourceFile("g.yml", (INPUTS / "getting-started.yml").read_text())])[0]
    )
    assert document.origin == "Sloth prometheus/v1 SLO 'requests-availability' of service 'myservice'"
    assert document.line_of(("spec", "service")) == 2
    assert document.line_of(("spec", "indicator", "ratio", "total")) == 15
    assert document.line_of(("spec", "alerting", "ticket", "labels")) == 28  # where ticket_alert's value starts
    assert document.line_of(("spec", "objectives", 0, "target")) == 10


# -------------------------------------------------------------------------------------- through the API


def test_a_sloth_file_applies_as_relia_slos_and_exports_back_to_sloths_rules(
    client: TestClient, db: Database, clock: SimulatedClock
) -> None:
    make_user(db, clock, "root", admin=True)
    headers = {"Authorization": f"Bearer {make_token(db, clock, 'root', 'admin')}"}
    data_source = (
        "apiVersion: relia.dev/v1\nkind: DataSource\nmetadata: {name: prometheus}\n"
        "spec: {type: prometheus, url: 'http://prometheus:9090'}\n"
    )
    spec = yaml.safe_load((INPUTS / "getting-started.yml").read_text())
    spec["service"] = "checkout"  # a service of the demo organisation
    files = {**example_files(), "prometheus.yaml": data_source, "sloth.yml": yaml.safe_dump(spec)}
    plan = apply_ok(client, headers, files)
    assert ("create", "SLO", "checkout-requests-availability") in changed(plan)
    assert changed(apply_ok(client, headers, files)) == []  # the translation is stable: nothing to change
    with db.session(write=False) as session:
        stored = session.scalars(select(SLO).where(SLO.name == "checkout-requests-availability")).one()
        rule_set = prometheus_rules([(stored.name, SLOSpec.model_validate(stored.spec))])
    assert [group.name for group in rule_set.groups] == [
        f"sloth-slo-{kind}-checkout-requests-availability" for kind in ("sli-recordings", "meta-recordings", "alerts")
    ]
