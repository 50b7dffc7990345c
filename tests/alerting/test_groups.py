"""Routing, grouping windows, silences with their record, and the life of a group on the simulated clock:
acknowledge, snooze and its end, resolve, auto-resolve after a quiet period; each transition announced once,
by hook and on the timeline, and audited when a person made it."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from relia.alerting import groups
from relia.alerting.models import Alert, AlertGroup, AlertSuppression
from relia.core import timers
from relia.core.models import AuditEntry, TimelineEvent
from tests.alerting.support import (
    API,
    am_alert,
    am_message,
    groups_of,
    make_integration,
    make_rule,
    make_silence,
    post,
)


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every hook the alerting domain emits, in order (the subscribers still run)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = groups.hooks.emit

    def record(session, event, **payload):  # type: ignore[no-untyped-def]
        seen.append((event, payload))
        original(session, event, **payload)

    monkeypatch.setattr(groups.hooks, "emit", record)
    return seen


def _fire(client, key, *instances: str, alertname: str = "HighLatency", **labels: str):  # type: ignore[no-untyped-def]
    alerts = [am_alert({"alertname": alertname, "instance": instance, **labels}) for instance in instances]
    response = post(client, key, "alertmanager", am_message(alerts, group_key=f"{{}}:{{alertname={alertname!r}}}"))
    assert response.status_code == 200, response.text
    return response.json()


def _count(db, model, *where) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# ------------------------------------------------------------------------------------------------ routing


def test_routing_rules_pick_the_service_and_the_default_catches_the_rest(client, org, intake, db, clock):
    make_rule(db, clock, "search-alerts", integration="prometheus", matchers=['team="search"'], service="ranker")
    make_rule(db, clock, "everything-critical", matchers=['severity="critical"'], service="ranker", order=5)

    _fire(client, intake.key, "web-1", team="search")
    _fire(client, intake.key, "web-2", alertname="Other", team="payments")
    _fire(client, intake.key, "web-3", alertname="Third", severity="critical")

    with db.reader() as session:
        routed = {alert.labels["instance"]: alert.routed_by for alert in session.scalars(select(Alert))}
    assert routed == {"web-1": "search-alerts", "web-2": None, "web-3": "everything-critical"}
    services = sorted((group["service"], group["title"]) for group in groups_of(client, org.headers("root:read")))
    assert services == [
        ("checkout", "Other on web-2"),
        ("ranker", "HighLatency on web-1"),
        ("ranker", "Third on web-3"),
    ]


# ----------------------------------------------------------------------------------------------- grouping


def test_alerts_join_an_open_group_within_its_window_then_a_new_one_opens(client, org, intake, clock, announced):
    _fire(client, intake.key, "web-1")
    clock.advance(timedelta(minutes=59))
    _fire(client, intake.key, "web-2")  # same Alertmanager group, within the hour: joins
    clock.advance(timedelta(minutes=2))
    _fire(client, intake.key, "web-3")  # the group is now older than its window: a new group

    found = groups_of(client, org.headers("alice:read"))
    assert [(group["alertCount"], group["state"]) for group in found] == [(1, "triggered"), (2, "triggered")]
    opened = [payload for event, payload in announced if event == "alert.group.opened"]
    assert [payload["group_id"] for payload in opened] == [found[1]["id"], found[0]["id"]]
    assert all(payload["service_id"] and payload["at"] and payload["title"] for payload in opened)


def test_group_by_labels_groups_across_integrations(client, org, db, clock):
    by_cluster = {"groupBy": ["cluster"]}
    first = make_integration(db, clock, "prom-a", "checkout", **by_cluster)
    second = make_integration(db, clock, "prom-b", "checkout", **by_cluster)

    _fire(client, first, "web-1", cluster="eu")
    _fire(client, second, "db-1", alertname="DiskFull", cluster="eu")
    _fire(client, second, "db-2", alertname="DiskFull", cluster="us")

    found = groups_of(client, org.headers("alice:read"))
    assert sorted((group["groupLabels"]["cluster"], group["alertCount"]) for group in found) == [("eu", 2), ("us", 1)]


# ----------------------------------------------------------------------------------------------- silences


def test_a_silence_suppresses_with_a_record_and_its_alerts_join_a_group_when_it_ends(
    client, org, intake, db, clock, announced
):
    now = clock.now()
    make_silence(
        db,
        clock,
        "checkout-maintenance",
        service="checkout",
        startsAt=now.isoformat(),
        endsAt=(now + timedelta(hours=1)).isoformat(),
        comment="database upgrade",
    )

    result = _fire(client, intake.key, "web-1", "web-2")

    assert result["counts"] == {"suppressed": 2}
    assert groups_of(client, org.headers("alice:read")) == []
    silence = client.get(f"{API}/silences/checkout-maintenance", headers=org.headers("alice:read")).json()
    assert silence["state"] == "active" and silence["suppressed"] == 2
    assert {item["summary"] for item in silence["suppressedAlerts"]} == {"HighLatency on web-1", "HighLatency on web-2"}
    # A repeat while silenced stays quiet; web-2 resolves while silenced.
    clock.advance(timedelta(minutes=30))
    web1 = am_alert({"alertname": "HighLatency", "instance": "web-1"})
    web2 = am_alert({"alertname": "HighLatency", "instance": "web-2"}, status="resolved")
    counts = post(
        client, intake.key, "alertmanager", am_message([web1, web2], group_key="{}:{alertname='HighLatency'}")
    )
    assert counts.json()["counts"] == {"suppressed": 1, "resolved": 1}
    assert not [event for event, _ in announced]

    clock.advance(timedelta(minutes=31))
    assert timers.run_due(db, clock) >= 1  # the silence's end

    found = groups_of(client, org.headers("alice:read"))
    assert [(group["alertCount"], group["firingCount"]) for group in found] == [(1, 1)]
    assert [event for event, _ in announced] == ["alert.group.opened"]
    record = client.get(f"{API}/silences/checkout-maintenance", headers=org.headers("alice:read")).json()
    outcomes = {
        item["summary"]: (item["outcome"], item["releasedAt"] is not None) for item in record["suppressedAlerts"]
    }
    assert outcomes == {"HighLatency on web-1": ("grouped", True), "HighLatency on web-2": ("resolved", True)}
    assert record["state"] == "expired"


def test_matchers_silence_only_matching_alerts_and_expiring_releases_at_once(client, org, intake, db, clock):
    response = client.post(
        f"{API}/silences",
        json={"matchers": ['instance=~"web-[12]"'], "service": "checkout", "duration": "2h", "comment": "noisy"},
        headers=org.headers("alice:write"),
    )
    assert response.status_code == 201, response.text
    name = response.json()["name"]

    assert _fire(client, intake.key, "web-1", "web-3")["counts"] == {"suppressed": 1, "created": 1}

    expired = client.post(f"{API}/silences/{name}/expire", headers=org.headers("alice:write"))
    assert expired.status_code == 200 and expired.json()["state"] == "expired"
    found = groups_of(client, org.headers("alice:read"))
    assert sum(group["alertCount"] for group in found) == 2
    assert _count(db, AlertSuppression, AlertSuppression.outcome == "grouped") == 1


def test_silences_of_everything_are_for_administrators(client, org):
    body = {"matchers": ['alertname="X"'], "duration": "1h", "comment": "why"}
    assert client.post(f"{API}/silences", json=body, headers=org.headers("alice:write")).status_code == 403
    assert client.post(f"{API}/silences", json=body, headers=org.headers("root:admin")).status_code == 201
    other_team = {**body, "service": "ranker"}
    assert client.post(f"{API}/silences", json=other_team, headers=org.headers("alice:write")).status_code == 403
    nothing = {"duration": "1h", "comment": "everything"}
    assert client.post(f"{API}/silences", json=nothing, headers=org.headers("root:admin")).status_code == 422


# ---------------------------------------------------------------------------------------- human actions


def test_acknowledge_snooze_wake_resolve_each_announced_timelined_and_audited(
    client, org, intake, db, clock, announced
):
    _fire(client, intake.key, "web-1", "web-2")
    group_id = groups_of(client, org.headers("alice:read"))[0]["id"]
    headers = org.headers("bob:write")

    acked = client.post(f"{API}/alert-groups/{group_id}/acknowledge", headers=headers)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledgedBy"]) == ("acknowledged", "bob")
    again = client.post(f"{API}/alert-groups/{group_id}/acknowledge", headers=headers)
    assert again.status_code == 200  # twice is fine, and announced once

    snoozed = client.post(f"{API}/alert-groups/{group_id}/snooze", json={"duration": "30m"}, headers=headers)
    assert snoozed.status_code == 200, snoozed.text
    until = clock.now() + timedelta(minutes=30)
    assert snoozed.json()["snoozedUntil"] == until.isoformat().replace("+00:00", "Z")

    clock.advance(timedelta(minutes=29))
    timers.run_due(db, clock)
    assert groups_of(client, org.headers("alice:read"))[0]["state"] == "snoozed"
    clock.advance(timedelta(minutes=1))
    timers.run_due(db, clock)
    assert groups_of(client, org.headers("alice:read"))[0]["state"] == "triggered"

    resolved = client.post(f"{API}/alert-groups/{group_id}/resolve", headers=org.headers("carol:write"))
    assert resolved.status_code == 200
    body = resolved.json()
    assert (body["state"], body["resolvedBy"], body["resolution"]) == ("resolved", "carol", "manual")
    assert {alert["status"] for alert in body["alerts"]} == {"resolved"}
    assert client.post(f"{API}/alert-groups/{group_id}/acknowledge", headers=headers).status_code == 409

    events = [event for event, _ in announced]
    assert events == [
        "alert.group.opened",
        "alert.group.acknowledged",
        "alert.group.snoozed",
        "alert.group.reopened",
        "alert.group.resolved",
    ]
    payloads = dict(announced)
    with db.reader() as session:
        bob = session.scalar(select(AuditEntry.actor_user_id).where(AuditEntry.actor == "bob"))
        carol = session.scalar(select(AuditEntry.actor_user_id).where(AuditEntry.actor == "carol"))
        assert payloads["alert.group.acknowledged"]["user_id"] == bob
        assert payloads["alert.group.resolved"]["user_id"] == carol
        assert payloads["alert.group.snoozed"]["until"] == until
        timeline = session.scalars(select(TimelineEvent.type).order_by(TimelineEvent.id)).all()
        assert [event for event in timeline if event.startswith("alert.group.")] == events
        audits = session.execute(
            select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.object_kind == "AlertGroup")
        ).all()
        assert [tuple(row) for row in audits] == [("acknowledge", "bob"), ("snooze", "bob"), ("resolve", "carol")]
    # The next report of a resolved alert opens a new group.
    _fire(client, intake.key, "web-1")
    assert [group["state"] for group in groups_of(client, org.headers("alice:read"))] == ["triggered", "resolved"]


def test_a_read_token_cannot_act_and_bad_snoozes_are_refused(client, org, intake):
    _fire(client, intake.key, "web-1")
    group_id = groups_of(client, org.headers("alice:read"))[0]["id"]
    assert (
        client.post(f"{API}/alert-groups/{group_id}/acknowledge", headers=org.headers("alice:read")).status_code == 403
    )
    for body in ({}, {"duration": "8d"}, {"duration": "1h", "until": "2030-01-01T00:00:00Z"}):
        response = client.post(f"{API}/alert-groups/{group_id}/snooze", json=body, headers=org.headers("bob:write"))
        assert response.status_code == 422, (body, response.text)
    assert client.post(f"{API}/alert-groups/999999/resolve", headers=org.headers("bob:write")).status_code == 404


# ------------------------------------------------------------------------------------------- auto-resolve


def test_a_quiet_group_resolves_itself_after_its_quiet_period(client, org, db, clock, announced):
    key = make_integration(db, clock, "heartbeat", "checkout", autoResolveAfter="30m")
    _fire(client, key, "web-1")
    clock.advance(timedelta(minutes=20))
    _fire(client, key, "web-1")  # a repeat: the quiet period starts again
    clock.advance(timedelta(minutes=20))
    timers.run_due(db, clock)
    assert groups_of(client, org.headers("alice:read"))[0]["state"] == "triggered"

    clock.advance(timedelta(minutes=10))
    timers.run_due(db, clock)

    group = groups_of(client, org.headers("alice:read"))[0]
    assert (group["state"], group["resolution"], group["firingCount"]) == ("resolved", "auto", 0)
    assert announced[-1][0] == "alert.group.resolved" and announced[-1][1]["user_id"] is None
    with db.reader() as session:
        assert session.scalar(select(Alert.resolved_by)) == "auto"
    assert _count(db, timers.Timer) == 0


# -------------------------------------------------------------------------------------------- concurrency


def test_two_alertmanager_peers_delivering_at_once_open_one_group(client, org, intake, db, app):
    """An HA pair sends the same notification at the same moment: one group, one alert per fingerprint."""
    from starlette.testclient import TestClient

    body = am_message([am_alert({"alertname": "Race", "instance": f"web-{n}"}) for n in range(20)])
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def peer() -> None:
        with TestClient(app) as own:
            barrier.wait()
            answers.append(post(own, intake.key, "alertmanager", body).status_code)

    threads = [threading.Thread(target=peer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [200] * 4
    assert _count(db, Alert) == 20 and _count(db, AlertGroup) == 1
    with db.reader() as session:
        assert session.scalar(select(func.sum(Alert.occurrences))) == 80
        group = session.scalars(select(AlertGroup)).one()
        assert (group.alert_count, group.firing_count) == (20, 20)
