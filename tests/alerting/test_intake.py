"""The intake endpoints through HTTP: every conformance payload accepted, each alert's own status, dedup and
idempotency under at-least-once delivery, PagerDuty's answers, wrong keys, oversized and invalid bodies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from relia.alerting.intake import PAGERDUTY_BODY_LIMIT, IntakeGate
from relia.alerting.models import Alert, AlertGroup
from tests.alerting.support import (
    AM_GOALERT,
    AM_ONCALL,
    API,
    GRAFANA_12,
    GRAFANA_DOCS,
    PD_202,
    PD_ACK,
    PD_RESOLVE,
    PD_TRIGGER,
    am_alert,
    am_message,
    groups_of,
    make_integration,
    payload,
    post,
)
from tests.api.support import assert_problem


def _count(db, model, *where) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --------------------------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("name", [AM_GOALERT, AM_ONCALL])
def test_alertmanager_conformance_payloads_open_one_group_with_every_alert(client, org, intake, db, name):
    body = payload(name)
    # Fields of newer Alertmanagers (0.32: notification_reason, 0.34: routeLabels) are tolerated.
    body["notification_reason"] = "first notification"
    body["routeLabels"] = {"team": "payments"}

    response = post(client, intake.key, "alertmanager", body)

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["received"] == 2 and result["counts"] == {"created": 2}
    assert {item["dedupKey"] for item in result["alerts"]} == {alert["fingerprint"] for alert in body["alerts"]}
    found = groups_of(client, org.headers("alice:read"))
    assert len(found) == 1
    group = found[0]
    assert (group["service"], group["state"], group["firingCount"], group["alertCount"]) == (
        "checkout",
        "triggered",
        2,
        2,
    )
    assert group["integration"] == "prometheus" and group["source"] == "alertmanager"
    detail = client.get(f"{API}/alert-groups/{group['id']}", headers=org.headers("alice:read")).json()
    summaries = sorted(alert["summary"] for alert in detail["alerts"])
    expected = sorted(alert["annotations"].get("summary") or alert["annotations"]["title"] for alert in body["alerts"])
    assert summaries == expected
    assert all(alert["severity"] == "critical" for alert in detail["alerts"])


def test_grafana_docs_example_is_accepted_with_its_links_and_values(client, org, db, clock):
    key = make_integration(db, clock, "grafana", "checkout")
    body = payload(GRAFANA_DOCS)

    response = post(client, key, "grafana", body)

    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"created": 2}
    with db.reader() as session:
        alerts = session.scalars(select(Alert).order_by(Alert.id)).all()
        assert [alert.dedup_key for alert in alerts] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
        first = alerts[0]
        assert first.source == "grafana"
        assert first.summary == "This alert was triggered for zone us-1"
        assert {link["text"]: link["href"] for link in first.links} == {
            "Source": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "Runbook": "https://myrunbook.com/runbook/1234",
            "Silence in Grafana": body["alerts"][0]["silenceURL"],
        }
        assert first.details["values"] == {"B": 44.23943737541908, "C": 1}
        # Grafana's "2021-10-12T09:51:03.157076+02:00" is kept as the same instant, in UTC.
        assert first.starts_at.isoformat() == "2021-10-12T07:51:03.157076+00:00"


def test_grafana_12_test_alert_relative_link_is_resolved_against_external_url(client, org, db, clock):
    key = make_integration(db, clock, "grafana", "checkout")

    response = post(client, key, "grafana", payload(GRAFANA_12))

    assert response.status_code == 200, response.text
    with db.reader() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.dedup_key == "c4edaaf9f9f839b0"
        links = {link["text"]: link["href"] for link in alert.links}
        assert links["Source"] == "https://grafana.example.com/?orgId=1"
        assert links["Dashboard"] == "https://grafana.example.com/d/dashboard_uid"
        assert alert.details["valueString"] == "[ var='B' value=22 ]"
        assert alert.details["orgId"] == 1
        group = session.scalars(select(AlertGroup)).one()
        assert group.source_url == "https://grafana.example.com/"


def test_pagerduty_trigger_acknowledge_resolve_answer_as_pagerduty_does(client, org, intake, db):
    trigger, acknowledge, resolve = payload(PD_TRIGGER), payload(PD_ACK), payload(PD_RESOLVE)
    for event in (trigger, acknowledge, resolve):
        event["routing_key"] = intake.key
    acknowledge["dedup_key"] = resolve["dedup_key"] = trigger["dedup_key"]
    reference = payload(PD_202)

    triggered = client.post("/v2/enqueue", json=trigger)

    assert triggered.status_code == 202, triggered.text
    assert triggered.headers["content-type"] == "application/json"
    assert list(triggered.json()) == list(reference)  # the same keys, in PagerDuty's order
    assert triggered.json() == {**reference, "dedup_key": "srv01/mysql"}
    with db.reader() as session:
        alert = session.scalars(select(Alert)).one()
        assert (alert.summary, alert.severity, alert.source) == (trigger["payload"]["summary"], "critical", "pagerduty")
        assert alert.labels == {
            "source": "prod-datapipe03.example.com",
            "severity": "critical",
            "component": "mysql",
            "group": "prod-datapipe",
            "class": "disk",
        }
        # PagerDuty's own example writes +0000 without a colon: read leniently.
        assert alert.starts_at.isoformat() == "2015-07-17T08:42:58.315000+00:00"
        assert alert.details["custom_details"] == {"free space": "1%", "ping time": "1500ms", "load avg": 0.75}
        assert [link["text"] for link in alert.links] == [
            "Sample Monitoring Service",
            "An example link.",
            "An example link with an image",
        ]

    acknowledged = client.post("/v2/enqueue", json=acknowledge)
    assert acknowledged.status_code == 202
    assert acknowledged.json() == {**reference, "dedup_key": "srv01/mysql"}
    group = groups_of(client, org.headers("alice:read"))[0]
    assert (group["state"], group["acknowledgedBy"]) == ("acknowledged", "integration:prometheus")

    resolved = client.post("/v2/enqueue", json=resolve)
    assert resolved.status_code == 202
    group = groups_of(client, org.headers("alice:read"))[0]
    assert (group["state"], group["resolution"], group["firingCount"]) == ("resolved", "source", 0)

    # After resolve, acknowledge and resolve are dropped (still 202), and a trigger opens a new alert.
    assert client.post("/v2/enqueue", json=acknowledge).status_code == 202
    assert client.post("/v2/enqueue", json=trigger).status_code == 202
    assert _count(db, Alert) == 2
    assert [g["state"] for g in groups_of(client, org.headers("alice:read"))] == ["triggered", "resolved"]


def test_the_documented_acknowledge_and_resolve_examples_are_accepted_as_they_are(client, org, intake):
    for name in (PD_ACK, PD_RESOLVE):
        event = payload(name)
        event["routing_key"] = intake.key
        answer = client.post("/v2/enqueue", json=event)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"status": "success", "message": "Event processed", "dedup_key": "dedupkeyhere"}


def test_a_pagerduty_trigger_without_dedup_key_gets_a_new_one(client, org, intake, db):
    event = payload(PD_TRIGGER)
    event["routing_key"] = intake.key
    del event["dedup_key"]

    first = client.post("/v2/enqueue", json=event).json()["dedup_key"]
    second = client.post("/v2/enqueue", json=event).json()["dedup_key"]

    assert len(first) == 32 and first != second
    assert _count(db, Alert) == 2


# ------------------------------------------------------------------------------------ dedup, idempotency


def test_the_same_alertmanager_batch_twice_stores_each_alert_once(client, org, intake, db):
    body = payload(AM_GOALERT)

    first = post(client, intake.key, "alertmanager", body)
    again = post(client, intake.key, "alertmanager", body)

    assert first.json()["counts"] == {"created": 2}
    assert again.json()["counts"] == {"updated": 2}
    assert _count(db, Alert) == 2 and _count(db, AlertGroup) == 1
    with db.reader() as session:
        assert {alert.occurrences for alert in session.scalars(select(Alert))} == {2}


def test_each_alerts_own_status_decides_and_the_group_resolves_with_its_last_alert(client, org, intake, db):
    web1 = am_alert({"alertname": "HighLatency", "instance": "web-1"})
    web2 = am_alert({"alertname": "HighLatency", "instance": "web-2"})
    post(client, intake.key, "alertmanager", am_message([web1, web2]))

    # The message's status is "firing" (one still fires), but web-1's own status is "resolved".
    resolved1 = {**web1, "status": "resolved", "endsAt": "2026-03-02T08:59:00Z"}
    partly = post(client, intake.key, "alertmanager", am_message([resolved1, web2]))

    assert partly.json()["counts"] == {"resolved": 1, "updated": 1}
    group = groups_of(client, org.headers("alice:read"))[0]
    assert (group["state"], group["firingCount"], group["alertCount"]) == ("triggered", 1, 2)

    resolved2 = {**web2, "status": "resolved", "endsAt": "2026-03-02T09:00:00Z"}
    post(client, intake.key, "alertmanager", am_message([resolved1, resolved2]))

    group = groups_of(client, org.headers("alice:read"))[0]
    assert (group["state"], group["resolution"], group["resolvedBy"]) == ("resolved", "source", "source")
    with db.reader() as session:
        ends = {alert.labels["instance"]: alert.ends_at.isoformat() for alert in session.scalars(select(Alert))}
    assert ends == {"web-1": "2026-03-02T08:59:00+00:00", "web-2": "2026-03-02T09:00:00+00:00"}


def test_resolved_batches_repeated_and_ha_duplicates_change_nothing(client, org, intake, db):
    web1 = am_alert({"alertname": "HighLatency", "instance": "web-1"})
    firing = am_message([web1])
    resolved = am_message([{**web1, "status": "resolved", "endsAt": "2026-03-02T09:00:00Z"}])
    # Two Alertmanager peers each deliver every notification (at least once), and not in order.
    for body in (firing, firing, resolved, resolved, firing):
        assert post(client, intake.key, "alertmanager", body).status_code == 200

    assert _count(db, Alert) == 1 and _count(db, AlertGroup) == 1
    group = groups_of(client, org.headers("alice:read"))[0]
    assert group["state"] == "resolved"

    # The same labels firing again later (a new startsAt) is a new alert, in a new group.
    again = am_message([{**web1, "startsAt": "2026-03-02T09:30:00Z"}])
    assert post(client, intake.key, "alertmanager", again).json()["counts"] == {"created": 1}
    assert _count(db, Alert) == 2
    assert [g["state"] for g in groups_of(client, org.headers("alice:read"))] == ["triggered", "resolved"]


def test_a_missing_fingerprint_is_computed_as_alertmanager_does(client, org, intake, db):
    body = payload(AM_GOALERT)
    fingerprints = [alert.pop("fingerprint") for alert in body["alerts"]]

    post(client, intake.key, "alertmanager", body)

    with db.reader() as session:
        assert sorted(session.scalars(select(Alert.dedup_key))) == sorted(fingerprints)


def test_truncated_alerts_are_reported_back(client, org, intake):
    body = payload(AM_GOALERT)
    body["truncatedAlerts"] = 7
    assert post(client, intake.key, "alertmanager", body).json()["truncated"] == 7


# ------------------------------------------------------------------------------------------ generic webhook


def test_generic_webhook_fires_acknowledges_and_resolves(client, org, intake, db):
    event = {
        "summary": "Queue depth above 10k",
        "severity": "warning",
        "source": "queue-1",
        "labels": {"queue": "payments"},
        "links": [{"href": "https://grafana.example/d/queues", "text": "Queues"}, {"href": "javascript:alert(1)"}],
        "details": {"depth": 12000},
        "unknownField": "ignored",
    }
    fired = post(client, intake.key, "generic", event)
    assert fired.status_code == 200, fired.text
    key = fired.json()["alerts"][0]["dedupKey"]
    assert key.startswith("auto:")
    # The same event again is the same alert (its key is a hash of source, summary and labels).
    assert post(client, intake.key, "generic", event).json()["counts"] == {"updated": 1}
    with db.reader() as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.labels == {"queue": "payments", "source": "queue-1"}
        assert alert.links == [{"href": "https://grafana.example/d/queues", "text": "Queues"}]  # no javascript:
        assert alert.details == {"depth": 12000, "source": "queue-1"}

    acked = post(client, intake.key, "generic", {"dedupKey": key, "status": "acknowledged"})
    assert acked.json()["counts"] == {"acknowledged": 1}
    batch = post(client, intake.key, "generic", {"alerts": [{"dedupKey": key, "status": "resolved"}]})
    assert batch.json()["counts"] == {"resolved": 1}
    assert groups_of(client, org.headers("alice:read"))[0]["state"] == "resolved"


def test_generic_webhook_groups_by_its_group_field(client, org, intake):
    events = [{"summary": f"disk {n} full", "group": "storage", "dedupKey": f"disk-{n}"} for n in range(3)]
    response = post(client, intake.key, "generic", {"alerts": events})
    assert response.json()["counts"] == {"created": 3}
    found = groups_of(client, org.headers("alice:read"))
    assert len(found) == 1 and found[0]["alertCount"] == 3


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"status": "firing"}, "body"),
        ({"summary": "x", "severity": "dire"}, "body.severity"),
        ({"status": "resolved"}, "body"),
        ({"alerts": []}, "body.alerts"),
    ],
)
def test_generic_webhook_refuses_invalid_events_naming_the_field(client, org, intake, body, path):
    assert_problem(post(client, intake.key, "generic", body), 422, path=path)


# -------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("source", ["alertmanager", "grafana", "generic"])
def test_a_wrong_key_is_a_404_that_says_nothing(client, org, intake, db, clock, source):
    unknown = post(client, "0" * 32, source, payload(AM_GOALERT))
    with db.transaction() as session:
        from relia.alerting import service
        from tests.factories import OPERATOR

        integration = service.get_integration(session, "prometheus")
        spec = service.integration_spec(integration)
        service.upsert_integration(
            session,
            actor=OPERATOR,
            name="prometheus",
            spec=service.IntegrationSpec.model_validate({**spec, "enabled": False}),
            now=clock.now(),
        )
    disabled = post(client, intake.key, source, payload(AM_GOALERT))
    no_route = client.post(f"{API}/integrations/{'0' * 32}/nothing-here", json={})

    for response in (unknown, disabled):
        body = assert_problem(response, 404)
        assert body["detail"] == "Not Found"
        assert set(body) == {"type", "title", "status", "detail", "instance"}
        assert intake.key not in response.text and "0" * 32 not in response.text
    assert no_route.status_code in (404, 405)
    assert _count(db, Alert) == 0


def test_pagerduty_wrong_routing_key_is_a_404_and_invalid_events_are_400_shaped_like_pagerduty(client, org, intake):
    event = payload(PD_TRIGGER)
    wrong = client.post("/v2/enqueue", json=event)  # the example's routing key is not ours
    assert wrong.status_code == 404
    assert wrong.json() == {"status": "not found", "message": "Not found", "errors": ["Not found"]}

    event["routing_key"] = intake.key
    cases = {
        "event_action": ({**event, "event_action": "explode"}, "'event_action' is invalid"),
        "summary": ({**event, "payload": {**event["payload"], "summary": ""}}, "'payload.summary' is missing or blank"),
        "long summary": (
            {**event, "payload": {**event["payload"], "summary": "x" * 1025}},
            "'payload.summary' is too long (maximum is 1024 characters)",
        ),
        "severity": (
            {**event, "payload": {**event["payload"], "severity": "dire"}},
            "'payload.severity' is invalid",
        ),
        "timestamp": ({**event, "payload": {**event["payload"], "timestamp": "yesterday"}}, "'payload.timestamp'"),
        "dedup": ({"routing_key": intake.key, "event_action": "resolve"}, "'dedup_key' is missing or blank"),
        "routing key": ({**event, "routing_key": ""}, "'routing_key' is missing or blank"),
    }
    for name, (body, message) in cases.items():
        answer = client.post("/v2/enqueue", json=body)
        assert answer.status_code == 400, (name, answer.text)
        got = answer.json()
        assert got["status"] == "invalid event" and got["message"] == "Event object is invalid", name
        assert any(error.startswith(message) for error in got["errors"]), (name, got)

    not_json = client.post("/v2/enqueue", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["status"] == "invalid request"


def test_oversized_bodies_are_refused_with_413(client, org, intake):
    event = payload(PD_TRIGGER)
    event["routing_key"] = intake.key
    event["payload"]["custom_details"] = {"blob": "x" * PAGERDUTY_BODY_LIMIT}
    too_big = client.post("/v2/enqueue", json=event)
    assert too_big.status_code == 413
    assert too_big.json()["status"] == "payload too large"

    limit = client.app.state.settings.max_request_bytes * 8
    huge = json.dumps({"alerts": [], "padding": "x" * limit})
    refused = client.post(f"{API}/integrations/{intake.key}/alertmanager", content=huge)
    assert_problem(refused, 413)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"version": "4"}, "body.alerts"),
        ({"alerts": [{"status": "pending", "labels": {}}]}, "body.alerts.0.status"),
        ({"alerts": [{"status": "firing", "labels": ["not", "a", "map"]}]}, "body.alerts.0.labels"),
    ],
)
def test_invalid_alertmanager_messages_are_refused_naming_the_field(client, org, intake, body, path):
    assert_problem(post(client, intake.key, "alertmanager", body), 422, path=path)


def test_malformed_json_is_a_400(client, org, intake):
    response = client.post(f"{API}/integrations/{intake.key}/alertmanager", content=b"{oops")
    assert_problem(response, 400)


def test_nul_characters_are_stored_replaced_not_refused(client, org, intake, db):
    alert = am_alert({"alertname": "Weird\x00Name", "instance": "web-1"}, summary="nul \x00 inside")
    assert post(client, intake.key, "alertmanager", am_message([alert])).status_code == 200
    with db.reader() as session:
        stored = session.scalars(select(Alert)).one()
        assert stored.summary == "nul \ufffd inside" and stored.labels["alertname"] == "Weird\ufffdName"


# ---------------------------------------------------------------------------------------------- overload


def test_overload_answers_503_with_retry_after(client, org, intake, app):
    gate = IntakeGate(limit=0)
    app.state.alert_intake_gate = gate

    response = post(client, intake.key, "alertmanager", payload(AM_GOALERT))
    pagerduty = client.post("/v2/enqueue", json={**payload(PD_TRIGGER), "routing_key": intake.key})

    for answer in (response, pagerduty):
        assert_problem(answer, 503)
        assert answer.headers["retry-after"] == "1"
    assert gate.refused == 2 and gate.in_flight == 0


def test_a_2xx_means_stored_and_a_failure_stores_nothing(client, org, intake, db, monkeypatch):
    from relia.alerting import groups

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(groups.Announcements, "flush", broken)
    with pytest.raises(RuntimeError):
        post(client, intake.key, "alertmanager", payload(AM_GOALERT))
    assert _count(db, Alert) == 0 and _count(db, AlertGroup) == 0


def test_the_key_never_reaches_the_request_log(client, org, intake, captured_logs):
    post(client, intake.key, "alertmanager", payload(AM_GOALERT))
    post(client, "f" * 32, "alertmanager", payload(AM_GOALERT))
    # The server's own log lines (the test client logs the URL it requested, on its side).
    logged = repr(captured_logs.events)
    assert "/api/v1/integrations/[key]/alertmanager" in logged
    assert intake.key not in logged and "f" * 32 not in logged


def test_an_accepted_message_wakes_the_worker_once_per_burst(client, app, intake):
    queue = app.state.queue
    before = queue.pending_count()
    for index in range(3):  # well within the waker's debounce interval
        response = post(
            client,
            intake.key,
            "alertmanager",
            am_message([am_alert({"alertname": f"Wake{index}", "service": "checkout"})]),
        )
        assert response.status_code == 200, response.text
    # One relia.tick_now message: the worker ticks at once instead of at its next scheduled tick.
    assert queue.pending_count() - before == 1
