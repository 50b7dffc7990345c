"""OpenSLO export: importing the export gives back the same Relia specs, and what cannot travel is named.
Offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relia.config import service as config_service
from relia.config.documents import SourceFile, dump, read_paths
from relia.slo.openslo import budget_percent
from relia.slo.openslo_export import burn_rate_threshold, export_openslo
from relia.slo.rules import exact, parse_duration
from relia.slo.schemas import AlertTierSpec, DataSourceSpec, SLOSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slos.yaml"

SOURCES = {
    "prom": DataSourceSpec.model_validate(
        {
            "type": "prometheus",
            "url": "http://prometheus:9090",
            "headers": {"Authorization": "Bearer t"},
            "timeoutSeconds": 5,
            "description": "Main Prometheus",
        }
    ),
    "datadog": DataSourceSpec.model_validate({"type": "external", "vendor": "Datadog"}),
    "pushed": DataSourceSpec.model_validate({"type": "external"}),
}


def slo(**spec: Any) -> SLOSpec:
    body: dict[str, Any] = {
        "service": "checkout",
        "indicator": {"ratio": {}},
        "window": {"rolling": "30d"},
        "objectives": [{"target": 0.999}],
    }
    return SLOSpec.model_validate(body | spec)


VARIED = {
    "ratio-good": slo(
        displayName="Checkout succeeds",
        description="Requests without a 5xx.",
        labels={"tier": "1", "team": "payments"},
        indicator={
            "source": "prom",
            "ratio": {"good": 'sum(rate(x{code!~"5.."}[{{.window}}]))', "total": "sum(rate(x[{{.window}}]))"},
        },
        window={"rolling": "28d"},
        alerting={
            "windows": [
                {"severity": "page", "budgetPercent": 2, "long": "1h", "short": "5m"},
                {"severity": "page", "budgetPercent": 5, "long": "6h", "short": "30m"},
                {"severity": "ticket", "budgetPercent": 10, "long": "3d", "short": "6h"},
                # A share whose burn rate has no short decimal form, and a short window that is not long / 12.
                {"severity": "ticket", "budgetPercent": 7.142857, "long": "1d", "short": "10m"},
            ],
            "noData": {"enabled": True},
        },
    ),
    "ratio-bad": slo(
        indicator={
            "source": "prom",
            "ratio": {"bad": "sum(rate(e[{{.window}}]))", "total": "sum(rate(t[{{.window}}]))"},
        }
    ),
    "error-ratio": slo(
        indicator={"source": "prom", "ratio": {"errorRatio": "1 - avg_over_time(up[{{.window}}])"}},
        window={"calendar": "year", "timeZone": "Asia/Tokyo"},
    ),
    "histogram": slo(
        indicator={
            "source": "prom",
            "threshold": {"metric": "http_duration_seconds", "selector": 'job="api"', "op": "lte", "unit": "ms"},
        },
        window={"calendar": "month", "timeZone": "Europe/Berlin"},
        budgetingMethod="Timeslices",
        objectives=[
            {
                "name": "fast",
                "displayName": "99 % under 300 ms",
                "target": 0.99,
                "threshold": 0.3,
                "timeSliceTarget": 0.95,
                "timeSliceWindow": "5m",
            },
            {"name": "bounded", "target": 0.999, "threshold": 1, "timeSliceTarget": 0.9, "timeSliceWindow": "60m"},
        ],
    ),
    "probe": slo(
        indicator={"source": "prom", "probe": {"query": 'probe_success{job="blackbox"}'}},
        window={"rolling": "7d"},
        budgetingMethod="RatioTimeslices",
        objectives=[{"target": 0.99, "timeSliceWindow": "1m"}],
        alerting={"windows": [{"severity": "ticket", "budgetPercent": 20, "long": "1d", "short": "2h"}]},
    ),
    "pushed-probe": slo(indicator={"probe": {}}, window={"calendar": "week"}),
    "pushed-threshold": slo(
        indicator={"threshold": {"op": "gt"}},
        objectives=[{"name": "enough", "target": 0.95, "threshold": 3}],
    ),
    "external": slo(indicator={"source": "datadog", "ratio": {}}, window={"calendar": "quarter"}),
    "external-unnamed": slo(indicator={"source": "pushed", "ratio": {}}),
}


def round_trip(slos: dict[str, SLOSpec], sources: dict[str, DataSourceSpec]) -> config_service.Loaded:
    export = export_openslo(slos, sources, with_secrets=True)
    return config_service.validate([SourceFile(name="export.yaml", content=dump(export.documents))])


def as_relia(spec: SLOSpec | DataSourceSpec) -> dict[str, Any]:
    return type(spec).model_validate(spec.model_dump(mode="json")).model_dump(mode="json", by_alias=True)


def test_importing_the_export_gives_back_the_same_specs() -> None:
    loaded = round_trip(VARIED, SOURCES)
    imported = {(obj.kind, obj.name): obj.normalised() for obj in loaded.objects}
    assert set(imported) == {("SLO", name) for name in VARIED} | {("DataSource", name) for name in SOURCES}
    for name, spec in VARIED.items():
        assert imported[("SLO", name)] == as_relia(spec), name
    for name, source in SOURCES.items():
        assert imported[("DataSource", name)] == as_relia(source), name
    # Only the data source Relia cannot query says so; the round trip itself is quiet.
    assert {warning.name for warning in loaded.warnings} == {"datadog"}


def test_the_demo_organisations_slos_round_trip() -> None:
    original = config_service.validate(read_paths([EXAMPLES]))
    slos = {obj.name: obj.spec for obj in original.objects if obj.kind == "SLO"}
    assert len(slos) >= 5
    export = export_openslo(slos)  # type: ignore[arg-type]
    loaded = config_service.validate([SourceFile(name="export.yaml", content=dump(export.documents))])
    imported = {obj.name: obj.normalised() for obj in loaded.objects}
    for name, spec in slos.items():
        expected = as_relia(spec)  # type: ignore[arg-type]
        if any(name in warning for warning in export.warnings):
            # What the export named as left out is the only difference.
            expected["alerting"] = imported[name]["alerting"]
        assert imported[name] == expected, name


def test_the_export_has_the_shape_openslo_v1_asks_for() -> None:
    export = export_openslo({"ratio-good": VARIED["ratio-good"], "probe": VARIED["probe"]}, SOURCES)
    kinds = [(document["kind"], document["metadata"]["name"]) for document in export.documents]
    assert kinds == [
        ("DataSource", "datadog"),
        ("DataSource", "prom"),
        ("DataSource", "pushed"),
        ("SLO", "probe"),
        ("SLO", "ratio-good"),
    ]
    by_name = {document["metadata"]["name"]: document for document in export.documents}
    ratio_good = by_name["ratio-good"]["spec"]
    assert ratio_good["timeWindow"] == [{"duration": "28d", "isRolling": True}]
    assert ratio_good["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"] == {
        "metricSourceRef": "prom",
        "type": "Prometheus",
        "spec": {"query": 'sum(rate(x{code!~"5.."}[{{.window}}]))'},
    }
    for policy in ratio_good["alertPolicies"]:
        assert len(policy["spec"]["conditions"]) == 1  # OpenSLO v1 allows one condition per policy
        assert policy["spec"]["notificationTargets"][0]["spec"]["target"] == "relia"
        assert len(policy["metadata"]["name"]) <= 63
    page = ratio_good["alertPolicies"][0]["spec"]["conditions"][0]
    assert page["spec"] == {
        "severity": "page",
        "condition": {"kind": "burnrate", "op": "gt", "threshold": 13.44, "lookbackWindow": "1h", "alertAfter": "0m"},
    }
    assert "annotations" not in page["metadata"]  # 5m is 1h / 12: nothing to carry
    probe = by_name["probe"]["spec"]
    assert by_name["probe"]["spec"]["indicator"]["metadata"]["annotations"] == {"relia.dev/indicator": "probe"}
    assert probe["objectives"] == [
        {"displayName": "default", "op": "gte", "value": 1.0, "target": 0.99, "timeSliceWindow": "1m"}
    ]
    assert export.warnings == ["DataSource prom: headers are left out (they may hold credentials)"]


def test_headers_are_exported_only_when_asked_for() -> None:
    without = export_openslo({}, {"prom": SOURCES["prom"]})
    assert "headers" not in without.documents[0]["spec"]["connectionDetails"]
    assert without.warnings == ["DataSource prom: headers are left out (they may hold credentials)"]
    with_them = export_openslo({}, {"prom": SOURCES["prom"]}, with_secrets=True)
    assert with_them.documents[0]["spec"]["connectionDetails"]["headers"] == {"Authorization": "Bearer t"}
    assert with_them.warnings == []


def test_what_openslo_cannot_hold_is_named() -> None:
    special = slo(
        alerting={
            "name": "CheckoutBurn",
            "labels": {"team": "payments"},
            "page": {"enabled": False},
            "noData": {"enabled": True, "after": "10m"},
            "minEvents": 10,
        },
        objectives=[{"name": "same", "displayName": "same", "target": 0.9}],
    )
    export = export_openslo({"special": special})
    [names, alerting] = export.warnings
    assert "display name equal to its name" in names
    for field in (
        "alerting.name",
        "alerting.labels",
        "alerting.minEvents",
        "alerting.page.enabled",
        "alerting.noData.after",
        "alerting.noData.enabled",
    ):
        assert field in alerting


@given(
    percent=st.decimals(min_value="0.01", max_value="100", places=6).map(float),
    long=st.sampled_from(["5m", "1h", "6h", "1d", "3d", "72h", "7d"]),
    period=st.sampled_from([7 * 1440, 28 * 1440, 30 * 1440, 90 * 1440, 365 * 1440]),
)
def test_burn_rate_thresholds_give_back_the_budget_share_exactly(percent: float, long: str, period: int) -> None:
    tier = AlertTierSpec.model_validate({"severity": "page", "budgetPercent": percent, "long": long, "short": "1m"})
    threshold = burn_rate_threshold(tier, period)
    assert budget_percent(exact(threshold), parse_duration(long), period) == percent


def test_a_budget_share_finer_than_twelve_digits_is_named() -> None:
    tiers = [{"severity": "page", "budgetPercent": 100 / 7, "long": "1d", "short": "2h"}]
    export = export_openslo({"fine": slo(alerting={"windows": tiers})})
    assert export.warnings == [
        "SLO fine: tier 1 spends 14.285714285714286 % of the budget, which comes back rounded to 12 significant digits"
    ]


@pytest.mark.parametrize("name", sorted(VARIED))
def test_each_export_validates_on_its_own(name: str) -> None:
    # Data sources the SLO uses are exported with it; one without them still validates (checked at apply).
    loaded = round_trip({name: VARIED[name]}, {})
    [obj] = loaded.objects
    assert obj.name == name
