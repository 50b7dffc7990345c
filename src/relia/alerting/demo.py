"""A few live alert groups for the demo organisation (examples/alerting.yaml must be applied first): a checkout
error-rate alert still triggered, a database replication lag acknowledged by the platform manager, a search
latency alert snoozed, and a payment-provider incident that came and went, each as its real sender would
have reported it, through the same intake as a real request.

``seed(db, now)`` adds them once (it does nothing when there are alert groups already) and returns how many
groups it opened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relia.alerting import groups, intake, rules, service
from relia.alerting.models import AlertGroup
from relia.catalog.models import User
from relia.core.auth import Principal, Scope
from relia.core.db import Database

PROMETHEUS = "prometheus-production"
GRAFANA = "grafana-storefront"
PAGERDUTY = "payments-legacy-monitor"


def _alertmanager(group_key: str, alerts: list[dict[str, Any]], *, started: datetime) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group_key,
        "status": "firing",
        "receiver": "relia",
        "externalURL": "https://alertmanager.acme.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": started.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://prometheus.acme.example/graph?g0.expr=" + labels["alertname"],
                "fingerprint": rules.label_fingerprint(labels),
            }
            for labels, annotations in ((alert["labels"], alert["annotations"]) for alert in alerts)
        ],
    }


def _person(session: Session, username: str) -> Principal | None:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        return None
    return Principal(name=user.username, user_id=user.id, is_admin=user.is_admin, scope=Scope.write)


def seed(db: Database, now: datetime) -> int:
    """Open the demo's alert groups once; 0 when there are groups already or the demo integrations are absent."""
    with db.transaction() as session:
        if session.scalar(select(func.count()).select_from(AlertGroup)):
            return 0
        config = service.load_config(session, generation=-1, now=now)
        by_name = {integration.name: integration for integration in config.integrations.values()}
        if not {PROMETHEUS, GRAFANA, PAGERDUTY} <= set(by_name):
            return 0

        def deliver(name: str, message: dict[str, Any], at: datetime, source: str = "alertmanager") -> list[int]:
            batch = rules.normalise_alertmanager(message, source=source)  # type: ignore[arg-type]
            report = intake.ingest(
                session, config=config, origin=intake.origin_for(by_name[name], source), batch=batch, now=at
            )
            return sorted({alert.group_id for _, _, alert in report.outcomes if alert is not None and alert.group_id})

        checkout = deliver(
            PROMETHEUS,
            _alertmanager(
                '{}/{service="checkout"}:{alertname="CheckoutHighErrorRate"}',
                [
                    {
                        "labels": {
                            "alertname": "CheckoutHighErrorRate",
                            "service": "checkout",
                            "pod": pod,
                            "severity": "critical",
                            "team": "payments",
                        },
                        "annotations": {
                            "summary": f"Checkout 5xx above 2 % on {pod}",
                            "runbook_url": "https://wiki.acme.example/runbooks/checkout",
                        },
                    }
                    for pod in ("checkout-7d9f-abcde", "checkout-7d9f-fghij")
                ],
                started=now - timedelta(minutes=12),
            ),
            now - timedelta(minutes=11),
        )
        database = deliver(
            PROMETHEUS,
            _alertmanager(
                '{}/{job=~"postgres.*"}:{alertname="PostgresReplicationLag"}',
                [
                    {
                        "labels": {
                            "alertname": "PostgresReplicationLag",
                            "job": "postgres-exporter",
                            "instance": "orders-db-replica-2",
                            "severity": "warning",
                        },
                        "annotations": {"summary": "Replica orders-db-replica-2 is 95 s behind the primary"},
                    }
                ],
                started=now - timedelta(minutes=48),
            ),
            now - timedelta(minutes=47),
        )
        search = deliver(
            GRAFANA,
            {
                "version": "1",
                "groupKey": '{}:{alertname="SearchLatencyHigh"}',
                "status": "firing",
                "externalURL": "https://grafana.acme.example/",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "SearchLatencyHigh", "component": "search", "severity": "warning"},
                        "annotations": {"summary": "Search p99 latency 1.8 s (objective 0.8 s)"},
                        "startsAt": (now - timedelta(minutes=25)).isoformat(),
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "/alerting/grafana/search-latency/view",
                        "dashboardURL": "/d/search",
                        "fingerprint": "5e4a1c2b3d4e5f60",
                    }
                ],
            },
            now - timedelta(minutes=24),
            source="grafana",
        )
        provider = intake.ingest(
            session,
            config=config,
            origin=intake.origin_for(by_name[PAGERDUTY], "pagerduty"),
            batch=rules.Batch(
                source="pagerduty",
                alerts=[
                    rules.IncomingAlert(
                        dedup_key="provider/authorisations",
                        status="firing",
                        summary="Card authorisations failing at the payment provider (EU region)",
                        severity="critical",
                        labels={"source": "psp-monitor", "severity": "critical", "component": "authorisations"},
                    )
                ],
            ),
            now=now - timedelta(hours=3),
        )
        intake.ingest(
            session,
            config=config,
            origin=intake.origin_for(by_name[PAGERDUTY], "pagerduty"),
            batch=rules.Batch(
                source="pagerduty",
                alerts=[rules.IncomingAlert(dedup_key="provider/authorisations", status="resolved", summary="")],
            ),
            now=now - timedelta(hours=2, minutes=35),
        )
        opened = len(checkout) + len(database) + len(search) + len(provider.outcomes)
        ada, freya = _person(session, "ada"), _person(session, "freya")
        if ada is not None and database:
            groups.acknowledge(session, actor=ada, group_id=database[0], now=now - timedelta(minutes=40))
        if freya is not None and search:
            groups.snooze(
                session, actor=freya, group_id=search[0], now=now - timedelta(minutes=20), duration=timedelta(hours=2)
            )
        return opened
