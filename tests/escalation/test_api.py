"""The escalation and notification API: policies (rights, versions, bad input), which policy pages a service,
notification rules (the user themself or administrators), test messages, escalations and the delivery log,
the pipeline's health; and the config kinds through /config."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from relia.core.models import AuditEntry
from tests.api.support import API, assert_problem, ok
from tests.config.support import apply_ok, document, documents, post
from tests.escalation.support import tick

POLICY = {
    "team": "payments",
    "default": True,
    "repeat": 1,
    "ackTimeout": "30m",
    "steps": [{"notify": {"users": ["alice"]}}, {"wait": "5m"}, {"notify": {"teams": ["payments"]}}, {"wait": "10m"}],
}


def put(client, name: str, body: dict[str, Any], headers: dict[str, str], **extra_headers: str):  # type: ignore[no-untyped-def]
    return client.put(f"{API}/escalation-policies/{name}", json=body, headers={**headers, **extra_headers})


def test_a_team_manager_creates_reads_and_changes_the_teams_policy(client, paging_org):
    alice = paging_org.headers("alice:write")
    created = put(client, "payments-default", POLICY, alice)
    body = ok(created, 201)
    assert created.headers["ETag"] == '"1"'
    assert body["spec"] == POLICY | {"description": "", "services": []}
    assert [(row["after"], row["step"], row["repeat"], row["targets"]) for row in body["preview"]] == [
        ("0 min", 1, 0, "alice"),
        ("5 min", 3, 0, "team payments"),
        ("15 min", 1, 1, "alice"),
        ("20 min", 3, 1, "team payments"),
    ]
    read = client.get(f"{API}/escalation-policies/payments-default", headers=paging_org.headers("carol:write"))
    assert ok(read)["version"] == 1
    changed = put(client, "payments-default", {**POLICY, "repeat": 0}, alice, **{"If-Match": '"1"'})
    assert ok(changed)["version"] == 2
    assert_problem(put(client, "payments-default", POLICY, alice, **{"If-Match": '"1"'}), 412)
    assert_problem(put(client, "payments-default", {**POLICY, "version": 1}, alice), 409)
    listed = ok(client.get(f"{API}/escalation-policies", params={"team": "payments"}, headers=alice))
    assert [item["name"] for item in listed] == ["payments-default"]
    assert client.delete(f"{API}/escalation-policies/payments-default", headers=alice).status_code == 204
    assert_problem(client.get(f"{API}/escalation-policies/payments-default", headers=alice), 404)


def test_only_the_teams_managers_and_administrators_change_its_policies(client, paging_org):
    # One organisation for every case: building it (tokens are hashed) costs more than the requests.
    for token in ("bob:write", "carol:write", "alice:read", "root:write"):
        assert_problem(put(client, "payments-default", POLICY, paging_org.headers(token)), 403)
    ok(put(client, "payments-default", POLICY, paging_org.headers("root:admin")), 201)
    for token in ("bob:write", "carol:write"):
        assert_problem(
            client.delete(f"{API}/escalation-policies/payments-default", headers=paging_org.headers(token)), 403
        )


def test_moving_a_policy_to_another_team_needs_both_teams(client, paging_org):
    ok(put(client, "shared", POLICY, paging_org.headers("alice:write")), 201)
    moved = {**POLICY, "team": "search", "repeat": 0, "steps": [{"notify": {"users": ["carol"]}}]}
    assert_problem(put(client, "shared", moved, paging_org.headers("carol:write")), 403)
    assert ok(put(client, "shared", moved, paging_org.headers("root:admin")))["spec"]["team"] == "search"


BAD = [
    ({"bogus": 1}, "body.bogus"),
    ({"steps": [{"wait": "5m", "notify": {"users": ["alice"]}}]}, "body.steps.0"),
    ({"steps": [{"notify": {}}]}, "body.steps.0.notify"),
    ({"steps": [{"wait": "30s"}]}, "body.steps.0.wait"),
    ({"steps": [{"notify": {"users": ["alice"]}}, {"wait": "8d"}]}, "body.steps.1.wait"),
    ({"steps": []}, "body.steps"),
    ({"repeat": 10}, "body.repeat"),
    ({"ackTimeout": "0m"}, "body.ackTimeout"),
    ({"description": "a\x00b"}, "body.description"),
    ({"steps": [{"notify": {"users": ["alice", "alice"]}}]}, "body.steps.0.notify"),
    ({"steps": [{"wait": "5m"}]}, "steps"),
    ({"repeat": 2, "steps": [{"notify": {"users": ["alice"]}}]}, "steps.0"),
    ({"steps": [{"notify": {"users": ["nobody"]}}]}, "steps.0.notify.users.0"),
    ({"steps": [{"notify": {"teams": ["ghosts"]}}]}, "steps.0.notify.teams.0"),
    ({"team": "ghosts"}, "team"),
    ({"services": ["nope"]}, "services.0"),
]


def test_bad_policies_are_refused_with_the_field(client, paging_org):
    admin = paging_org.headers("root:admin")
    for change, path in BAD:
        response = put(client, "payments-default", {**POLICY, **change}, admin)
        assert response.status_code == 422, (change, response.text)
        assert_problem(response, 422, path=path)
    assert_problem(client.get(f"{API}/escalation-policies/payments-default", headers=admin), 404)


def test_a_bad_name_is_refused(client, paging_org):
    assert_problem(put(client, "Not_A_Slug", POLICY, paging_org.headers("root:admin")), 422, path="path.name")


def test_a_new_default_takes_the_flag_and_a_listed_service_moves(client, db, paging_org):
    admin = paging_org.headers("root:admin")
    ok(put(client, "first", {**POLICY, "services": ["checkout"]}, admin), 201)
    ok(put(client, "second", {**POLICY, "services": ["checkout"]}, admin), 201)
    first = ok(client.get(f"{API}/escalation-policies/first", headers=admin))
    assert (first["spec"]["default"], first["spec"]["services"]) == (False, [])
    which = ok(client.get(f"{API}/services/checkout/escalation-policy", headers=admin))
    assert which == {
        "service": "checkout",
        "team": "payments",
        "policy": "second",
        "source": "service",
        "detail": "policy second lists checkout",
    }
    with db.reader() as session:
        actions = session.execute(
            select(AuditEntry.action, AuditEntry.object_key)
            .where(AuditEntry.object_kind == "EscalationPolicy")
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(row) for row in actions] == [
        ("create", "first"),
        ("update", "first"),  # lost the default flag
        ("update", "first"),  # lost checkout
        ("create", "second"),
    ]
    fallback = ok(client.get(f"{API}/services/ranker/escalation-policy", headers=admin))
    assert (fallback["policy"], fallback["source"]) == (None, "fallback")
    assert_problem(client.get(f"{API}/services/nope/escalation-policy", headers=admin), 404)


# ------------------------------------------------------------------------------------ notification rules

RULES = {"rules": [{"contactMethod": "hook", "after": "0m"}, {"contactMethod": "hook", "after": "10m"}]}


def test_users_set_their_own_rules(client, paging_org):
    alice = paging_org.headers("alice:write")
    before = ok(client.get(f"{API}/users/me/notification-rules", headers=alice))
    assert before["version"] == 0 and before["notes"] == ["no rules: every contact method is notified at once"]
    saved = client.put(f"{API}/users/alice/notification-rules", json=RULES, headers=alice)
    body = ok(saved)
    assert saved.headers["ETag"] == '"1"'
    assert [(item["contactMethod"], item["after"]) for item in body["effective"]] == [
        ("hook", "0 min"),
        ("hook", "10 min"),
    ]
    assert_problem(
        client.put(f"{API}/users/alice/notification-rules", json=RULES, headers={**alice, "If-Match": '"7"'}), 412
    )
    assert_problem(
        client.put(f"{API}/users/alice/notification-rules", json={**RULES, "version": 3}, headers=alice), 409
    )
    assert client.delete(f"{API}/users/me/notification-rules", headers=alice).status_code == 204
    assert_problem(client.delete(f"{API}/users/me/notification-rules", headers=alice), 404)


def test_only_the_user_or_an_administrator_changes_rules(client, paging_org):
    url = f"{API}/users/alice/notification-rules"
    for token in ("bob:write", "alice:read", "carol:write"):
        assert_problem(client.put(url, json=RULES, headers=paging_org.headers(token)), 403)
    ok(client.put(url, json=RULES, headers=paging_org.headers("root:admin")))
    assert_problem(client.delete(url, headers=paging_org.headers("bob:write")), 403)


BAD_RULES = [
    ([{"contactMethod": "sms"}], "rules.0.contactMethod"),
    ([{"contactMethod": "hook", "after": "2d"}], "body.rules.0.after"),
    ([{"contactMethod": "hook", "after": "5"}], "body.rules.0.after"),
    ([{"contactMethod": "hook"}, {"contactMethod": "hook"}], "body.rules"),
    ([{"contactMethod": "hook", "channel": "x"}], "body.rules.0.channel"),
]


def test_bad_rules_are_refused(client, paging_org):
    alice = paging_org.headers("alice:write")
    for rules, path in BAD_RULES:
        response = client.put(f"{API}/users/alice/notification-rules", json={"rules": rules}, headers=alice)
        assert_problem(response, 422, path=path)
    assert_problem(client.get(f"{API}/users/nobody/notification-rules", headers=alice), 404)


def test_test_messages_escalations_and_the_delivery_log(client, db, clock, paging_org, alerting, receiver):
    alice, bob = paging_org.headers("alice:write"), paging_org.headers("bob:write")
    queued = client.post(f"{API}/users/me/contact-methods/hook/test", headers=alice)
    assert ok(queued, 202)["idempotencyKey"].startswith("test:")
    assert_problem(client.post(f"{API}/users/alice/contact-methods/hook/test", headers=bob), 403)
    assert_problem(client.post(f"{API}/users/alice/contact-methods/nope/test", headers=alice), 404)
    ok(put(client, "payments-default", POLICY, alice), 201)
    group = alerting.open("checkout", title="Checkout down")
    tick(db, clock)
    escalation = ok(client.get(f"{API}/escalations/{group}", headers=bob))
    assert (escalation["status"], escalation["policy"], escalation["nextStep"]) == ("active", "payments-default", 3)
    assert [(step["step"], [t["user"] for t in step["targets"]]) for step in escalation["steps"]] == [(1, ["alice"])]
    [note] = escalation["notifications"]
    assert (note["user"], note["status"], note["contactMethod"], note["kind"]) == (
        "alice",
        "delivered",
        "hook",
        "webhook",
    )
    assert "address" not in note
    listed = ok(client.get(f"{API}/notifications", params={"group": group}, headers=bob))
    assert [item["id"] for item in listed] == [note["id"]]
    mine = ok(client.get(f"{API}/notifications", params={"user": "me"}, headers=alice))
    assert [item["id"] for item in mine] == [note["id"]]
    summaries = ok(client.get(f"{API}/escalations", params={"status": "active"}, headers=bob))
    assert [(item["groupId"], item["service"]) for item in summaries] == [(group, "checkout")]
    assert_problem(client.get(f"{API}/escalations/999999", headers=bob), 404)
    health = ok(client.get(f"{API}/paging/health", headers=bob))
    assert health["status"] == "ok" and health["overdueTimers"] == 0
    assert {item.path for item in receiver.received} == {"/u/alice"}


# ------------------------------------------------------------------------------------------ config kinds

POLICY_DOC = document(
    "EscalationPolicy",
    "payments-default",
    "  team: payments\n  default: true\n  repeat: 1\n  steps:\n    - notify: {users: [alice]}\n    - wait: 5m\n",
)
RULES_DOC = document("NotificationRules", "alice", "  rules:\n    - {contactMethod: hook, after: 0m}\n")


def test_policies_and_rules_apply_as_code_idempotently(client, paging_org):
    admin = paging_org.headers("root:admin")
    files = {"paging.yaml": documents(POLICY_DOC, RULES_DOC)}
    first = apply_ok(client, admin, files)
    assert {(c["kind"], c["name"], c["action"]) for c in first["changes"] if c["action"] != "unchanged"} >= {
        ("EscalationPolicy", "payments-default", "create"),
        ("NotificationRules", "alice", "create"),
    }
    again = apply_ok(client, admin, files)
    assert all(
        c["action"] == "unchanged" for c in again["changes"] if c["kind"] in ("EscalationPolicy", "NotificationRules")
    )
    exported = ok(client.get(f"{API}/config/export", headers=admin))
    text = str(exported)
    assert "payments-default" in text and "NotificationRules" in text


BAD_DOCUMENTS = [
    ("  team: payments\n  repeat: 1\n  steps:\n    - notify: {users: [alice]}\n", "must end with a wait", "steps.0"),
    ("  team: payments\n  steps:\n    - notify: {users: [nobody]}\n", "refers to User 'nobody'", "users.0"),
    ("  team: payments\n  steps:\n    - wait: 5m\n", "at least one notify step", "steps"),
]


def test_config_refuses_bad_policies_with_the_field(client, paging_org):
    for spec, message, path in BAD_DOCUMENTS:
        files = {"bad.yaml": document("EscalationPolicy", "bad", spec)}
        response = post(client, "apply", paging_org.headers("root:admin"), files)
        assert response.status_code in (400, 422), response.text
        assert message in response.text and path in response.text, response.text


def test_config_refuses_two_defaults_for_one_team(client, paging_org):
    second = document(
        "EscalationPolicy",
        "payments-other",
        "  team: payments\n  default: true\n  steps:\n    - notify: {users: [bob]}\n",
    )
    body = {"files": [{"name": "p.yaml", "content": documents(POLICY_DOC, second)}]}
    response = client.post(f"{API}/config/validate", json=body, headers=paging_org.headers("root:admin"))
    assert response.status_code in (400, 422), response.text
    assert "already has default policy payments-default" in response.text
