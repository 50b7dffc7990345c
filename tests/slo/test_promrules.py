"""Prometheus rules export: Sloth's conformance outputs (golden, compared semantically), then each indicator,
option and refusal. No database."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

import promql_parser
import pytest
import yaml

from relia.config.documents import SourceFile
from relia.core.errors import InvalidInput
from relia.slo import promrules, sloth
from relia.slo.promrules import RuleOptions, prometheus_duration, prometheus_rules, render_prometheus_rule, render_rules
from relia.slo.rules import CUSTOM_7D, AlertCatalog, alert_catalog_from_sloth
from relia.slo.schemas import SLOSpec
from tests.conformance import CONFORMANCE

CONFORMANCE = CONFORMANCE / "sloth"
INPUTS, EXPECTED, WINDOWS = CONFORMANCE / "inputs", CONFORMANCE / "expected", CONFORMANCE / "windows"
DAY = 1440
EXAMPLES_GEN = {"cmd": "examplesgen.sh"}  # Sloth's examples/_gen files were generated with `-l cmd=examplesgen.sh`


# -------------------------------------------------------------------------------- semantic rule comparison


def canonical(node: Any) -> Any:
    """A PromQL AST as nested tuples, with what does not change the meaning taken out: parentheses (the tree
    already holds the grouping), matcher order, and arithmetic on two numbers (folded, so ``(14.4 * 0.001)``
    and Sloth's ``(14.4 * 0.0009999999999999432)`` both become one number, compared with a tolerance)."""
    if isinstance(node, promql_parser.ParenExpr):
        return canonical(node.expr)
    if isinstance(node, promql_parser.NumberLiteral):
        return ("number", node.val)
    if isinstance(node, promql_parser.StringLiteral):
        return ("string", node.val)
    if isinstance(node, promql_parser.VectorSelector):
        matchers = sorted(
            (matcher.name, str(matcher.op), matcher.value)
            for matcher in node.matchers.matchers
            if not (matcher.name == "__name__" and matcher.value == node.name)
        )
        return ("selector", node.name, tuple(matchers), str(node.offset), str(node.at))
    if isinstance(node, promql_parser.MatrixSelector):
        return ("range", canonical(node.vector_selector), str(node.range))
    if isinstance(node, promql_parser.SubqueryExpr):
        return ("subquery", canonical(node.expr), str(node.range), str(node.step), str(node.offset))
    if isinstance(node, promql_parser.Call):
        return ("call", node.func.name, tuple(canonical(argument) for argument in node.args))
    if isinstance(node, promql_parser.AggregateExpr):
        modifier = node.modifier and (str(node.modifier.type), tuple(sorted(node.modifier.labels)))
        parameter = canonical(node.param) if node.param is not None else None
        return ("aggregate", str(node.op), modifier, canonical(node.expr), parameter)
    if isinstance(node, promql_parser.UnaryExpr):
        inner = canonical(node.expr)
        return ("number", -inner[1]) if inner[0] == "number" else ("negate", inner)
    if isinstance(node, promql_parser.BinaryExpr):
        op, lhs, rhs = str(node.op), canonical(node.lhs), canonical(node.rhs)
        if lhs[0] == rhs[0] == "number" and op in "+-*/":
            a, b = lhs[1], rhs[1]
            return ("number", {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op])
        modifier = node.modifier
        matching = None
        if modifier is not None:
            labels = modifier.matching and (str(modifier.matching.type), tuple(sorted(modifier.matching.labels)))
            matching = (str(modifier.card), labels, modifier.return_bool, tuple(sorted(modifier.group_labels or ())))
        return ("binary", op, matching, lhs, rhs)
    raise AssertionError(f"unexpected PromQL node {type(node).__name__}")


def same_tree(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) == 2 == len(b) and a[0] == b[0] == "number":
            return math.isclose(a[1], b[1], rel_tol=1e-9, abs_tol=1e-12)
        return len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def assert_same_expression(ours: str, theirs: str, where: str) -> None:
    ours_tree, theirs_tree = canonical(promql_parser.parse(ours)), canonical(promql_parser.parse(theirs))
    assert same_tree(ours_tree, theirs_tree), f"{where}: expressions differ\n ours:   {ours}\n theirs: {theirs}"


def assert_same_groups(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    """Same groups, same rules in the same order, same names, labels and annotations, equivalent
    expressions. ``sloth_version`` is the generator's version (a template placeholder upstream): only its
    presence is compared."""
    assert [group["name"] for group in ours] == [group["name"] for group in theirs]
    for our_group, their_group in zip(ours, theirs, strict=True):
        assert len(our_group["rules"]) == len(their_group["rules"]), our_group["name"]
        for our_rule, their_rule in zip(our_group["rules"], their_group["rules"], strict=True):
            name = our_rule.get("record") or our_rule.get("alert")
            where = f"{our_group['name']} {name}"
            assert (our_rule.get("record"), our_rule.get("alert")) == (
                their_rule.get("record"),
                their_rule.get("alert"),
            ), where
            assert set(our_rule) == set(their_rule), where
            our_labels, their_labels = dict(our_rule.get("labels", {})), dict(their_rule.get("labels", {}))
            assert ("sloth_version" in our_labels) == ("sloth_version" in their_labels), where
            our_labels.pop("sloth_version", None), their_labels.pop("sloth_version", None)
            assert our_labels == their_labels, where
            assert our_rule.get("annotations") == their_rule.get("annotations"), where
            assert_same_expression(our_rule["expr"], their_rule["expr"], where)


def expected_file(name: str) -> dict[str, Any]:
    """An upstream expected file, with its Go template rendered: ``{{"..."}}`` is a quoted literal and
    ``{{ .version }}`` the generator's version."""
    text = (EXPECTED / name).read_text(encoding="utf-8")
    text = re.sub(r'\{\{"(.*?)"\}\}', lambda match: match.group(1), text)
    text = text.replace("{{ .version }}", "sloth-version")
    return yaml.safe_load(text)


def imported(input_name: str) -> list[tuple[str, SLOSpec]]:
    """The Relia SLOs of a Sloth input, as the config loader would validate them."""
    path = INPUTS / input_name
    converted = sloth.convert([SourceFile(path.name, path.read_text(encoding="utf-8"))])
    return [
        (document["metadata"]["name"], SLOSpec.model_validate(document["spec"])) for document in converted.documents
    ]


def ours_as_parsed(rule_set: promrules.RuleSet) -> list[dict[str, Any]]:
    """Our rules through the renderer and back, so the golden tests cover the YAML too."""
    return yaml.safe_load(render_rules(rule_set))["groups"]


# ------------------------------------------------------------------------------------ golden: Sloth outputs

CUSTOM_7D_CATALOG = alert_catalog_from_sloth(yaml.safe_load((WINDOWS / "custom-7d.yaml").read_text()))

GOLDEN = [
    ("getting-started.yml", "getting-started.rules.yml", RuleOptions(extra_labels=EXAMPLES_GEN)),
    ("no-alerts.yml", "no-alerts.rules.yml", RuleOptions(extra_labels=EXAMPLES_GEN)),
    ("in-base.yaml", "in-base.30d.rules.yaml.tpl", RuleOptions()),
    ("in-base.yaml", "in-base.28d.rules.yaml.tpl", RuleOptions(period_minutes=28 * DAY)),
    (
        "in-base.yaml",
        "in-base.custom-7d.rules.yaml.tpl",
        RuleOptions(period_minutes=7 * DAY, catalog=CUSTOM_7D_CATALOG),
    ),
]


@pytest.mark.parametrize(("input_name", "expected_name", "options"), GOLDEN, ids=[row[1] for row in GOLDEN])
def test_imported_sloth_specs_export_the_rules_sloth_generates(
    input_name: str, expected_name: str, options: RuleOptions
) -> None:
    rule_set = prometheus_rules(imported(input_name), options)
    assert rule_set.warnings == []
    assert_same_groups(ours_as_parsed(rule_set), expected_file(expected_name)["groups"])


def test_the_kubernetes_input_exports_the_prometheus_rule_sloth_generates() -> None:
    options = RuleOptions(extra_labels=EXAMPLES_GEN, sloth_mode="cli-gen-k8s", sloth_spec="sloth.slok.dev/v1")
    rule_set = prometheus_rules(imported("k8s-getting-started.yml"), options)
    ours = yaml.safe_load(render_prometheus_rule(rule_set, name="sloth-slo-my-service", namespace="monitoring"))
    theirs = expected_file("k8s-getting-started.prometheusrule.yml")
    assert (ours["apiVersion"], ours["kind"]) == (theirs["apiVersion"], theirs["kind"])
    assert {key: ours["metadata"][key] for key in ("name", "namespace")} == {
        key: theirs["metadata"][key] for key in ("name", "namespace")
    }
    assert ours["metadata"]["labels"]["app.kubernetes.io/component"] == "SLO"
    assert_same_groups(ours["spec"]["groups"], theirs["spec"]["groups"])


def test_the_7d_catalog_gives_the_factors_sloth_prints() -> None:
    """13.44, 3.5, 1.4, 0.98 (Sloth prints 1.4000000000000001): exact fractions here."""
    rule_set = prometheus_rules(imported("in-base.yaml"), RuleOptions(period_minutes=7 * DAY, catalog=CUSTOM_7D))
    alerts = next(group for group in rule_set.groups if group.name == "sloth-slo-alerts-svc01-slo1")
    factors = [float(value) for rule in alerts.rules for value in re.findall(r"\(([\d.]+) \* 0\.001\)", rule.expr)]
    assert factors == [13.44, 13.44, 3.5, 3.5, 1.4, 1.4, 0.98, 0.98]


def test_the_comparison_notices_a_changed_threshold_window_or_label() -> None:
    """The golden comparison is not vacuous: each kind of difference fails it."""
    theirs = expected_file("in-base.30d.rules.yaml.tpl")["groups"]
    for mutate in (
        lambda text: text.replace("(14.4 * 0.001)", "(14.5 * 0.001)", 1),
        lambda text: text.replace("ratio_rate1h{", "ratio_rate2h{", 1),
        lambda text: text.replace("alert01k1: alert01v1", "alert01k1: other", 1),
        lambda text: text.replace("without (sloth_window)", "without (sloth_slo)", 1),
    ):
        changed = yaml.safe_load(mutate(render_rules(prometheus_rules(imported("in-base.yaml")))))["groups"]
        with pytest.raises(AssertionError):
            assert_same_groups(changed, theirs)


# ------------------------------------------------------------------------------------------------ indicators


def slo(**changes: Any) -> SLOSpec:
    body: dict[str, Any] = {
        "service": "checkout",
        "indicator": {
            "source": "prometheus",
            "ratio": {
                "bad": 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))',
                "total": 'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))',
            },
        },
        "window": {"rolling": "30d"},
        "objectives": [{"target": 0.999}],
        "alerting": {"name": "CheckoutErrors"},
    }
    body.update(changes)
    return SLOSpec.model_validate(body)


def rule(rule_set: promrules.RuleSet, record: str) -> promrules.Rule:
    return next(item for group in rule_set.groups for item in group.rules if (item.record or item.alert) == record)


def test_a_good_over_total_ratio_becomes_total_minus_good_over_total() -> None:
    spec = slo(
        indicator={
            "source": "prometheus",
            "ratio": {"good": "sum(rate(ok_total[{{.window}}]))", "total": "sum(rate(all_total[{{.window}}]))"},
        }
    )
    expr = rule(prometheus_rules([("checkout-availability", spec)]), "slo:sli_error:ratio_rate5m").expr
    assert_same_expression(expr, "(sum(rate(all_total[5m])) - sum(rate(ok_total[5m]))) / sum(rate(all_total[5m]))", "")


def test_an_error_ratio_query_is_used_as_written_with_each_window() -> None:
    # The window may sit anywhere, even in the name of rules recorded per window.
    spec = slo(indicator={"source": "prometheus", "ratio": {"errorRatio": "my:error_ratio:rate{{ .window }}"}})
    rule_set = prometheus_rules([("checkout-availability", spec)])
    assert rule(rule_set, "slo:sli_error:ratio_rate1h").expr == "(my:error_ratio:rate1h)"
    assert rule(rule_set, "slo:sli_error:ratio_rate3d").expr == "(my:error_ratio:rate3d)"


def test_a_histogram_threshold_counts_the_events_outside_the_bucket() -> None:
    spec = slo(
        indicator={
            "source": "prometheus",
            "threshold": {"metric": "http_request_duration_seconds", "selector": 'job="checkout"', "op": "lte"},
        },
        objectives=[
            {"name": "fast", "target": 0.99, "threshold": 0.25},
            {"name": "ok", "target": 0.999, "threshold": 1},
        ],
    )
    rule_set = prometheus_rules([("checkout-latency", spec)])
    assert [group.name for group in rule_set.groups if "sli" in group.name] == [
        "sloth-slo-sli-recordings-checkout-latency-fast",
        "sloth-slo-sli-recordings-checkout-latency-ok",
    ]
    fast = rule_set.groups[0].rules[0].expr
    count = 'sum(rate(http_request_duration_seconds_count{job="checkout"}[5m]))'
    bucket = 'sum(rate(http_request_duration_seconds_bucket{job="checkout", le="0.25"}[5m]))'
    assert_same_expression(fast, f"({count} - {bucket}) / {count}", "fast")
    whole = next(group for group in rule_set.groups if group.name.endswith("-ok")).rules[0].expr
    assert 'le=~"1|1\\\\.0"' in whole  # Go clients write le="1", Python clients and Prometheus 3 le="1.0"
    assert rule_set.warnings == []


def test_a_greater_or_equal_threshold_counts_the_events_inside_the_bucket_as_relia_does() -> None:
    spec = slo(
        indicator={"source": "prometheus", "threshold": {"metric": "batch_size", "op": "gte"}},
        objectives=[{"target": 0.9, "threshold": 100}],
    )
    rule_set = prometheus_rules([("checkout-batches", spec)])
    expr = rule(rule_set, "slo:sli_error:ratio_rate5m").expr
    assert_same_expression(
        expr, 'sum(rate(batch_size_bucket{le=~"100|100\\\\.0"}[5m])) / sum(rate(batch_size_count[5m]))', ""
    )
    assert rule_set.warnings == []


def test_a_probe_is_the_share_of_zero_samples() -> None:
    selector = slo(indicator={"source": "prometheus", "probe": {"query": 'probe_success{job="blackbox"}'}})
    expr = rule(prometheus_rules([("checkout-probe", selector)]), "slo:sli_error:ratio_rate1h").expr
    assert_same_expression(expr, '1 - avg_over_time(probe_success{job="blackbox"}[1h])', "selector")
    aggregated = slo(indicator={"source": "prometheus", "probe": {"query": "min(probe_success)"}})
    expr = rule(prometheus_rules([("checkout-probe", aggregated)]), "slo:sli_error:ratio_rate1h").expr
    assert_same_expression(expr, "1 - avg_over_time((min(probe_success))[1h:])", "subquery")


# --------------------------------------------------------------------------------------- names and labels


def test_the_sloth_slo_name_is_the_relia_name_without_its_service_prefix() -> None:
    rule_set = prometheus_rules([("checkout-availability", slo()), ("latency", slo())])
    assert [group.name for group in rule_set.groups if "meta" in group.name] == [
        "sloth-slo-meta-recordings-checkout-availability",
        "sloth-slo-meta-recordings-checkout-latency",
    ]
    assert rule(rule_set, "slo:objective:ratio").labels == {
        "sloth_id": "checkout-availability",
        "sloth_service": "checkout",
        "sloth_slo": "availability",
    }


def test_two_slos_that_would_share_a_sloth_id_are_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        prometheus_rules([("checkout-latency", slo()), ("latency", slo())])
    assert raised.value.errors[0].path == "metadata.name"
    assert raised.value.errors[0].context == {"slo": "latency"}


def test_extra_labels_go_on_recording_rules_over_the_slo_labels_but_not_on_alerts() -> None:
    spec = slo(labels={"team": "payments", "tier": "1"})
    rule_set = prometheus_rules([("checkout-availability", spec)], RuleOptions(extra_labels={"tier": "0"}))
    assert rule(rule_set, "slo:sli_error:ratio_rate5m").labels["tier"] == "0"
    assert rule(rule_set, "sloth_slo_info").labels["team"] == "payments"
    assert "tier" not in rule(rule_set, "CheckoutErrors").labels


@pytest.mark.parametrize(("labels", "message"), [({"bad-name": "x"}, "valid Prometheus"), ({"sloth_id": "x"}, "own")])
def test_extra_labels_must_be_prometheus_labels_of_our_own(labels: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleOptions(extra_labels=labels)


def test_slo_labels_named_like_the_rules_labels_are_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        prometheus_rules([("checkout-availability", slo(labels={"sloth_slo": "other"}))])
    assert raised.value.errors[0].path == "labels"


def test_alerts_merge_names_labels_and_annotations_like_sloth() -> None:
    spec = slo(
        alerting={
            "name": "CheckoutErrors",
            "labels": {"team": "payments", "severity": "low"},
            "annotations": {"runbook": "https://runbooks/checkout"},
            "page": {"name": "CheckoutDown", "labels": {"severity": "critical"}, "annotations": {"title": "Down!"}},
            "ticket": {"enabled": True},
        }
    )
    rule_set = prometheus_rules([("checkout-availability", spec)])
    page, ticket = rule_set.groups[-1].rules
    assert (page.alert, ticket.alert) == ("CheckoutDown", "CheckoutErrors")
    assert page.labels == {"sloth_severity": "page", "team": "payments", "severity": "critical"}
    assert ticket.labels == {"sloth_severity": "ticket", "team": "payments", "severity": "low"}
    assert page.annotations["title"] == "Down!"
    assert ticket.annotations["title"].startswith("(ticket) {{$labels.sloth_service}}")
    assert ticket.annotations["runbook"] == "https://runbooks/checkout"


def test_an_slo_without_an_alert_name_gets_the_default_one() -> None:
    rule_set = prometheus_rules([("checkout-availability", slo(alerting={}))])
    assert {item.alert for item in rule_set.groups[-1].rules} == {promrules.DEFAULT_ALERT_NAME}


def test_disabled_alerts_are_left_out_and_an_slo_without_any_has_no_alert_group() -> None:
    ticket_only = slo(alerting={"name": "X", "page": {"enabled": False}})
    assert [item.labels["sloth_severity"] for item in prometheus_rules([("a", ticket_only)]).groups[-1].rules] == [
        "ticket"
    ]
    silent = slo(alerting={"page": {"enabled": False}, "ticket": {"enabled": False}})
    assert [group.name for group in prometheus_rules([("checkout-a", silent)]).groups] == [
        "sloth-slo-sli-recordings-checkout-a",
        "sloth-slo-meta-recordings-checkout-a",
    ]


# ---------------------------------------------------------------------------------------- periods, windows


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        *[(5, "5m"), (60, "1h"), (90, "1h30m"), (DAY, "1d"), (3 * DAY, "3d"), (7 * DAY, "1w"), (28 * DAY, "4w")],
        *[(30 * DAY, "30d"), (90 * DAY, "90d"), (365 * DAY, "1y"), (DAY + 1, "1d1m")],
    ],
)
def test_durations_are_spelled_as_prometheus_prints_them(minutes: int, text: str) -> None:
    assert prometheus_duration(minutes) == text


def test_an_slo_exports_with_its_own_window_and_the_catalog_relia_uses_for_it() -> None:
    rule_set = prometheus_rules([("checkout-a", slo(window={"rolling": "28d"}))])
    assert rule(rule_set, "slo:time_period:days").expr == "vector(28)"
    assert "ratio_rate4w" in rule(rule_set, "slo:period_burn_rate:ratio").expr
    assert "(13.44 * 0.001)" in rule(rule_set, "CheckoutErrors").expr


def test_a_calendar_window_exports_as_its_nominal_rolling_period_with_a_warning() -> None:
    rule_set = prometheus_rules([("checkout-a", slo(window={"calendar": "month", "timeZone": "Europe/Berlin"}))])
    assert rule(rule_set, "slo:time_period:days").expr == "vector(30)"
    assert rule_set.warnings == [
        "SLO 'checkout-a': the calendar month is exported as a rolling 30d period: Prometheus rules cannot "
        "restart the budget at the start of each calendar period"
    ]


def test_an_slos_own_alert_windows_win_over_the_catalog() -> None:
    spec = slo(
        alerting={
            "name": "X",
            "windows": [
                {"severity": "page", "budgetPercent": 1, "long": "30m", "short": "2m"},
                {"severity": "page", "budgetPercent": 2, "long": "3h", "short": "15m"},
                {"severity": "ticket", "budgetPercent": 5, "long": "12h", "short": "1h"},
            ],
        }
    )
    rule_set = prometheus_rules([("checkout-a", spec)], RuleOptions(catalog=CUSTOM_7D))
    assert [item.record for item in rule_set.groups[0].rules] == [
        f"slo:sli_error:ratio_rate{window}" for window in ("2m", "15m", "30m", "1h", "3h", "12h", "1w")
    ]
    page, ticket = rule_set.groups[-1].rules
    # Factors for the 7d period the catalog set: 1 % x 7d / 30m = 3.36, 2 % x 7d / 3h = 1.12, 5 % x 7d / 12h = 0.7.
    assert re.findall(r"\(([\d.]+) \*", page.expr) == ["3.36", "3.36", "1.12", "1.12"]
    assert re.findall(r"\(([\d.]+) \*", ticket.expr) == ["0.7", "0.7"]
    assert "ratio_rate2m" in rule(rule_set, "slo:current_burn_rate:ratio").expr  # the first page short window


def test_a_catalog_for_another_period_than_the_one_asked_is_refused() -> None:
    with pytest.raises(ValueError, match="1w period, not 30d"):
        RuleOptions(period_minutes=30 * DAY, catalog=CUSTOM_7D)


def test_tiers_whose_windows_round_to_zero_are_left_out_with_a_warning() -> None:
    rule_set = prometheus_rules([("checkout-a", slo(window={"rolling": "1d"}))])
    # The 30d catalog scaled to 1 day: page-quick's 5m short window becomes 10 s, which rounds to 0.
    assert "page-quick" in rule_set.warnings[0]
    page = rule(rule_set, "CheckoutErrors")
    assert page.expr.count("\nor\n") == 0


def test_the_exact_period_ratio_counts_events_over_the_whole_period() -> None:
    rule_set = prometheus_rules([("checkout-a", slo())], RuleOptions(optimized_period=False))
    expr = rule(rule_set, "slo:sli_error:ratio_rate30d").expr
    bad, total = 'http_requests_total{job="checkout",code=~"5.."}', 'http_requests_total{job="checkout"}'
    assert_same_expression(expr, f"sum(rate({bad}[30d])) / sum(rate({total}[30d]))", "")


def test_recordings_and_alerts_can_be_left_out() -> None:
    no_alerts = prometheus_rules([("checkout-a", slo())], RuleOptions(alerts=False))
    assert [group.name.split("-")[2] for group in no_alerts.groups] == ["sli", "meta"]
    only_alerts = prometheus_rules([("checkout-a", slo())], RuleOptions(recordings=False))
    assert [group.name for group in only_alerts.groups] == ["sloth-slo-alerts-checkout-a"]


def test_objectives_print_as_exact_decimals() -> None:
    rule_set = prometheus_rules([("checkout-a", slo(objectives=[{"target": 0.9995}]))])
    assert rule(rule_set, "slo:objective:ratio").expr == "vector(0.9995)"
    assert rule(rule_set, "sloth_slo_info").labels["sloth_objective"] == "99.95"
    assert promrules._number(Fraction(14, 15)) == "0.9333333333333333"


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("changes", "paths"),
    [
        ({"indicator": {"ratio": {}}}, "indicator.source"),
        (
            {"indicator": {"source": "prometheus", "ratio": {"bad": "sum(rate(e[5m]))", "total": "sum(rate(t[5m]))"}}},
            "indicator.ratio.total indicator.ratio.bad",
        ),
        (
            {"indicator": {"source": "prometheus", "ratio": {"bad": "count(", "total": "sum(rate(t[{{.window}}]))"}}},
            "indicator.ratio.bad",
        ),
        ({"indicator": {"source": "prometheus", "threshold": {"op": "lte"}}}, "indicator.threshold.metric"),
        ({"indicator": {"source": "prometheus", "probe": {"query": "up{"}}}, "indicator.probe.query"),
        (
            {
                "budgetingMethod": "Timeslices",
                "objectives": [{"target": 0.99, "timeSliceTarget": 0.95, "timeSliceWindow": "1m"}],
            },
            "budgetingMethod",
        ),
    ],
    ids=["pushed", "no-window-variable", "not-promql", "no-histogram", "probe-not-promql", "timeslices"],
)
def test_what_the_rules_cannot_express_is_refused_naming_the_field(changes: dict[str, Any], paths: str) -> None:
    if changes.get("indicator", {}).get("threshold"):
        changes["objectives"] = [{"target": 0.99, "threshold": 0.5}]
    with pytest.raises(InvalidInput) as raised:
        prometheus_rules([("checkout-a", slo(**changes)), ("checkout-fine", slo())])
    assert [(error.path, error.context["slo"]) for error in raised.value.errors] == [
        (path, "checkout-a") for path in paths.split()
    ]
    assert "checkout-a" in raised.value.detail


def test_what_the_rules_leave_out_is_named_in_the_warnings() -> None:
    spec = slo(
        budgetingMethod="RatioTimeslices",
        objectives=[{"target": 0.999, "timeSliceWindow": "5m"}],
        alerting={"name": "X", "minEvents": 10, "noData": {"enabled": True}},
    )
    warnings = prometheus_rules([("checkout-a", spec)]).warnings
    assert [warning.split(": ", 1)[1].split(" ")[0] for warning in warnings] == [
        "RatioTimeslices:",
        "alerting.minEvents",
        "alerting.noData",
    ]


# ----------------------------------------------------------------------------------------------- rendering


def test_the_rendered_file_reads_back_as_the_rule_set() -> None:
    rule_set = prometheus_rules(imported("in-base.yaml"))
    text = render_rules(rule_set)
    assert text.startswith("# Generated by Relia")
    assert yaml.safe_load(text) == rule_set.as_dict()
    assert "    expr: |\n      (sum(rate(" in text  # multi-line expressions are literal blocks


def test_a_catalog_given_alone_sets_the_period() -> None:
    custom = AlertCatalog("one-tier", 7 * DAY, CUSTOM_7D.tiers[:1])
    rule_set = prometheus_rules([("checkout-a", slo())], RuleOptions(catalog=custom))
    assert rule(rule_set, "slo:time_period:days").expr == "vector(7)"
    assert [item.labels["sloth_severity"] for item in rule_set.groups[-1].rules] == ["page"]
