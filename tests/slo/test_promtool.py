"""The exported rules as Prometheus itself reads them: ``promtool check rules`` on the conformance inputs and
on Relia SLOs of every exportable indicator, and ``promtool test rules`` unit tests where synthetic request
series must (and must not) fire the page alert. Skipped where promtool is not installed (Debian: the
``prometheus`` package; .ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from relia.config.documents import SourceFile
from relia.slo import sloth
from relia.slo.promrules import RuleOptions, prometheus_rules, render_rules
from relia.slo.rules import CUSTOM_7D
from relia.slo.schemas import SLOSpec
from tests.conformance import CONFORMANCE

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (apt-get install --no-install-recommends prometheus; .ci/run does)",
)

INPUTS = CONFORMANCE / "sloth" / "inputs"
DAY = 1440


def promtool(*arguments: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, arguments)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def imported(input_name: str) -> list[tuple[str, SLOSpec]]:
    path = INPUTS / input_name
    converted = sloth.convert([SourceFile(path.name, path.read_text(encoding="utf-8"))])
    return [
        (document["metadata"]["name"], SLOSpec.model_validate(document["spec"])) for document in converted.documents
    ]


CHECKS = [
    ("getting-started.yml", RuleOptions()),
    ("k8s-getting-started.yml", RuleOptions()),
    ("no-alerts.yml", RuleOptions()),
    ("in-base.yaml", RuleOptions()),
    ("in-base.yaml", RuleOptions(period_minutes=28 * DAY)),
    ("in-base.yaml", RuleOptions(catalog=CUSTOM_7D)),
]


@pytest.mark.parametrize(
    ("input_name", "options"), CHECKS, ids=["getting-started", "k8s", "no-alerts", "30d", "28d", "7d"]
)
def test_promtool_accepts_the_rules_of_every_conformance_input(
    tmp_path: Path, input_name: str, options: RuleOptions
) -> None:
    (tmp_path / "rules.yaml").write_text(render_rules(prometheus_rules(imported(input_name), options)))
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_rules_of_every_exportable_relia_indicator(tmp_path: Path) -> None:
    def spec(indicator: dict[str, Any], **changes: Any) -> SLOSpec:
        body = {
            "service": "shop",
            "indicator": {"source": "prometheus", **indicator},
            "window": {"calendar": "month"},
            "objectives": [{"target": 0.99}],
            "alerting": {"name": "ShopSLO", "windows": None},
        }
        return SLOSpec.model_validate(body | changes)

    requests = 'sum(rate(http_requests_total{job="shop"}[{{.window}}]))'
    slos = [
        ("shop-good", spec({"ratio": {"good": requests.replace('"}', '",code!~"5.."}'), "total": requests}})),
        ("shop-raw", spec({"ratio": {"errorRatio": '1 - avg_over_time(up{job="shop"}[{{.window}}])'}})),
        (
            "shop-latency",
            spec(
                {"threshold": {"metric": "http_request_duration_seconds", "selector": 'job="shop"', "op": "lte"}},
                objectives=[
                    {"name": "fast", "target": 0.9, "threshold": 0.3},
                    {"name": "ok", "target": 0.99, "threshold": 1},
                ],
            ),
        ),
        ("shop-probe", spec({"probe": {"query": 'probe_success{job="blackbox"}'}})),
        ("shop-probe-min", spec({"probe": {"query": "min by (instance) (probe_success)"}})),
    ]
    (tmp_path / "rules.yaml").write_text(render_rules(prometheus_rules(slos, RuleOptions(optimized_period=False))))
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------ promtool unit tests

# svc01-slo1 of in-base.yaml: 99.9 % over 30d, so the page tiers fire above 14.4 x 0.1 % = 1.44 % errors over
# 5m and 1h, or 6 x 0.1 % = 0.6 % over 30m and 6h; the ticket tiers above 0.3 % (2h, 1d) or 0.1 % (6h, 3d).
SERIES = 'http_request_duration_seconds_count{{job="myservice",code="{code}"}}'
SLO_LABELS = {
    "global01k1": "global01v1",
    "global02k1": "global02v1",
    "sloth_id": "svc01-slo1",
    "sloth_service": "svc01",
    "sloth_slo": "slo1",
}


def alert(severity: str) -> dict[str, Any]:
    """The alert as Prometheus fires it: the series' labels, the rule's labels, templated annotations."""
    extra = {"page": {"alert03k1": "alert03v1"}, "ticket": {"alert04k1": "alert04v1"}}[severity]
    return {
        "exp_labels": {**SLO_LABELS, "alert01k1": "alert01v1", **extra, "sloth_severity": severity},
        "exp_annotations": {
            "alert02k1": "alert02k2",
            "summary": "svc01 slo1 SLO error budget burn rate is over expected.",
            "title": f"({severity}) svc01 slo1 SLO error budget burn rate is too fast.",
        },
    }


def requests(per_minute: dict[str, str]) -> list[dict[str, str]]:
    """Counter series in promtool notation: one per status code, e.g. ``{"200": "0+990x180"}``."""
    return [{"series": SERIES.format(code=code), "values": values} for code, values in per_minute.items()]


UNIT_TESTS = {
    "a 10 % error rate pages (and tickets)": (
        requests({"200": "0+900x120", "500": "0+100x120"}),
        [{"eval_time": "20m", "alertname": "myServiceAlert", "exp_alerts": [alert("page"), alert("ticket")]}],
    ),
    "a 0.5 % error rate tickets but does not page": (
        requests({"200": "0+9950x120", "500": "0+50x120"}),
        [{"eval_time": "60m", "alertname": "myServiceAlert", "exp_alerts": [alert("ticket")]}],
    ),
    "a 0.05 % error rate alerts nobody": (
        requests({"200": "0+9995x240", "500": "0+5x240"}),
        [{"eval_time": "3h", "alertname": "myServiceAlert", "exp_alerts": []}],
    ),
    "the page stops once the short window is clean, while the long one still burns": (
        # 10 % errors for an hour, then none: 15 minutes later the 5m and 30m windows are clean.
        requests({"200": "0+900x60 54000+1000x60", "500": "0+100x60 6000+0x60"}),
        [
            {"eval_time": "50m", "alertname": "myServiceAlert", "exp_alerts": [alert("page"), alert("ticket")]},
            {"eval_time": "95m", "alertname": "myServiceAlert", "exp_alerts": [alert("ticket")]},
        ],
    ),
}


@pytest.mark.parametrize("case", list(UNIT_TESTS))
def test_the_page_alert_fires_on_a_fast_burn_and_only_then(tmp_path: Path, case: str) -> None:
    (tmp_path / "rules.yaml").write_text(render_rules(prometheus_rules(imported("in-base.yaml"))))
    series, alert_tests = UNIT_TESTS[case]
    unit_test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alert_tests}],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(unit_test, sort_keys=False))
    result = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_recorded_ratios_and_burn_rates_are_what_the_series_say(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(render_rules(prometheus_rules(imported("in-base.yaml"))))
    window = {**SLO_LABELS, "sloth_window": "5m"}
    unit_test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": requests({"200": "0+980x60", "500": "0+20x60"}),
                "promql_expr_test": [
                    {
                        "expr": 'slo:sli_error:ratio_rate5m{sloth_id="svc01-slo1"}',
                        "eval_time": "30m",
                        "exp_samples": [{"labels": _labels("slo:sli_error:ratio_rate5m", window), "value": 0.02}],
                    },
                    {
                        # 2 % errors against a 0.1 % budget: burning 20 times too fast. (group_left keeps the
                        # 5m ratio's labels, sloth_window among them, as Sloth's rule does.)
                        "expr": 'slo:current_burn_rate:ratio{sloth_id="svc01-slo1"}',
                        "eval_time": "30m",
                        "exp_samples": [{"labels": _labels("slo:current_burn_rate:ratio", window), "value": 20}],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(unit_test, sort_keys=False))
    result = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _labels(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}"
