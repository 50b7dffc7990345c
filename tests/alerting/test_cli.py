"""`relia alerts ...` on the local database: list groups, acknowledge, snooze, resolve; integrations and their
keys; silences."""

from __future__ import annotations

import json
import re

from tests.alerting.support import am_alert, am_message, post


def test_list_ack_snooze_resolve(relia, client, org, intake):
    post(client, intake.key, "alertmanager", am_message([am_alert({"alertname": "HighLatency", "instance": "web-1"})]))

    listed = relia("alerts", "list")
    assert listed.exit_code == 0, listed.output
    assert "HighLatency on web-1" in listed.stdout and "triggered" in listed.stdout
    group = json.loads(relia("alerts", "list", "-o", "json").stdout)[0]["id"]

    acked = relia("alerts", "ack", str(group))
    assert acked.exit_code == 0, acked.output
    assert acked.stdout.strip() == f"Alert group #{group} acknowledged by local-operator."
    snoozed = relia("alerts", "snooze", str(group), "--for", "2h")
    # The CLI's in-process app runs on the real clock.
    assert re.fullmatch(
        rf"Alert group #{group} snoozed until \d{{4}}-\d\d-\d\d \d\d:\d\d UTC\.", snoozed.stdout.strip()
    )
    resolved = relia("alerts", "resolve", str(group))
    assert resolved.stdout.strip() == f"Alert group #{group} resolved by local-operator."
    assert "No alert groups." in relia("alerts", "list").stdout
    assert str(group) in relia("alerts", "list", "--state", "resolved").stdout
    shown = relia("alerts", "show", str(group), "-o", "json")
    assert json.loads(shown.stdout)["alerts"][0]["resolvedBy"] == "local-operator"

    again = relia("alerts", "snooze", str(group))
    assert again.exit_code == 1 and "resolved cannot be snoozed" in again.stderr
    missing = relia("alerts", "ack", "424242")
    assert missing.exit_code == 1 and "Not found (404)" in missing.stderr


def test_integrations_create_list_and_rotate_key(relia, client, org):
    created = relia("alerts", "integrations", "create", "grafana", "--service", "checkout", "--group-by", "alertname")
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert lines[0] == "Integration grafana (checkout). Its key is shown only once:"
    key = lines[1]
    assert len(key) == 32 and f"/api/v1/integrations/{key}/grafana" in created.stdout
    listed = relia("alerts", "integrations", "list")
    assert f"…{key[-4:]}" in listed.stdout and key not in listed.stdout

    rotated = relia("alerts", "integrations", "rotate-key", "grafana", "--grace", "1h")
    new_key = rotated.stdout.splitlines()[1]
    assert new_key != key
    assert post(client, key, "grafana", {"alerts": []}).status_code == 200  # still in its grace period
    assert post(client, new_key, "grafana", {"alerts": []}).status_code == 200


def test_silences_create_list_expire(relia, client, org):
    created = relia(
        "alerts",
        "silences",
        "create",
        "--service",
        "checkout",
        "-m",
        'alertname="Noisy"',
        "--for",
        "30m",
        "--comment",
        "known issue",
        "--name",
        "noisy",
    )
    assert created.exit_code == 0, created.output
    assert re.fullmatch(r"Silence noisy is active until \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", created.stdout.strip())
    assert "known issue" in relia("alerts", "silences", "list", "--state", "active").stdout
    assert relia("alerts", "silences", "expire", "noisy").stdout.strip() == "Silence noisy ended."
    assert json.loads(relia("alerts", "silences", "list", "-o", "json").stdout)[0]["state"] == "expired"
