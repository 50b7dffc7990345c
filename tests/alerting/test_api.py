"""The management API: integrations and their keys (shown once, hashed, rotatable), routing rules, silences,
alerts and groups listed and paged, with the owning team's rights and an audit entry for every change."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from relia.alerting.models import Integration
from relia.core.models import AuditEntry
from tests.alerting.support import AM_GOALERT, API, am_alert, am_message, payload, post
from tests.api.support import assert_problem, ok


def _create(client, org, name="prometheus", service="checkout", headers="alice:write", **spec):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/integrations", json={"name": name, "service": service, **spec}, headers=org.headers(headers)
    )


def test_an_integration_key_is_shown_once_and_only_its_hash_is_stored(client, org, db):
    created = ok(_create(client, org, description="Prometheus of production"), 201)

    key = created["secret"]
    assert len(key) == 32 and created["key"]["hint"] == key[-4:]
    assert created["urls"]["alertmanager"] == f"http://testserver/api/v1/integrations/{key}/alertmanager"
    assert created["urls"]["pagerduty"] == "http://testserver/v2/enqueue"
    shown = ok(client.get(f"{API}/integrations/prometheus", headers=org.headers("carol:write")))
    assert "secret" not in shown and key not in str(shown)
    assert shown["endpoints"]["alertmanager"] == "/api/v1/integrations/{key}/alertmanager"
    with db.reader() as session:
        row = session.scalars(select(Integration)).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        audits = session.scalars(select(AuditEntry).where(AuditEntry.object_kind == "Integration")).all()
        assert key not in str([(entry.before, entry.after) for entry in audits])
    assert post(client, key, "alertmanager", payload(AM_GOALERT)).status_code == 200


def test_rotating_a_key_stops_the_old_one_at_once_or_after_its_grace(client, org, clock):
    first = ok(_create(client, org), 201)["secret"]

    second = ok(client.post(f"{API}/integrations/prometheus/rotate-key", headers=org.headers("alice:write")))["secret"]
    assert post(client, first, "alertmanager", payload(AM_GOALERT)).status_code == 404
    assert post(client, second, "alertmanager", payload(AM_GOALERT)).status_code == 200

    rotated = ok(
        client.post(
            f"{API}/integrations/prometheus/rotate-key", json={"grace": "1h"}, headers=org.headers("alice:write")
        )
    )
    third = rotated["secret"]
    assert rotated["key"]["previousKeyValidUntil"] is not None
    assert post(client, second, "alertmanager", payload(AM_GOALERT)).status_code == 200  # in grace
    assert post(client, third, "alertmanager", payload(AM_GOALERT)).status_code == 200
    clock.advance(timedelta(hours=1))
    assert post(client, second, "alertmanager", payload(AM_GOALERT)).status_code == 404
    assert post(client, third, "alertmanager", payload(AM_GOALERT)).status_code == 200
    refused = client.post(
        f"{API}/integrations/prometheus/rotate-key", json={"grace": "8d"}, headers=org.headers("alice:write")
    )
    assert_problem(refused, 422)


def test_integration_rights_follow_the_default_services_team(client, org):
    assert _create(client, org, headers="carol:write").status_code == 403  # carol is in search, not payments
    assert _create(client, org, headers="alice:read").status_code == 403
    assert _create(client, org, service="nowhere").status_code == 422
    ok(_create(client, org), 201)
    assert_problem(_create(client, org), 409)
    moved = client.put(f"{API}/integrations/prometheus", json={"service": "ranker"}, headers=org.headers("alice:write"))
    assert moved.status_code == 403  # alice may not give it to search's service
    assert (
        client.put(
            f"{API}/integrations/prometheus", json={"service": "ranker"}, headers=org.headers("root:admin")
        ).status_code
        == 200
    )


def test_put_creates_with_a_key_updates_with_if_match_and_delete_refuses_while_rules_use_it(client, org):
    created = client.put(
        f"{API}/integrations/grafana",
        json={"service": "checkout", "groupBy": ["alertname"]},
        headers=org.headers("alice:write"),
    )
    assert created.status_code == 201 and "secret" in created.json()
    etag = created.headers["etag"]
    changed = client.put(
        f"{API}/integrations/grafana",
        json={"service": "checkout", "groupWindow": "30m"},
        headers={**org.headers("alice:write"), "If-Match": etag},
    )
    assert changed.status_code == 200 and "secret" not in changed.json()
    assert changed.json()["groupWindow"] == "30m" and changed.json()["groupBy"] is None
    stale = client.put(
        f"{API}/integrations/grafana",
        json={"service": "checkout"},
        headers={**org.headers("alice:write"), "If-Match": etag},
    )
    assert_problem(stale, 412)
    rule = {"name": "db", "integration": "grafana", "matchers": ['component="db"'], "service": "checkout"}
    assert client.post(f"{API}/routing-rules", json=rule, headers=org.headers("alice:write")).status_code == 201
    assert_problem(client.delete(f"{API}/integrations/grafana", headers=org.headers("alice:write")), 409)
    assert client.delete(f"{API}/routing-rules/db", headers=org.headers("alice:write")).status_code == 204
    assert client.delete(f"{API}/integrations/grafana", headers=org.headers("alice:write")).status_code == 204
    assert client.get(f"{API}/integrations/grafana", headers=org.headers("alice:read")).status_code == 404


def test_routing_rules_crud_rights_and_validation(client, org):
    key = ok(_create(client, org), 201)["secret"]
    headers = org.headers("alice:write")
    rule = {
        "name": "to-ranker",
        "integration": "prometheus",
        "order": 10,
        "matchers": ["team = search"],
        "service": "ranker",
    }
    created = ok(client.post(f"{API}/routing-rules", json=rule, headers=headers), 201)
    assert created["matchers"] == ['team="search"']  # written canonically
    assert_problem(client.post(f"{API}/routing-rules", json=rule, headers=headers), 409)
    bad = {**rule, "name": "bad", "matchers": ['team=~"("']}
    assert_problem(client.post(f"{API}/routing-rules", json=bad, headers=headers), 422, path="body.matchers.0")
    everywhere = {**rule, "name": "everywhere", "integration": None}
    assert client.post(f"{API}/routing-rules", json=everywhere, headers=headers).status_code == 403
    assert client.post(f"{API}/routing-rules", json=everywhere, headers=org.headers("root:admin")).status_code == 201
    assert (
        client.post(f"{API}/routing-rules", json={**rule, "name": "x"}, headers=org.headers("carol:write")).status_code
        == 403
    )
    listed = ok(client.get(f"{API}/routing-rules", headers=org.headers("bob:write")))
    assert [item["name"] for item in listed] == ["to-ranker", "everywhere"]

    alert = am_alert({"alertname": "Slow", "team": "search", "instance": "a"})
    post(client, key, "alertmanager", am_message([alert]))
    alerts = ok(client.get(f"{API}/alerts", headers=org.headers("bob:write")))["items"]
    assert (alerts[0]["service"], alerts[0]["routedBy"]) == ("ranker", "to-ranker")


def test_lists_filter_and_page_with_cursors(client, org):
    key = ok(_create(client, org), 201)["secret"]
    for n in range(5):
        post(
            client,
            key,
            "alertmanager",
            am_message([am_alert({"alertname": f"A{n}", "instance": "x"})], group_key=f"g{n}"),
        )
    headers = org.headers("bob:write")
    first = ok(client.get(f"{API}/alert-groups", params={"limit": 2}, headers=headers))
    assert len(first["items"]) == 2 and first["nextCursor"]
    rest = ok(client.get(f"{API}/alert-groups", params={"limit": 10, "cursor": first["nextCursor"]}, headers=headers))
    ids = [group["id"] for group in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    group_id = ids[0]
    assert ok(client.post(f"{API}/alert-groups/{group_id}/resolve", headers=headers))["state"] == "resolved"
    assert len(ok(client.get(f"{API}/alert-groups", headers=headers))["items"]) == 4  # open by default
    assert [
        g["id"] for g in ok(client.get(f"{API}/alert-groups", params={"state": "resolved"}, headers=headers))["items"]
    ] == [group_id]
    assert ok(client.get(f"{API}/alert-groups", params={"service": "ranker"}, headers=headers))["items"] == []
    alerts = ok(client.get(f"{API}/alerts", params={"group": group_id}, headers=headers))["items"]
    assert [alert["status"] for alert in alerts] == ["resolved"]
    one = ok(client.get(f"{API}/alerts/{alerts[0]['id']}", headers=headers))
    assert one["resolvedBy"] == "bob" and one["integration"] == "prometheus"
    assert ok(client.get(f"{API}/alerts", params={"status": "firing"}, headers=headers))["items"].__len__() == 4
    assert_problem(client.get(f"{API}/alert-groups", params={"cursor": "not-ours"}, headers=headers), 400)
    assert client.get(f"{API}/alert-groups").status_code == 401


def test_silences_api(client, org, clock):
    headers = org.headers("alice:write")
    starts = clock.now() + timedelta(hours=1)
    spec = {
        "service": "checkout",
        "matchers": ['alertname="Deploy"'],
        "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(hours=2)).isoformat(),
        "comment": "release window",
    }
    created = client.put(f"{API}/silences/release-window", json=spec, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "pending" and created.json()["createdBy"] == "alice"
    assert [s["name"] for s in ok(client.get(f"{API}/silences", params={"state": "pending"}, headers=headers))] == [
        "release-window"
    ]
    backwards = {**spec, "endsAt": (starts - timedelta(minutes=1)).isoformat()}
    assert_problem(
        client.put(f"{API}/silences/release-window", json=backwards, headers=headers), 422, path="body.endsAt"
    )
    assert client.delete(f"{API}/silences/release-window", headers=headers).status_code == 204
    assert client.get(f"{API}/silences/release-window", headers=headers).status_code == 404
