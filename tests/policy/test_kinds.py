"""BudgetPolicy as code: validated with the file and field, planned, applied all or nothing, exported back to
the same documents, pruned."""

from __future__ import annotations

import yaml

from tests.config.support import post
from tests.policy.support import API

POLICIES = """\
apiVersion: relia.dev/v1
kind: BudgetPolicy
metadata: {name: checkout-freeze}
spec:
  scope: {service: checkout}
  conditions:
    - budgetRemaining: {below: 0.1}
    - burnRate: {window: 1h, above: 14.4}
  actions:
    freeze: {dependents: direct}
    handPager: {fromTeam: search}
  exemptions: [security, rollback, p0-fix]
  cooldown: 2h
---
apiVersion: relia.dev/v1
kind: BudgetPolicy
metadata: {name: default}
spec:
  description: Replaces the built-in default; off while we tune our SLOs.
  enabled: false
  scope: {organisation: true}
  conditions: [{budgetExhausted: {}}]
  actions: {freeze: {}}
"""


def test_apply_plan_and_export_budget_policies(client, org):
    admin = org.headers("root:admin")
    first = post(client, "apply", admin, {"policies.yaml": POLICIES})
    assert first.status_code == 200, first.text
    assert [(c["kind"], c["name"], c["action"]) for c in first.json()["changes"] if c["kind"] == "BudgetPolicy"] == [
        ("BudgetPolicy", "checkout-freeze", "create"),
        ("BudgetPolicy", "default", "create"),
    ]
    again = post(client, "plan", admin, {"policies.yaml": POLICIES}).json()
    assert {c["action"] for c in again["changes"] if c["kind"] == "BudgetPolicy"} == {"unchanged"}

    listed = {p["name"]: p for p in client.get(f"{API}/budget-policies", headers=admin).json()}
    assert listed["default"]["builtIn"] is False and listed["default"]["enabled"] is False
    assert "hand the pager from search to the owning team" in listed["checkout-freeze"]["summary"]

    documents = client.get(f"{API}/config/export", headers=admin).json()["documents"]["BudgetPolicy"]
    assert [document["metadata"]["name"] for document in documents] == ["checkout-freeze", "default"]
    spec = documents[0]["spec"]
    assert spec["exemptions"] == ["p0-fix", "rollback", "security"] and spec["cooldown"] == "2h"
    assert "enabled" not in spec  # defaults are left out of exports
    exported = "---\n".join(yaml.safe_dump(document, sort_keys=False) for document in documents)
    assert {c["action"] for c in post(client, "plan", admin, {"export.yaml": exported}).json()["changes"]} == {
        "unchanged"
    }

    # Pruning the replacement of the default brings the built-in back.
    only_freeze = POLICIES.split("---")[0]
    pruned = post(client, "apply", admin, {"policies.yaml": only_freeze}, prune=True)
    assert pruned.status_code == 200, pruned.text
    deleted = [c["name"] for c in pruned.json()["changes"] if c["action"] == "delete"]
    assert deleted == ["default"]
    assert client.get(f"{API}/budget-policies/default", headers=admin).json()["builtIn"] is True


def test_problems_name_the_file_and_field_and_nothing_is_applied(client, org):
    admin = org.headers("root:admin")
    bad = POLICIES.replace("handPager: {fromTeam: search}", "handPager: {fromTeam: ghosts}").replace(
        "scope: {organisation: true}", "scope: {team: payments}"
    )
    response = post(client, "apply", admin, {"policies.yaml": bad})
    assert response.status_code == 422, response.text
    errors = {(e.get("name"), e["path"]) for e in response.json()["errors"]}
    assert ("checkout-freeze", "spec.actions.handPager.fromTeam") in errors
    assert ("default", "spec.scope") in errors
    assert [p["name"] for p in client.get(f"{API}/budget-policies", headers=admin).json()] == ["default"]
    assert client.get(f"{API}/budget-policies/default", headers=admin).json()["builtIn"] is True


def test_config_apply_keeps_the_rights_of_the_scope(client, org):
    alice = org.headers("alice:write")
    only_checkout = POLICIES.split("---")[0]
    assert post(client, "apply", alice, {"p.yaml": only_checkout}).status_code == 200
    response = post(client, "apply", org.headers("carol:write"), {"p.yaml": only_checkout.replace("2h", "3h")})
    assert response.status_code == 403, response.text
