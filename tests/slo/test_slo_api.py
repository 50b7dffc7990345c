"""The SLO API: CRUD with ownership and optimistic concurrency, pushed events with idempotency and
validation that changes nothing on error, status, history, backtest and budget adjustments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from relia.slo.evaluator import Evaluator
from relia.slo.models import IngestBatch, Rollup
from tests.slo.support import slo_body

URL = "/api/v1/slos"


def rollups(db) -> list[tuple]:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return session.execute(
            select(Rollup.objective_id, Rollup.minute, Rollup.good, Rollup.total).order_by(Rollup.minute)
        ).all()


@pytest.fixture
def slo(client, org):  # type: ignore[no-untyped-def]
    response = client.post(URL, headers=org.headers("alice:write"), json=slo_body())
    assert response.status_code == 201, response.text
    return response.json()


def test_create_read_replace_delete(client, org, slo):
    assert slo["service"] == "checkout" and slo["objectives"][0]["state"] == "pending"
    response = client.get(f"{URL}/checkout-availability", headers=org.headers("carol:write"))
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    spec = {key: value for key, value in slo_body().items() if key != "name"}
    spec["objectives"] = [{"target": 0.995}]
    stale = client.put(
        f"{URL}/checkout-availability", headers={**org.headers("bob:write"), "If-Match": '"7"'}, json=spec
    )
    assert stale.status_code == 412
    replaced = client.put(
        f"{URL}/checkout-availability", headers={**org.headers("bob:write"), "If-Match": '"1"'}, json=spec
    )
    assert replaced.status_code == 200 and replaced.json()["spec"]["objectives"][0]["target"] == 0.995
    assert replaced.headers["etag"] == '"2"'
    assert client.delete(f"{URL}/checkout-availability", headers=org.headers("alice:write")).status_code == 204
    assert client.get(f"{URL}/checkout-availability", headers=org.headers("alice:read")).status_code == 404


def test_only_the_owning_team_changes_an_slo(client, org, slo):
    spec = {key: value for key, value in slo_body().items() if key != "name"}
    assert client.put(f"{URL}/checkout-availability", headers=org.headers("carol:write"), json=spec).status_code == 403
    assert client.put(f"{URL}/checkout-availability", headers=org.headers("alice:read"), json=spec).status_code == 403
    assert client.post(URL, headers=org.headers("carol:write"), json=slo_body("other")).status_code == 403
    assert client.post(URL, headers=org.headers("root:admin"), json=slo_body("other")).status_code == 201
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"service": "nope"}, "service"),
        ({"window": {"rolling": "30d", "calendar": "month"}}, "body.window"),
        ({"window": {"rolling": "1m"}}, "body.window"),
        ({"window": {"calendar": "fortnight"}}, "body.window.calendar"),
        ({"objectives": [{"target": 1.5}]}, "body.objectives.0.target"),
        ({"objectives": []}, "body.objectives"),
        ({"budgetingMethod": "Timeslices"}, "body"),
        ({"indicator": {"ratio": {"good": "up", "total": "x"}}}, "body"),
        ({"indicator": {"source": "missing", "ratio": {"good": "up", "total": "x"}}}, "indicator.source"),
        ({"indicator": {"ratio": {}, "probe": {}}}, "body.indicator"),
        ({"labels": {"bad-label": "x"}}, "body.labels"),
        ({"unexpected": 1}, "body.unexpected"),
    ],
)
def test_bad_definitions_are_refused_with_the_field(client, org, change, path):
    response = client.post(URL, headers=org.headers("alice:write"), json={**slo_body(), **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(error["path"].startswith(path) for error in response.json()["errors"]), response.json()
    assert client.get(URL, headers=org.headers("alice:read")).json()["items"] == []


def test_pushed_points_and_events_land_in_minutes(client, org, slo, clock, db):
    minute = clock.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    body = {
        "points": [
            {"timestamp": minute.isoformat(), "good": 90, "total": 100},
            {"timestamp": (minute + timedelta(seconds=30)).isoformat(), "bad": 5, "total": 50},
        ],
        "events": [
            {"timestamp": (minute + timedelta(minutes=1)).isoformat(), "ok": True},
            {"timestamp": (minute + timedelta(minutes=1, seconds=5)).isoformat(), "ok": False},
        ],
    }
    response = client.post(f"{URL}/checkout-availability/events", headers=org.headers("bob:write"), json=body)
    assert response.json() == {"accepted": 4, "minutes": 2, "duplicate": False}
    assert [(good, total) for _, _, good, total in rollups(db)] == [(135.0, 150.0), (1.0, 2.0)]


def test_a_repeated_batch_changes_nothing(client, org, slo, clock, db):
    body = {
        "idempotencyKey": "batch-1",
        "points": [{"timestamp": (clock.now() - timedelta(minutes=1)).isoformat(), "good": 9, "total": 10}],
    }
    first = client.post(f"{URL}/checkout-availability/events", headers=org.headers("bob:write"), json=body)
    again = client.post(f"{URL}/checkout-availability/events", headers=org.headers("bob:write"), json=body)
    assert first.json()["duplicate"] is False and again.json() == {"accepted": 0, "minutes": 0, "duplicate": True}
    assert [(good, total) for _, _, good, total in rollups(db)] == [(9.0, 10.0)]
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(IngestBatch)) == 1


@pytest.mark.parametrize(
    ("point", "status", "path"),
    [
        ({"offset": timedelta(hours=1), "good": 1, "total": 1}, 422, "points.1.timestamp"),
        ({"offset": -timedelta(days=40), "good": 1, "total": 1}, 422, "points.1.timestamp"),
        ({"offset": timedelta(0), "good": -1, "total": 1}, 422, "body.points.1.good"),
        ({"offset": timedelta(0), "good": 5, "total": 3}, 422, "body.points.1"),
        ({"offset": timedelta(0), "good": 1, "bad": 0, "total": 1}, 422, "body.points.1"),
        ({"offset": timedelta(0), "total": 1}, 422, "body.points.1"),
    ],
)
def test_bad_points_refuse_the_whole_batch(client, org, slo, clock, db, point, status, path):
    point = dict(point)
    offset = point.pop("offset")
    good_point = {"timestamp": clock.now().isoformat(), "good": 1, "total": 1}
    bad_point = {"timestamp": (clock.now() + offset).isoformat(), **point}
    response = client.post(
        f"{URL}/checkout-availability/events",
        headers=org.headers("bob:write"),
        json={"points": [good_point, bad_point]},
    )
    assert response.status_code == status, response.text
    assert any(error["path"] == path for error in response.json()["errors"]), response.json()
    assert rollups(db) == []


def test_events_for_unknown_slos_and_foreign_teams_are_refused(client, org, slo, clock):
    body = {"points": [{"timestamp": clock.now().isoformat(), "good": 1, "total": 1}]}
    assert client.post(f"{URL}/nope/events", headers=org.headers("bob:write"), json=body).status_code == 404
    assert (
        client.post(f"{URL}/checkout-availability/events", headers=org.headers("carol:write"), json=body).status_code
        == 403
    )
    assert (
        client.post(
            f"{URL}/checkout-availability/events", headers=org.headers("bob:write"), json={"points": []}
        ).status_code
        == 422
    )
    oversized = {"points": [{"timestamp": clock.now().isoformat(), "good": 1, "total": 1}] * 10_001}
    assert client.post(
        f"{URL}/checkout-availability/events", headers=org.headers("bob:write"), json=oversized
    ).status_code in (413, 422)


def test_threshold_slo_counts_values_per_objective(client, org, clock, db):
    body = slo_body(
        "checkout-latency",
        indicator={"threshold": {"op": "lte", "unit": "s"}},
        objectives=[
            {"name": "fast", "target": 0.99, "threshold": 0.3},
            {"name": "ok", "target": 0.999, "threshold": 1.0},
        ],
    )
    assert client.post(URL, headers=org.headers("alice:write"), json=body).status_code == 201
    at = (clock.now() - timedelta(minutes=2)).isoformat()
    values = [0.1, 0.25, 0.5, 0.9, 2.0]
    response = client.post(
        f"{URL}/checkout-latency/events",
        headers=org.headers("alice:write"),
        json={"events": [{"timestamp": at, "value": value} for value in values]},
    )
    assert response.status_code == 200
    assert sorted((good, total) for _, _, good, total in rollups(db)) == [(2.0, 5.0), (4.0, 5.0)]
    refused = client.post(
        f"{URL}/checkout-latency/events",
        headers=org.headers("alice:write"),
        json={"events": [{"timestamp": at, "ok": True}]},
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == "events.0.value"


def test_status_history_and_backtest(client, org, slo, clock, db):
    start = clock.now()
    clock.advance(timedelta(hours=2))
    points = [
        {"timestamp": (start + timedelta(minutes=m)).isoformat(), "good": 0 if 60 <= m < 65 else 100, "total": 100}
        for m in range(120)
    ]
    assert (
        client.post(
            f"{URL}/checkout-availability/events", headers=org.headers("bob:write"), json={"points": points}
        ).status_code
        == 200
    )
    Evaluator().tick(db, clock)
    objective = client.get(f"{URL}/checkout-availability", headers=org.headers("alice:read")).json()["objectives"][0]
    assert objective["state"] == "exhausted"
    # The last minute is counted once it is a minute old (grace for pushes of the current minute).
    assert objective["detail"]["events"] == {"good": 11400.0, "total": 11900.0}
    assert set(objective["detail"]["burnRates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    history = client.get(
        f"{URL}/checkout-availability/history",
        headers=org.headers("alice:read"),
        params={"start": start.isoformat(), "end": clock.now().isoformat(), "step": 30},
    ).json()
    assert [point["budgetRemaining"] for point in history["points"]][:2] == [1.0, 1.0]
    assert history["points"][-1]["budgetRemaining"] == pytest.approx(1 - (500 / 12000) / 0.001)
    backtest = client.get(
        f"{URL}/checkout-availability/backtest",
        headers=org.headers("alice:read"),
        params={"start": start.isoformat(), "end": clock.now().isoformat()},
    ).json()
    fired = [event for event in backtest["events"] if event["kind"] == "fired"]
    assert fired[0]["severity"] == "page" and fired[0]["tier"] == "page-quick"
    bad_range = client.get(
        f"{URL}/checkout-availability/history",
        headers=org.headers("alice:read"),
        params={"start": clock.now().isoformat(), "end": start.isoformat()},
    )
    assert bad_range.status_code == 422 and bad_range.json()["errors"][0]["path"] == "query.end"


def test_budget_adjustments_are_audited_and_owned(client, org, slo, clock):
    body = {
        "start": (clock.now() - timedelta(hours=1)).isoformat(),
        "end": clock.now().isoformat(),
        "reason": "database failover rehearsal",
    }
    assert (
        client.post(
            f"{URL}/checkout-availability/adjustments", headers=org.headers("carol:write"), json=body
        ).status_code
        == 403
    )
    created = client.post(f"{URL}/checkout-availability/adjustments", headers=org.headers("bob:write"), json=body)
    assert created.status_code == 201
    backwards = client.post(
        f"{URL}/checkout-availability/adjustments",
        headers=org.headers("bob:write"),
        json={**body, "end": body["start"], "start": body["end"]},
    )
    assert backwards.status_code == 422
    adjustment_id = created.json()["id"]
    audit = client.get("/api/v1/audit", headers=org.headers("root:admin"), params={"kind": "BudgetAdjustment"}).json()[
        "items"
    ]
    assert [entry["actor"] for entry in audit] == ["bob"]
    assert (
        client.delete(
            f"{URL}/checkout-availability/adjustments/{adjustment_id}", headers=org.headers("bob:write")
        ).status_code
        == 204
    )
    listed = client.get(
        f"{URL}/checkout-availability/adjustments",
        headers=org.headers("bob:read") if "bob:read" in org.tokens else org.headers("alice:read"),
    ).json()
    assert listed[0]["deletedAt"] is not None


def test_data_sources_are_for_administrators_and_hide_secrets(client, org):
    body = {"type": "prometheus", "url": "http://127.0.0.1:9090", "headers": {"Authorization": "Bearer s3cret"}}
    assert client.put("/api/v1/data-sources/prom", headers=org.headers("alice:write"), json=body).status_code == 403
    created = client.put("/api/v1/data-sources/prom", headers=org.headers("root:admin"), json=body)
    assert created.status_code == 201
    seen = client.get("/api/v1/data-sources/prom", headers=org.headers("alice:read")).json()
    assert seen["spec"]["headers"] == {"Authorization": "********"}
    admin_view = client.get("/api/v1/data-sources/prom", headers=org.headers("root:admin")).json()
    assert admin_view["spec"]["headers"] == {"Authorization": "Bearer s3cret"}
    bad = client.put("/api/v1/data-sources/prom", headers=org.headers("root:admin"), json={"type": "prometheus"})
    assert bad.status_code == 422
