"""Relia observing itself: /healthz, /readyz, /metrics, request ids."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from relia.core import migrate
from relia.core.models import WorkerHeartbeat
from relia.worker.main import EngineLoop
from tests.api.support import API, assert_problem, ok


def test_healthz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_waits_for_a_worker_heartbeat(client, db, clock) -> None:
    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    body = waiting.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["ok"] is True
    assert body["checks"]["migrations"]["current"] == migrate.head_revision()
    assert body["checks"]["worker"] == {"ok": False, "lastSeen": None}

    EngineLoop(db=db, clock=clock, interval=5, worker_id="test-worker").tick_once()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["worker"] == {"ok": True, "lastSeen": "2026-03-02T09:00:00+00:00"}


def test_readyz_notices_a_worker_that_stopped(client, db, clock, settings) -> None:
    now = clock.now()
    with db.transaction() as session:
        session.add(
            WorkerHeartbeat(worker_id="w1", hostname="h", pid=1, started_at=now, last_seen_at=now, last_tick_at=now)
        )
    assert client.get("/readyz").status_code == 200
    clock.advance(settings.worker_stale_after_seconds)
    assert client.get("/readyz").status_code == 200
    clock.advance(1)
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["worker"]["ok"] is False


def test_readyz_refuses_an_unmigrated_database(client, db, clock) -> None:
    EngineLoop(db=db, clock=clock, interval=5, worker_id="test-worker").tick_once()
    assert client.get("/readyz").status_code == 200
    head = migrate.head_revision()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'an-older-revision'"))
    try:
        behind = client.get("/readyz")
        assert behind.status_code == 503
        migrations = behind.json()["checks"]["migrations"]
        assert migrations == {"ok": False, "current": "an-older-revision", "head": head}
    finally:  # the PostgreSQL database is shared by the tests of this process
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert client.get("/readyz").status_code == 200


def test_metrics_need_a_token(client, org) -> None:
    assert_problem(client.get("/metrics"), 401)
    response = client.get("/metrics", headers=org.headers("alice:read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def _samples(metrics: str, name: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith(name)]


def test_metrics_label_requests_by_route_template(client, org) -> None:
    reader = org.headers("alice:read")
    client.get(f"{API}/services/checkout", headers=reader)
    client.get(f"{API}/services/ranker", headers=reader)
    client.get(f"{API}/services/ghost", headers=reader)
    client.get(f"{API}/teams/payments", headers=reader)
    client.get(f"{API}/config/kinds", headers=reader)
    client.get(f"{API}/no/such/route", headers=reader)
    client.get("/healthz")
    metrics = client.get("/metrics", headers=reader).text

    counts = {}
    for line in _samples(metrics, "relia_http_request_duration_seconds_count"):
        labels, value = re.match(r"\w+\{(.*)\} (\S+)", line).groups()
        counts[tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels)))] = float(value)

    def count(method: str, route: str, status: str) -> float:
        return counts.get((("method", method), ("route", route), ("status", status)), 0.0)

    assert count("GET", "/api/v1/services/{slug}", "200") == 2
    assert count("GET", "/api/v1/services/{slug}", "404") == 1
    assert count("GET", "/api/v1/teams/{slug}", "200") == 1
    assert count("GET", "/api/v1/config/kinds", "200") == 1
    assert count("GET", "/healthz", "200") == 1
    assert count("GET", "unmatched", "404") == 1
    routes = {dict(key)["route"] for key in counts}
    assert not any(name in route for route in routes for name in ("checkout", "ranker", "ghost", "payments"))
    assert "relia_http_request_duration_seconds_bucket{" in metrics


def test_metrics_expose_the_worker(client, org, db, clock) -> None:
    reader = org.headers("alice:read")
    metrics = client.get("/metrics", headers=reader).text
    assert re.search(r"^relia_worker_queue_depth \d", metrics, re.MULTILINE), metrics
    assert "# TYPE relia_worker_tick_lag_seconds gauge" in metrics

    EngineLoop(db=db, clock=clock, interval=5, worker_id="w-metrics").tick_once()
    clock.advance(7)
    metrics = client.get("/metrics", headers=reader).text
    assert re.search(r'^relia_worker_tick_lag_seconds\{worker="w-metrics"\} \d', metrics, re.MULTILINE)
    assert re.search(r'^relia_worker_last_tick_age_seconds\{worker="w-metrics"\} 7\.0$', metrics, re.MULTILINE)
    assert re.search(r"^relia_timers_due 0\.0$", metrics, re.MULTILINE)


def test_request_id_is_echoed(client, org) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "trace-abc.123_x"})
    assert response.headers["x-request-id"] == "trace-abc.123_x"
    denied = client.get(f"{API}/services", headers={"X-Request-ID": "denied-1"})
    assert denied.status_code == 401 and denied.headers["x-request-id"] == "denied-1"


@pytest.mark.parametrize("given", [None, b"", b"has spaces", b"x" * 65, b"semi;colon", "üñí".encode()])
def test_request_id_is_generated_when_missing_or_unusable(client, given: bytes | None) -> None:
    headers = {"X-Request-ID": given} if given is not None else {}
    response = client.get("/healthz", headers=headers)
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz", headers=headers).headers["x-request-id"] != generated


def test_request_id_on_rejections_and_in_the_audit(client, org, settings) -> None:
    big = client.post(
        f"{API}/services",
        content=b"x" * (settings.max_request_bytes + 1),
        headers={**org.headers("root:admin"), "Content-Type": "application/json", "X-Request-ID": "big-1"},
    )
    assert big.status_code == 413 and big.headers["x-request-id"] == "big-1"
    changed = client.patch(
        f"{API}/services/checkout",
        json={"tier": 1},
        headers={**org.headers("alice:write"), "X-Request-ID": "req-42"},
    )
    ok(changed)
    entry = ok(client.get(f"{API}/audit", params={"limit": 1}, headers=org.headers("root:admin")))["items"][0]
    assert (entry["objectKey"], entry["requestId"]) == ("checkout", "req-42")
