"""Helpers for the alerting tests: conformance payloads, integrations with keys, and posting to the intake."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from relia.alerting import service
from relia.alerting.schemas import IntegrationSpec, RoutingRuleSpec, SilenceSpec
from relia.core.clock import SimulatedClock
from relia.core.db import Database
from tests.factories import OPERATOR

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance" / "alerts"
API = "/api/v1"


@cache
def _raw(name: str) -> str:
    return (CONFORMANCE / f"{name}.json").read_text(encoding="utf-8")


def payload(name: str) -> Any:
    """A fresh copy of a conformance payload (tests may change it)."""
    return copy.deepcopy(json.loads(_raw(name)))


AM_GOALERT = "alertmanager_v4_firing_goalert_example"
AM_ONCALL = "alertmanager_v4_firing_oncall_demo"
GRAFANA_DOCS = "grafana_alerting_v1_docs_example"
GRAFANA_12 = "grafana12_webhook_test_alert_keep_fixture"
PD_TRIGGER = "pagerduty_events_v2_trigger_openapi_example"
PD_ACK = "pagerduty_events_v2_acknowledge_docs_example"
PD_RESOLVE = "pagerduty_events_v2_resolve_docs_example"
PD_202 = "pagerduty_events_v2_response_202_openapi_example"


def make_integration(db: Database, clock: SimulatedClock, name: str, service_slug: str, **spec: Any) -> str:
    """An integration with a key; returns the key."""
    with db.transaction() as session:
        _, _, key = service.upsert_integration(
            session,
            actor=OPERATOR,
            name=name,
            spec=IntegrationSpec.model_validate({"service": service_slug, **spec}),
            now=clock.now(),
        )
    assert key is not None
    return key


def make_rule(db: Database, clock: SimulatedClock, name: str, **spec: Any) -> None:
    with db.transaction() as session:
        service.upsert_routing_rule(
            session, actor=OPERATOR, name=name, spec=RoutingRuleSpec.model_validate(spec), now=clock.now()
        )


def make_silence(db: Database, clock: SimulatedClock, name: str, **spec: Any) -> None:
    with db.transaction() as session:
        service.upsert_silence(
            session, actor=OPERATOR, name=name, spec=SilenceSpec.model_validate(spec), now=clock.now()
        )


def am_alert(
    labels: dict[str, str],
    *,
    status: str = "firing",
    starts_at: str = "2026-03-02T08:55:00Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    summary: str | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    from relia.alerting.rules import label_fingerprint

    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": summary or f"{labels.get('alertname', 'Alert')} on {labels.get('instance', '?')}"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
        "fingerprint": fingerprint or label_fingerprint(labels),
    }


def am_message(alerts: list[dict[str, Any]], *, group_key: str = '{}:{alertname="HighLatency"}') -> dict[str, Any]:
    statuses = {alert["status"] for alert in alerts}
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if "firing" in statuses else "resolved",
        "receiver": "relia",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    }


def post(client: Any, key: str, source: str, body: Any) -> Any:
    return client.post(f"{API}/integrations/{key}/{source}", json=body)


def groups_of(client: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/alert-groups", params={"state": "all", "limit": 500, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]
