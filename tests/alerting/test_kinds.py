"""Config as code for alerting: Integration (without its key), RoutingRule and Silence apply, export and apply
again unchanged; references are checked; a configured integration gets its key through the API only."""

from __future__ import annotations

from datetime import timedelta

import yaml

from tests.alerting.support import AM_GOALERT, API, payload, post
from tests.config.support import EXAMPLES, apply_ok, changed, example_files
from tests.config.support import post as config_post


def _alerting_files() -> dict[str, str]:
    files = example_files()
    return {name: files[name] for name in ("users.yaml", "teams.yaml", "services.yaml", "alerting.yaml")}


def test_the_examples_apply_export_and_apply_again_unchanged(client, org):
    admin = org.headers("root:admin")
    applied = apply_ok(client, admin, _alerting_files())
    created = [(kind, name) for action, kind, name in changed(applied) if kind in ("Integration", "RoutingRule")]
    assert sorted(created) == [
        ("Integration", "grafana-storefront"),
        ("Integration", "payments-legacy-monitor"),
        ("Integration", "prometheus-production"),
        ("RoutingRule", "production-checkout"),
        ("RoutingRule", "production-databases"),
        ("RoutingRule", "production-payments"),
        ("RoutingRule", "production-search"),
    ]
    again = apply_ok(client, admin, _alerting_files())
    assert changed(again) == []

    exported = client.get(f"{API}/config/export", headers=admin)
    assert exported.status_code == 200, exported.text
    documents = exported.json()["documents"]
    assert [doc["metadata"]["name"] for doc in documents["Integration"]] == [
        "grafana-storefront",
        "payments-legacy-monitor",
        "prometheus-production",
    ]
    assert documents["Integration"][1]["spec"] == {
        "description": "The payment provider's monitor, which speaks PagerDuty Events v2 (routing_key = the key).",
        "service": "payments-api",
    }  # defaults left out, and no key

    integration = client.get(f"{API}/integrations/prometheus-production", headers=admin).json()
    assert integration["key"]["hint"] is None  # config never carries a key
    assert integration["autoResolveAfter"] == "12h"
    rotated = client.post(f"{API}/integrations/prometheus-production/rotate-key", headers=admin).json()
    assert post(client, rotated["secret"], "alertmanager", payload(AM_GOALERT)).status_code == 200
    # Re-applying the file leaves the key alone.
    apply_ok(client, admin, _alerting_files())
    assert post(client, rotated["secret"], "alertmanager", payload(AM_GOALERT)).status_code == 200


def test_a_rule_naming_an_unknown_integration_or_service_is_refused_with_its_line(client, org):
    files = _alerting_files()
    files["alerting.yaml"] += (
        "---\napiVersion: relia.dev/v1\nkind: RoutingRule\nmetadata:\n  name: lost\nspec:\n"
        "  integration: nowhere\n  service: checkout\n"
    )
    response = config_post(client, "apply", org.headers("root:admin"), files)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(
        error["path"] == "spec.integration" and "Integration 'nowhere'" in error["message"] for error in errors
    ), errors


def test_silences_as_code_and_their_validation(client, org, clock):
    start = clock.now()
    silence = {
        "apiVersion": "relia.dev/v1",
        "kind": "Silence",
        "metadata": {"name": "db-upgrade"},
        "spec": {
            "service": "checkout",
            "startsAt": start.isoformat(),
            "endsAt": (start + timedelta(hours=2)).isoformat(),
            "comment": "PostgreSQL 17 upgrade",
        },
    }
    admin = org.headers("root:admin")
    apply_ok(client, admin, {"silence.yaml": yaml.safe_dump(silence)})
    assert changed(apply_ok(client, admin, {"silence.yaml": yaml.safe_dump(silence)})) == []
    listed = client.get(f"{API}/silences", params={"state": "active"}, headers=admin).json()
    assert [(item["name"], item["createdBy"], item["service"]) for item in listed] == [
        ("db-upgrade", "root", "checkout")
    ]

    everything = {**silence, "metadata": {"name": "all"}, "spec": {**silence["spec"], "service": None}}
    response = config_post(client, "apply", admin, {"bad.yaml": yaml.safe_dump(everything)})
    assert response.status_code == 422
    assert "a silence of everything is not allowed" in response.text


def test_examples_file_is_valid_on_its_own():
    text = (EXAMPLES / "alerting.yaml").read_text(encoding="utf-8")
    kinds = [document["kind"] for document in yaml.safe_load_all(text)]
    assert kinds.count("Integration") == 3 and kinds.count("RoutingRule") == 4
    assert all("key" not in document["spec"] for document in yaml.safe_load_all(text))
