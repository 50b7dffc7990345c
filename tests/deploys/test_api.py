"""The deploys API: targets and their rights, starting deployments, the verbs, bad input refused with nothing
changed, audit and timeline, and the release gate (the policy domain's, for real) before the deployment and
again before the switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from relia.core.models import AuditEntry, TimelineEvent
from relia.deploys import gate
from relia.deploys.models import Deployment, DeployTarget
from relia.deploys.rules import State
from tests.api.support import API, assert_problem, ok
from tests.deploys.support import drive, read, step_types

HOOK = "http://127.0.0.1:9/switch"


def target_body(**extra: Any) -> dict[str, Any]:
    return {
        "service": "checkout",
        "environments": {
            "blue": {"upstream": "10.0.1.10:8080", "healthUrl": "http://10.0.1.10:8080/healthz"},
            "green": {"upstream": "10.0.1.11:8080", "healthUrl": "http://10.0.1.11:8080/healthz"},
        },
        "adapter": {"type": "http", "switch": HOOK, "headers": {"Authorization": "Bearer s3cret"}},
        **extra,
    }


def counts(db) -> tuple[int, int, int, int]:
    """Targets, deployments, audit entries and timeline events: what a refused request must leave as it was."""
    with db.reader() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (DeployTarget, Deployment, AuditEntry, TimelineEvent)
        )  # type: ignore[return-value]


@pytest.fixture
def target(client, org) -> dict[str, Any]:
    return ok(client.put(f"{API}/deploy-targets/checkout", headers=org.headers("alice:write"), json=target_body()), 201)


# ------------------------------------------------------------------------------------------------- targets


def test_a_team_member_declares_the_target_and_reads_what_runs_where(client, org, target):
    assert target["live"] == "blue" and target["activeDeployment"] is None
    assert [(env["name"], env["live"], env["version"]) for env in target["environments"]] == [
        ("blue", True, None),
        ("green", False, None),
    ]
    # Webhook headers may be credentials: members see that they are set, administrators their values.
    assert target["spec"]["adapter"]["headers"] == {"Authorization": "********"}
    admin_view = ok(client.get(f"{API}/deploy-targets/checkout", headers=org.headers("root:admin")))
    assert admin_view["spec"]["adapter"]["headers"] == {"Authorization": "Bearer s3cret"}
    listed = ok(client.get(f"{API}/deploy-targets", headers=org.headers("carol:write")))
    assert [item["name"] for item in listed] == ["checkout"]


def test_adapters_that_run_programs_on_the_worker_are_for_administrators(client, org, db):
    before = counts(db)
    body = target_body(adapter={"type": "command", "switch": ["/usr/local/bin/switch"]})
    problem = assert_problem(
        client.put(f"{API}/deploy-targets/checkout", headers=org.headers("alice:write"), json=body),
        403,
        path="adapter.type",
    )
    assert "administrator" in problem["detail"]
    assert counts(db) == before
    ok(client.put(f"{API}/deploy-targets/checkout", headers=org.headers("root:admin"), json=body), 201)


def test_only_the_owning_team_changes_the_target(client, org, db, target):
    before = counts(db)
    body = target_body(keepWarm="30m")
    assert_problem(client.put(f"{API}/deploy-targets/checkout", headers=org.headers("carol:write"), json=body), 403)
    assert_problem(client.put(f"{API}/deploy-targets/checkout", headers=org.headers("alice:read"), json=body), 403)
    assert_problem(client.delete(f"{API}/deploy-targets/checkout", headers=org.headers("carol:write")), 403)
    assert counts(db) == before
    changed = ok(client.put(f"{API}/deploy-targets/checkout", headers=org.headers("bob:write"), json=body))
    assert changed["spec"]["keepWarm"] == "30m" and changed["version"] == target["version"] + 1


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"environments": {"blue": {"upstream": "127.0.0.1:80; include /etc/passwd"},
                           "green": {"upstream": "10.0.0.2:80"}}}, "environments.blue.upstream"),
        ({"environments": {"blue": {"upstream": "10.0.0.1:80"}, "green": {"upstream": "10.0.0.1:80"}}}, ""),
        ({"adapter": {"type": "nginx", "upstreamFile": "relative/path.conf"}}, "adapter.nginx.upstreamFile"),
        ({"adapter": {"type": "nginx", "upstreamFile": "/etc/nginx/x.conf", "upstreamName": "a b"}},
         "adapter.nginx.upstreamName"),
        ({"adapter": {"type": "ftp"}}, "adapter"),
        ({"keepWarm": "10 minutes"}, "keepWarm"),
        ({"promotion": {"mode": "manual", "onTimeout": "shrug"}}, "promotion.onTimeout"),
        ({"analysis": {"checks": [{"name": "p", "type": "prometheus", "dataSource": "prom", "query": "up"}]}},
         "analysis.checks.0.prometheus"),
        ({"analysis": {"checks": [{"name": "p", "type": "prometheus", "dataSource": "prom",
                                   "query": "up{c='{{colour}}'}", "successCondition": "< 1"}]}},
         "analysis.checks.0.prometheus.query"),
        ({"analysis": {"checks": [{"name": "p", "type": "prometheus", "dataSource": "prom", "query": "up",
                                   "successCondition": "about 1"}]}}, "analysis.checks.0.prometheus.successCondition"),
        ({"analysis": {"checks": [{"name": "b", "type": "sloBurn", "slo": "nope", "maxBurnRate": 2}]}},
         "analysis.checks.0.slo"),
        ({"analysis": {"checks": [{"name": "h", "type": "http"}, {"name": "h", "type": "http"}]}}, "analysis"),
        ({"analysis": {"interval": "0s"}}, "analysis.interval"),
        ({"colour": "blue"}, "colour"),
    ],
)  # fmt: skip
def test_a_bad_target_is_refused_with_the_field_and_nothing_changes(client, org, db, change, path):
    before = counts(db)
    body = target_body(**change)
    response = client.put(f"{API}/deploy-targets/checkout", headers=org.headers("root:admin"), json=body)
    problem = assert_problem(response, 422)
    paths = [error["path"].removeprefix("body").removeprefix(".") for error in problem["errors"]]
    assert any(found == path or found.startswith(path + ".") for found in paths), paths
    assert counts(db) == before


def test_a_second_target_for_the_same_service_is_a_conflict(client, org, target):
    response = client.put(f"{API}/deploy-targets/checkout-two", headers=org.headers("alice:write"), json=target_body())
    assert_problem(response, 409, path="service")


# ------------------------------------------------------------------------------------------------ deployments


def start(client, org, key: str = "alice:write", **body: Any):
    return client.post(f"{API}/deployments", headers=org.headers(key), json={"service": "checkout", **body})


def test_starting_a_deployment_answers_with_its_state_steps_and_location(client, org, target, db):
    response = start(client, org, version="v2.0.0", variables={"IMAGE_DIGEST": "sha256:0f"}, reason="weekly release")
    deployment = ok(response, 201)
    assert response.headers["Location"] == f"/api/v1/deployments/{deployment['id']}"
    assert deployment["fromEnvironment"] == "blue" and deployment["toEnvironment"] == "green"
    assert deployment["createdBy"] == "alice" and deployment["variables"] == {"IMAGE_DIGEST": "sha256:0f"}
    # No deploy hook and no checks: recorded as deployed, analysis passes, promoted, the switch is armed.
    assert (deployment["state"], deployment["pendingAction"]) == ("switching", "switch")
    assert [step["type"] for step in deployment["steps"]][:3] == [
        "deploy.started",
        "deploy.gate.checked",
        "deploy.deployed",
    ]
    assert "weekly release" in deployment["steps"][0]["summary"]
    listed = ok(client.get(f"{API}/deployments", headers=org.headers("carol:write"), params={"active": True}))
    assert [item["id"] for item in listed["items"]] == [deployment["id"]]
    timeline = ok(client.get(f"{API}/timeline", headers=org.headers("root:admin"), params={"service": "checkout"}))
    assert "deploy.started" in {event["type"] for event in timeline["items"]}
    [entry] = [e for e in ok(client.get(f"{API}/audit", headers=org.headers("root:admin")))["items"]
               if e["objectKind"] == "Deployment"]  # fmt: skip
    assert (entry["action"], entry["actor"], entry["after"]["variables"]) == ("create", "alice", ["IMAGE_DIGEST"])


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        ({"service": "nope", "version": "v2"}, 422, "service"),
        ({"service": "ranker", "version": "v2"}, 403, None),  # carol's team's service: alice may not
        ({"version": "v 2"}, 422, "body.version"),
        ({"version": "v2;rm -rf /"}, 422, "body.version"),
        ({"version": ""}, 422, "body.version"),
        ({"version": "v2", "changeType": "Feature"}, 422, "body.changeType"),
        ({"version": "v2", "variables": {"image": "x"}}, 422, "body.variables"),
        ({"version": "v2", "colour": "green"}, 422, "body.colour"),
    ],
)
def test_bad_starts_are_refused_and_change_nothing(client, org, target, db, body, status, path):
    before = counts(db)
    assert_problem(client.post(f"{API}/deployments", headers=org.headers("alice:write"),
                               json={"service": "checkout", **body}), status, path=path)  # fmt: skip
    assert counts(db) == before


def test_a_service_without_a_target_cannot_deploy(client, org, db):
    assert_problem(start(client, org, version="v2"), 422, path="service")


def test_rights_to_deploy(client, org, target, db):
    before = counts(db)
    assert_problem(start(client, org, "alice:read", version="v2"), 403)
    assert_problem(start(client, org, "carol:write", version="v2"), 403)
    assert counts(db) == before
    ok(start(client, org, "bob:write", version="v2"), 201)


def test_one_deployment_at_a_time(client, org, target, db):
    first = ok(start(client, org, version="v2"), 201)
    before = counts(db)
    problem = assert_problem(start(client, org, version="v3"), 409)
    assert problem["activeDeployment"] == first["id"]
    assert counts(db) == before


def test_unknown_deployments(client, org):
    assert_problem(client.get(f"{API}/deployments/999", headers=org.headers("alice:write")), 404)
    assert_problem(client.post(f"{API}/deployments/999/abort", headers=org.headers("alice:write")), 404)
    assert_problem(client.get(f"{API}/deployments/0", headers=org.headers("alice:write")), 422)


# ---------------------------------------------------------------------------------------------------- verbs


@pytest.fixture
def manual(client, org) -> dict[str, Any]:
    body = target_body(promotion={"mode": "manual", "timeout": "1h"})
    return ok(client.put(f"{API}/deploy-targets/checkout", headers=org.headers("alice:write"), json=body), 201)


def test_promote_resume_and_abort_follow_the_state_machine(client, org, manual, db, clock):
    deployment = ok(start(client, org, version="v2"), 201)
    url = f"{API}/deployments/{deployment['id']}"
    assert deployment["state"] == "awaiting_promotion"
    assert deployment["allowedActions"] == ["promote", "abort"]
    before = counts(db)
    problem = assert_problem(client.post(f"{url}/resume", headers=org.headers("alice:write")), 409)
    assert "only a paused deployment can be resumed" in problem["detail"]
    assert_problem(client.post(f"{url}/promote", headers=org.headers("carol:write")), 403)
    assert_problem(client.post(f"{url}/promote", headers=org.headers("alice:read")), 403)
    stale = {"revision": deployment["revision"] - 1}
    assert_problem(client.post(f"{url}/promote", headers=org.headers("alice:write"), json=stale), 409, path="version")
    assert_problem(client.post(f"{url}/promote", headers={**org.headers("alice:write"), "If-Match": '"999"'}), 412)
    assert counts(db) == before

    promoted = ok(client.post(f"{url}/promote", headers=org.headers("bob:write"), json={"reason": "looks good"}))
    assert (promoted["state"], promoted["pendingAction"]) == ("switching", "switch")
    aborted = ok(client.post(f"{url}/abort", headers=org.headers("alice:write"), json={"reason": "wrong build"}))
    assert aborted["state"] == "aborted" and aborted["message"] == "aborted by alice: wrong build"
    assert_problem(client.post(f"{url}/abort", headers=org.headers("alice:write")), 409)
    audit = ok(client.get(f"{API}/audit", headers=org.headers("root:admin"), params={"kind": "Deployment"}))
    assert [(e["action"], e["actor"]) for e in reversed(audit["items"])] == [
        ("create", "alice"),
        ("promote", "bob"),
        ("abort", "alice"),
    ]
    detail = ok(client.get(url, headers=org.headers("carol:write")))
    assert [s["type"] for s in detail["steps"]][-3:] == ["deploy.gate.checked", "deploy.aborting", "deploy.aborted"]
    assert any(s["type"] == "deploy.promoted" and s["actor"] == "bob" for s in detail["steps"])


# ------------------------------------------------------------------------------------------------ the gate


def test_the_real_gate_is_asked_and_records_the_check(client, org, target, db):
    deployment = ok(start(client, org, version="v2"), 201)
    checked = [step for step in deployment["steps"] if step["type"] == "deploy.gate.checked"]
    assert checked[0]["data"]["phase"] == "pre_deploy"
    assert checked[0]["data"]["decision"] in ("allow", "warn")
    assert gate.gate_function() is not None  # the policy domain is installed here
    from relia.policy.models import GateCheck

    with db.reader() as session:
        recorded = session.scalars(select(GateCheck)).all()
    assert [(check.phase, check.version) for check in recorded][:1] == [("pre_deploy", "v2")]


def test_a_spent_budget_blocks_the_start_and_the_refusal_is_kept(client, org, target, db, clock):
    from tests.policy.support import Worker, create_slo, exhaust

    alice = org.headers("alice:write")
    create_slo(client, alice)
    exhaust(client, alice, clock, Worker(db, clock))
    before = counts(db)
    problem = assert_problem(start(client, org, version="v2"), 409)
    assert problem["type"] == "urn:relia:problem:release-blocked"
    assert problem["gate"]["decision"] == "block" and problem["gate"]["reasons"]
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 0
        blocked = session.scalars(select(TimelineEvent).where(TimelineEvent.type == "deploy.blocked")).all()
    assert len(blocked) == 1 and "refused by the release gate" in blocked[0].summary
    assert counts(db)[1] == before[1]  # no deployment; the refusal itself is on the timeline
    # Security fixes are exempt under the built-in policy: that release may go.
    ok(start(client, org, version="v2.0.1", changeType="security"), 201)


def test_the_gate_is_checked_again_before_the_switch(client, org, manual, db, clock):
    from tests.policy.support import Worker, create_slo, exhaust

    alice = org.headers("alice:write")
    create_slo(client, alice)
    deployment = ok(start(client, org, version="v2"), 201)
    assert deployment["state"] == "awaiting_promotion"
    exhaust(client, alice, clock, Worker(db, clock))  # the budget runs out while it waits
    aborted = ok(client.post(f"{API}/deployments/{deployment['id']}/promote", headers=alice))
    assert aborted["state"] == "aborted"
    assert aborted["message"].startswith("the release gate blocks the switch")
    checks = [step["data"] for step in aborted["steps"] if step["type"] == "deploy.gate.checked"]
    decisions = [(check["phase"], check["decision"]) for check in checks]
    assert decisions == [("pre_deploy", "allow"), ("pre_switch", "block")]


def test_without_the_policy_module_every_release_is_allowed_and_the_step_says_so(client, org, target, monkeypatch):
    monkeypatch.setattr(gate, "gate_function", lambda: None)
    deployment = ok(start(client, org, version="v2"), 201)
    checked = next(step for step in deployment["steps"] if step["type"] == "deploy.gate.checked")
    assert checked["summary"] == (
        "Release gate checked before the deployment: allow (no release gate is installed (the policy module is absent))"
    )


def test_a_warning_from_the_gate_is_shown_and_the_deployment_goes_on(client, org, target, monkeypatch, db, clock):
    @dataclass(frozen=True)
    class Reason:  # shaped like the policy domain's GateReason
        code: str
        message: str

    @dataclass(frozen=True)
    class Answer:
        decision: str
        reasons: tuple[Reason, ...]

    warning = Answer("warn", (Reason("policy-warning", "checkout has 20 % of its budget left"),))

    monkeypatch.setattr(gate, "gate_function", lambda: lambda session, **_: warning)
    deployment = ok(start(client, org, version="v2"), 201)
    checked = next(step for step in deployment["steps"] if step["type"] == "deploy.gate.checked")
    assert checked["data"]["decision"] == "warn"
    assert checked["data"]["reasons"] == [{"code": "policy-warning", "message": "checkout has 20 % of its budget left"}]
    assert "warn (checkout has 20 % of its budget left)" in checked["summary"]
    assert read(db, deployment["id"]).state == State.switching
    assert "deploy.gate.checked" in step_types(db, deployment["id"])
    drive(db, clock, deployment["id"], lambda d: d.action_attempts >= 1)  # the switch webhook is tried
