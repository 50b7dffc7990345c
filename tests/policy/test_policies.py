"""Budget policies end to end on both databases: SLO history pushed through the API, the SLO evaluator and the
policy evaluation run as the worker runs them on the simulated clock, and the gate, overrides, pager handoffs,
notifications and action items seen through the API, the timeline and the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from relia.core.models import OutboxMessage
from relia.policy.models import GateCheck, ObjectiveExhaustion, PolicyState, ReleaseRestriction
from tests.factories import make_service, make_team
from tests.policy.support import (
    API,
    Worker,
    audit_actions,
    create_slo,
    event_types,
    events,
    exhaust,
    gate,
    push,
    put_policy,
    recover,
)


@pytest.fixture
def worker(db, clock):  # type: ignore[no-untyped-def]
    return Worker(db, clock)


@pytest.fixture
def slo(client, org):  # type: ignore[no-untyped-def]
    create_slo(client, org.headers("alice:write"))


def policy(**spec):  # type: ignore[no-untyped-def]
    body = {
        "scope": {"service": "checkout"},
        "conditions": [{"budgetExhausted": {}}],
        "actions": {"freeze": {}},
        "cooldown": "1h",
    }
    body.update(spec)
    return body


# ----------------------------------------------------------------------------------- the built-in default


def test_the_builtin_default_freezes_a_service_whose_budget_is_spent(client, org, slo, clock, worker, db):
    writer, reader = org.headers("alice:write"), org.headers("carol:write")
    push(client, writer, clock.now() - timedelta(hours=2), [0] * 120)
    worker.tick()
    allowed = gate(client, reader)
    assert allowed["decision"] == "allow"
    assert allowed["reasons"][0]["code"] == "no-restrictions" and allowed["reasons"][0]["budgetRemaining"] == 1.0

    clock.advance(timedelta(minutes=10))
    push(client, writer, clock.now() - timedelta(minutes=10), [50] * 10)
    worker.advance(2)

    blocked = gate(client, reader, version="v2.0.0")
    assert blocked["decision"] == "block"
    [reason] = blocked["reasons"]
    assert reason["code"] == "frozen" and reason["policy"] == "default"
    assert reason["slo"] == "checkout-availability" and reason["budgetRemaining"] < 0
    for change_type in ("security", "p0-fix", "rollback"):
        answer = gate(client, reader, change_type=change_type)
        assert answer["decision"] == "warn" and answer["exempt"] is True, change_type
        assert answer["reasons"][0]["code"] == "exempt"
    assert gate(client, reader, service="ranker")["decision"] == "allow"  # another service is not frozen

    status = client.get(f"{API}/policy-status", params={"service": "checkout"}, headers=reader).json()[0]
    assert status["frozen"] is True and status["policies"] == ["default"]
    assert [state["phase"] for state in status["states"]] == ["active"]
    assert event_types(db) == ["policy.triggered", "policy.freeze.started"]
    assert [action for action, _, _ in audit_actions(db, "PolicyState")] == ["triggered"]
    assert audit_actions(db, "ReleaseRestriction") == [("started", "checkout/default/checkout", "policy-evaluator")]

    # Every check was recorded with who asked and the answer.
    checks = client.get(f"{API}/gates/checks", params={"service": "checkout"}, headers=reader).json()["items"]
    assert [(c["decision"], c["changeType"], c["requestedBy"]) for c in checks][:2] == [
        ("warn", "rollback", "carol"),
        ("warn", "p0-fix", "carol"),
    ]
    assert {c["decision"] for c in checks} == {"allow", "block", "warn"}

    # Back within its SLO: the freeze stays through the cooldown, then lifts.
    recover(client, writer, clock)
    worker.advance(1)
    assert gate(client, reader)["decision"] == "block"
    cooling = client.get(f"{API}/policy-status", params={"service": "checkout"}, headers=reader).json()[0]
    assert cooling["states"][0]["phase"] == "cooling" and cooling["frozen"] is True
    assert "recovering" in gate(client, reader)["reasons"][0]["message"]
    worker.advance(59)
    assert gate(client, reader)["decision"] == "block"
    worker.advance(1)
    assert gate(client, reader)["decision"] == "allow"
    assert event_types(db) == [
        "policy.triggered",
        "policy.freeze.started",
        "policy.cooling",
        "policy.cleared",
        "policy.freeze.ended",
    ]
    ended = client.get(f"{API}/release-restrictions", params={"active": "false"}, headers=reader).json()
    assert len(ended) == 1 and ended[0]["endedAt"] is not None


def test_a_policy_named_default_replaces_or_disables_the_builtin(client, org, slo, clock, worker, db):
    admin, writer = org.headers("root:admin"), org.headers("alice:write")
    names = [item["name"] for item in client.get(f"{API}/budget-policies", headers=writer).json()]
    assert names == ["default"]
    builtin = client.get(f"{API}/budget-policies/default", headers=writer).json()
    assert builtin["builtIn"] is True and "Google" in builtin["spec"]["description"]
    assert client.delete(f"{API}/budget-policies/default", headers=admin).status_code == 404

    disabled = policy(scope={"organisation": True}, enabled=False)
    put_policy(client, writer, "default", disabled, 403)  # organisation-wide: administrators only
    put_policy(client, admin, "default", {**disabled, "scope": {"service": "checkout"}}, 422)
    created = put_policy(client, admin, "default", disabled, 201).json()
    assert created["builtIn"] is False and created["enabled"] is False

    exhaust(client, writer, clock, worker)
    assert gate(client, writer)["decision"] == "allow"
    assert db and event_types(db) == []

    assert client.delete(f"{API}/budget-policies/default", headers=admin).status_code == 204
    worker.tick()
    assert gate(client, writer)["decision"] == "block"  # the built-in is back


# --------------------------------------------------------------------------------------------- overrides


def test_an_override_lets_one_version_through_once_someone_else_approves(client, org, slo, clock, worker, db):
    alice, bob, carol = org.headers("alice:write"), org.headers("bob:write"), org.headers("carol:write")
    exhaust(client, alice, clock, worker)
    assert gate(client, bob, version="v2.0.1")["decision"] == "block"

    body = {"service": "checkout", "version": "v2.0.1", "reason": "fixes the checkout outage", "duration": "2h"}
    assert client.post(f"{API}/overrides", headers=carol, json=body).status_code == 403  # not carol's service
    requested = client.post(f"{API}/overrides", headers=bob, json=body)
    assert requested.status_code == 201, requested.text
    override = requested.json()
    assert override["status"] == "pending" and override["requestedBy"] == "bob"
    assert gate(client, bob, version="v2.0.1")["decision"] == "block"  # pending is not approved

    url = f"{API}/overrides/{override['id']}"
    assert client.post(f"{url}/approve", headers=bob, json={}).status_code == 403  # the requester
    assert client.post(f"{url}/approve", headers=carol, json={}).status_code == 403  # no rights on checkout
    assert client.post(f"{url}/approve", headers=org.headers("alice:read"), json={}).status_code == 403
    approved = client.post(f"{url}/approve", headers=alice, json={"note": "go"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert client.post(f"{url}/reject", headers=org.headers("root:admin"), json={}).status_code == 409

    through = gate(client, bob, version="v2.0.1")
    assert through["decision"] == "warn" and through["override"] == override["id"]
    assert through["reasons"][0]["code"] == "override" and through["reasons"][0]["override"] == override["id"]
    assert gate(client, bob, version="v2.0.2")["decision"] == "block"  # one version only
    assert gate(client, bob, version="v2.0.1", phase="pre_switch")["decision"] == "warn"

    worker.advance(121)  # past the time box
    assert gate(client, bob, version="v2.0.1")["decision"] == "block"
    listed = client.get(f"{API}/overrides", params={"service": "checkout"}, headers=bob).json()
    assert [item["status"] for item in listed] == ["expired"]
    assert [kind for kind in event_types(db, "policy.override.")] == [
        "policy.override.requested",
        "policy.override.approved",
        "policy.override.expired",
    ]
    assert [action for action, _, _ in audit_actions(db, "ReleaseOverride")] == ["request", "approve", "expire"]


def test_a_rejected_or_unapproved_override_changes_nothing(client, org, slo, clock, worker):
    alice, bob = org.headers("alice:write"), org.headers("bob:write")
    exhaust(client, alice, clock, worker)
    body = {"service": "checkout", "version": "v3", "reason": "please"}
    override = client.post(f"{API}/overrides", headers=bob, json=body).json()
    rejected = client.post(f"{API}/overrides/{override['id']}/reject", headers=alice, json={"note": "fix it first"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["decisionNote"] == "fix it first"
    assert gate(client, bob, version="v3")["decision"] == "block"
    assert client.post(f"{API}/overrides/{override['id']}/approve", headers=alice).status_code == 409
    assert client.post(f"{API}/overrides/999/approve", headers=alice).status_code == 404


# ----------------------------------------------------------------------------------------------- flapping


def test_the_cooldown_and_margin_keep_a_hovering_budget_from_flapping(client, org, slo, clock, worker, db):
    """The budget hovers around the 50 % threshold; the freeze starts once and lifts once, an hour after the
    budget last came back above the threshold plus its margin."""
    writer = org.headers("alice:write")
    put_policy(
        client,
        writer,
        "half-budget",
        policy(conditions=[{"budgetRemaining": {"below": 0.5}}], clearMargin=0.05, cooldown="1h"),
        201,
    )
    put_policy(client, org.headers("root:admin"), "default", policy(scope={"organisation": True}, enabled=False), 201)
    start = clock.now() - timedelta(hours=2)
    push(client, writer, start, [0] * 120)  # 12,000 events: 120 bad ones spend the whole budget
    worker.tick()
    phases = []
    # Each step adds bad events: 66 (45 % left), then good traffic and bad again in turns.
    for bad, good_total in [(66, 0), (0, 2000), (0, 0), (10, 0), (0, 500), (0, 0)]:
        clock.advance(timedelta(minutes=5))
        minute = clock.now() - timedelta(minutes=3)
        if bad:
            push(client, writer, minute, [bad])
        if good_total:
            push(client, writer, minute, [0], total=good_total)
        worker.advance(1)
        state = client.get(f"{API}/policy-status", params={"service": "checkout"}, headers=writer).json()[0]
        remaining = client.get(f"{API}/slos/checkout-availability", headers=writer).json()["objectives"][0]
        phases.append((round(remaining["budgetRemaining"], 3), [s["phase"] for s in state["states"]]))
    # 45.5 % (triggers), 53.2 % (above 50 % but inside the 5 % margin: stays), 53.2 %, 46.5 %, 48.3 %, 48.3 %:
    # in force throughout, started once.
    assert [remaining for remaining, _ in phases] == [0.455, 0.532, 0.532, 0.465, 0.483, 0.483]
    assert [phase for _, phase in phases] == [["active"]] * 6, phases
    assert event_types(db) == ["policy.triggered", "policy.freeze.started"]

    clock.advance(timedelta(minutes=5))
    push(client, writer, clock.now() - timedelta(minutes=3), [0], total=20_000)  # well above 55 %
    worker.advance(1)
    worker.advance(30)
    clock.advance(timedelta(minutes=5))
    push(client, writer, clock.now() - timedelta(minutes=3), [250], total=1000)  # below the threshold again
    worker.advance(1)
    assert event_types(db)[-1] == "policy.retriggered"  # back in force, the freeze never lifted
    clock.advance(timedelta(minutes=5))
    push(client, writer, clock.now() - timedelta(minutes=3), [0], total=100_000)
    worker.advance(1)
    worker.advance(59)
    assert gate(client, writer)["decision"] == "block"
    worker.advance(2)
    assert gate(client, writer)["decision"] == "allow"
    assert event_types(db) == [
        "policy.triggered",
        "policy.freeze.started",
        "policy.cooling",
        "policy.retriggered",
        "policy.cooling",
        "policy.cleared",
        "policy.freeze.ended",
    ]


def test_evaluating_again_at_the_same_instant_changes_nothing(client, org, slo, clock, worker, db):
    exhaust(client, org.headers("alice:write"), clock, worker)
    before = event_types(db)
    for _ in range(3):
        report = worker.tick()
        assert report.transitions == [] and report.restrictions_started == 0
    assert event_types(db) == before
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(ReleaseRestriction)) == 1
        assert session.scalar(select(func.count()).select_from(PolicyState)) == 1


# --------------------------------------------------------------------------------- dependents, actions


def test_dependents_are_frozen_when_the_policy_says_so(client, org, db, clock, worker):
    make_service(db, clock, "storefront", "search", depends_on=["checkout"])
    make_service(db, clock, "mobile", "search", depends_on=["storefront"])
    alice, carol = org.headers("alice:write"), org.headers("carol:write")
    create_slo(client, alice)
    put_policy(client, alice, "checkout-freeze", policy(actions={"freeze": {"dependents": "direct"}}), 201)
    put_policy(client, org.headers("root:admin"), "default", policy(scope={"organisation": True}, enabled=False), 201)
    exhaust(client, alice, clock, worker)

    storefront = gate(client, carol, service="storefront")
    assert storefront["decision"] == "block"
    assert storefront["reasons"][0]["service"] == "checkout" and storefront["reasons"][0]["services"] == ["checkout"]
    assert "through checkout, which storefront depends on" in storefront["reasons"][0]["message"]
    assert gate(client, carol, service="mobile")["decision"] == "allow"  # only direct dependents

    put_policy(client, alice, "checkout-freeze", policy(actions={"freeze": {"dependents": "transitive"}}), 200)
    worker.tick()
    assert gate(client, carol, service="mobile")["decision"] == "block"
    started = [(kind, slug) for kind, slug, _ in events(db) if kind == "policy.freeze.started"]
    assert started == [
        ("policy.freeze.started", "checkout"),
        ("policy.freeze.started", "storefront"),
        ("policy.freeze.started", "mobile"),
    ]


def test_pager_handoff_notifications_and_action_items(client, org, db, clock, worker):
    make_team(db, clock, "sre", [("carol", "member")])
    alice = org.headers("alice:write")
    create_slo(client, alice)
    spec = policy(
        conditions=[{"budgetExhausted": {}}, {"pageAlert": {}}],
        actions={
            "handPager": {"fromTeam": "sre"},
            "notify": [{"webhook": "https://hooks.example/relia"}],
            "actionItem": {"title": "Bring {service} back within its SLOs ({policy})"},
            "requireApproval": {},
        },
        exemptions=["security"],
    )
    put_policy(client, alice, "give-back-pager", spec, 201)
    exhaust(client, alice, clock, worker)

    handoffs = client.get(f"{API}/pager-handoffs", headers=alice).json()
    assert [(h["service"], h["fromTeam"], h["toTeam"], h["policy"]) for h in handoffs if h["policy"] != "default"] == [
        ("checkout", "sre", "payments", "give-back-pager")
    ]
    status = client.get(f"{API}/policy-status", params={"service": "checkout"}, headers=alice).json()[0]
    assert status["pagerHandoff"]["toTeam"] == "payments" and status["approvalRequired"] is True
    [item] = status["openActionItems"]
    assert item["title"] == "Bring checkout back within its SLOs (give-back-pager)"
    page = client.get("/services/checkout", headers=alice)
    assert "Handed over" in page.text and "payments" in page.text

    with db.reader() as session:
        messages = session.scalars(select(OutboxMessage)).all()
    assert [(m.channel, m.destination, m.payload["event"]) for m in messages] == [
        ("webhook", "https://hooks.example/relia", "policy.triggered")
    ]
    assert messages[0].idempotency_key == messages[0].payload["idempotencyKey"]
    worker.tick()
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # once per transition

    closed = client.post(f"{API}/action-items/{item['id']}/close", headers=org.headers("bob:write"))
    assert closed.status_code == 200 and closed.json()["status"] == "done"
    assert client.post(f"{API}/action-items/{item['id']}/close", headers=alice).status_code == 409
    assert client.post(f"{API}/action-items/{item['id']}/close", headers=org.headers("carol:write")).status_code == 403

    recover(client, alice, clock)
    worker.advance(1)
    worker.advance(61)
    assert client.get(f"{API}/pager-handoffs", headers=alice).json() == []
    types = event_types(db)
    assert "policy.pager.handed" in types and "policy.pager.returned" in types
    assert "policy.approval.started" in types and "policy.approval.ended" in types
    assert "policy.action_item.created" in types and "policy.action_item.closed" in types
    with db.reader() as session:
        assert [m.payload["event"] for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))] == [
            "policy.triggered",
            "policy.cleared",
        ]


def test_burn_rate_and_page_conditions(client, org, db, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    put_policy(client, org.headers("root:admin"), "default", policy(scope={"organisation": True}, enabled=False), 201)
    put_policy(
        client,
        alice,
        "burning",
        policy(conditions=[{"burnRate": {"window": "30m", "above": 10}}], actions={"warn": {}}),
        201,
    )
    put_policy(client, alice, "paging", policy(conditions=[{"pageAlert": {}}], actions={"warn": {}}), 201)
    push(client, alice, clock.now() - timedelta(hours=6), [0] * 360)
    worker.tick()
    assert gate(client, alice)["decision"] == "allow"
    clock.advance(timedelta(minutes=20))
    push(client, alice, clock.now() - timedelta(minutes=20), [20] * 20)  # 20 % errors: a 20x burn
    worker.advance(1)
    answer = gate(client, alice)
    assert answer["decision"] == "warn"
    assert sorted(reason["policy"] for reason in answer["reasons"]) == ["burning", "paging"]
    burning = next(state for state in client.get(f"{API}/budget-policies/burning", headers=alice).json()["states"])
    assert "over 30m" in burning["matched"][0]["reasons"][0]  # 30m is not an evaluator window: read from minutes


def test_budget_exhausted_within_a_trailing_window_outlasts_the_recovery(client, org, db, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    put_policy(client, org.headers("root:admin"), "default", policy(scope={"organisation": True}, enabled=False), 201)
    put_policy(client, alice, "four-weeks", policy(conditions=[{"budgetExhausted": {"within": "28d"}}]), 201)
    exhaust(client, alice, clock, worker)
    with db.reader() as session:
        marks = session.scalars(select(ObjectiveExhaustion.last_exhausted_at)).all()
    assert marks == [clock.now()]
    recover(client, alice, clock)
    worker.advance(120)
    assert gate(client, alice)["decision"] == "block"
    state = client.get(f"{API}/budget-policies/four-weeks", headers=alice).json()["states"][0]
    assert state["phase"] == "active" and "within the last 4w" in state["matched"][0]["reasons"][0]


# --------------------------------------------------------------------------------------- rights and input


def test_only_the_owning_team_or_admins_change_a_services_policy(client, org, db, clock):
    spec = policy()
    put_policy(client, org.headers("carol:write"), "p", spec, 403)
    put_policy(client, org.headers("alice:read"), "p", spec, 403)
    put_policy(client, org.headers("alice:write"), "p", spec, 201)
    put_policy(client, org.headers("carol:write"), "p", {**spec, "scope": {"service": "ranker"}}, 403)  # moving it
    put_policy(client, org.headers("carol:write"), "q", {**spec, "scope": {"team": "search"}}, 201)
    put_policy(client, org.headers("alice:write"), "q", {**spec, "scope": {"team": "payments"}}, 403)
    put_policy(client, org.headers("alice:write"), "r", {**spec, "scope": {"organisation": True}}, 403)
    put_policy(client, org.headers("root:admin"), "r", {**spec, "scope": {"organisation": True}}, 201)
    assert client.delete(f"{API}/budget-policies/p", headers=org.headers("carol:write")).status_code == 403
    stale = client.put(f"{API}/budget-policies/p", headers={**org.headers("bob:write"), "If-Match": '"9"'}, json=spec)
    assert stale.status_code == 412
    assert client.delete(f"{API}/budget-policies/p", headers=org.headers("bob:write")).status_code == 204
    assert [action for action, key, _ in audit_actions(db, "BudgetPolicy") if key == "p"] == ["create", "delete"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"scope": {"service": "checkout", "team": "payments"}}, "body.scope"),
        ({"scope": {"service": "nope"}}, "scope.service"),
        ({"conditions": []}, "body.conditions"),
        ({"conditions": [{"budgetRemaining": {"below": 0.2}, "pageAlert": {}}]}, "body.conditions.0"),
        ({"conditions": [{"burnRate": {"window": "1 hour", "above": 2}}]}, "body.conditions.0.burnRate.window"),
        ({"actions": {}}, "body.actions"),
        ({"actions": {"handPager": {"fromTeam": "ghosts"}}}, "actions.handPager.fromTeam"),
        ({"actions": {"notify": [{"webhook": "ftp://x"}]}}, "body.actions.notify.0.webhook"),
        ({"cooldown": "0m"}, "body.cooldown"),
        ({"exemptions": ["security", "security"]}, "body.exemptions"),
        ({"exemptions": ["Security!"]}, "body.exemptions.0"),
        ({"slos": ["not-an-slo"]}, "slos.0"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_policies_are_refused_with_the_field_and_change_nothing(client, org, db, change, path):
    response = put_policy(client, org.headers("alice:write"), "bad", policy(**change))
    assert response.status_code == 422, response.text
    assert path in [error["path"] for error in response.json()["errors"]], response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert audit_actions(db, "BudgetPolicy") == []


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        ({"service": "checkout", "version": "v1"}, 422, "body.changeType"),
        ({"service": "checkout", "version": "v1", "changeType": "Feature!"}, 422, "body.changeType"),
        ({"service": "checkout", "version": "", "changeType": "feature"}, 422, "body.version"),
        ({"service": "checkout", "version": "v1", "changeType": "feature", "phase": "later"}, 422, "body.phase"),
        ({"service": "nope", "version": "v1", "changeType": "feature"}, 404, "service"),
        ({"service": "checkout", "version": "v1", "changeType": "feature", "extra": 1}, 422, "body.extra"),
    ],
)
def test_bad_gate_checks_are_refused_and_not_recorded(client, org, db, body, status, path):
    response = client.post(f"{API}/gates/check", headers=org.headers("alice:read"), json=body)
    assert response.status_code == status, response.text
    assert path in [error["path"] for error in response.json().get("errors", [])], response.json()
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(GateCheck)) == 0


def test_anyone_signed_in_may_ask_the_gate_but_not_anonymously(client, org):
    assert gate(client, org.headers("carol:write"))["decision"] == "allow"
    assert gate(client, org.headers("alice:read"))["decision"] == "allow"
    assert (
        client.post(f"{API}/gates/check", json={"service": "checkout", "version": "1", "changeType": "x"}).status_code
        == 401
    )


def test_override_input_is_checked(client, org):
    bob = org.headers("bob:write")
    too_long = {"service": "checkout", "version": "v1", "reason": "because", "duration": "8d"}
    assert client.post(f"{API}/overrides", headers=bob, json=too_long).json()["errors"][0]["path"] == "duration"
    short = {"service": "checkout", "version": "v1", "reason": "x"}
    assert client.post(f"{API}/overrides", headers=bob, json=short).status_code == 422
    unknown = {"service": "nope", "version": "v1", "reason": "because"}
    assert client.post(f"{API}/overrides", headers=bob, json=unknown).status_code == 404


# ------------------------------------------------------------------------------------------ the report


def test_velocity_report_says_slow_down_for_a_frozen_service(client, org, db, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    exhaust(client, alice, clock, worker)
    gate(client, alice)
    gate(client, alice, change_type="security")
    report = client.get(f"{API}/reports/velocity", params={"service": "checkout", "period": "7d"}, headers=alice)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["verdict"] == "slow-down" and "exhausted" in body["reason"]
    assert body["frozenNow"] is True and len(body["freezes"]) == 1
    assert body["releases"] == {"allow": 0, "warn": 1, "block": 1}
    [budget] = body["budgets"]
    assert budget["remainingNow"] < 0 and len(budget["points"]) >= 30
    assert (
        client.get(f"{API}/reports/velocity", params={"service": "checkout", "period": "1y"}, headers=alice).status_code
        == 422
    )
    assert (
        client.get(
            f"{API}/reports/velocity", params={"service": "checkout", "period": "120d"}, headers=alice
        ).status_code
        == 422
    )
    assert client.get(f"{API}/reports/velocity", params={"service": "nope"}, headers=alice).status_code == 404


def test_velocity_report_sees_room_to_ship_faster(client, org, db, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    push(client, alice, clock.now() - timedelta(hours=20), [0.1] * (20 * 60))
    worker.tick()
    body = client.get(f"{API}/reports/velocity", params={"service": "checkout", "period": "1d"}, headers=alice).json()
    assert body["verdict"] == "faster" and body["verdictText"] == "room to ship faster"
    assert body["budgets"][0]["trend"] in ("falling", "steady")


# ----------------------------------------------------------------------------------- exhaustion history


def test_objectives_learn_their_past_exhaustion_from_the_timeline(client, org, db, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    from relia.core import timeline

    with db.transaction() as session:
        timeline.append(
            session,
            type="slo.budget.crossed",
            at=clock.now() - timedelta(days=3),
            summary="Error budget of checkout-availability is exhausted",
            data={"slo": "checkout-availability", "objective": "default", "threshold": 0, "direction": "down"},
        )
    push(client, alice, clock.now() - timedelta(hours=1), [0] * 60)
    put_policy(client, alice, "recent", policy(conditions=[{"budgetExhausted": {"within": "7d"}}]), 201)
    worker.tick()
    with db.reader() as session:
        assert session.scalars(select(ObjectiveExhaustion.last_exhausted_at)).all() == [clock.now() - timedelta(days=3)]
    assert gate(client, alice)["decision"] == "block"
    assert session is not None and ReleaseRestriction is not None
