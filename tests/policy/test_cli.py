"""`relia gate check` exit codes (0 allow or warn, 1 block, 2 no answer) on the local database and against a
real server, and the policy, override and report verbs."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_token
from tests.policy.support import Worker, create_slo, exhaust


@pytest.fixture
def frozen(client, org, db, clock):  # type: ignore[no-untyped-def]
    """checkout frozen by the built-in default policy."""
    alice = org.headers("alice:write")
    create_slo(client, alice)
    exhaust(client, alice, clock, Worker(db, clock))
    return org


def test_gate_check_exit_codes_on_the_local_database(relia, frozen):
    blocked = relia("gate", "check", "--service", "checkout", "--version", "v2", "--change-type", "feature")
    assert blocked.exit_code == 1, blocked.output
    assert "BLOCK checkout v2 (feature, pre_deploy)" in blocked.stdout
    assert "frozen: checkout is frozen by policy default" in blocked.stdout

    security = relia("gate", "check", "--service", "checkout", "--version", "v2", "--change-type", "security")
    assert security.exit_code == 0 and "WARN" in security.stdout and "exempt" in security.stdout

    allowed = relia("gate", "check", "--service", "ranker", "--version", "v7", "--change-type", "feature", "-o", "json")
    assert allowed.exit_code == 0
    assert json.loads(allowed.stdout)["decision"] == "allow"

    unknown = relia("gate", "check", "--service", "nope", "--change-type", "feature")
    assert unknown.exit_code == 2 and "There is no service 'nope'" in unknown.stderr
    bad = relia("gate", "check", "--service", "checkout", "--change-type", "Not A Type")
    assert bad.exit_code == 2 and "changeType" in bad.stderr
    missing = relia("gate", "check", "--service", "checkout")
    assert missing.exit_code == 2  # a usage error


def test_gate_check_against_a_server_as_ci_calls_it(relia, frozen, server, db, clock):
    token = make_token(db, clock, "bob", "read")
    args = ("gate", "check", "--service", "checkout", "--change-type")
    blocked = relia(*args, "feature", "--version", "v3", url=server.url, token=token)
    assert blocked.exit_code == 1, blocked.output
    assert "BLOCK" in blocked.stdout
    rollback = relia(*args, "rollback", "--version", "v1", url=server.url, token=token)
    assert rollback.exit_code == 0 and "WARN" in rollback.stdout
    # The version defaults to the CI's commit.
    from_ci = relia(*args, "feature", "-o", "json", url=server.url, token=token, GITHUB_SHA="abc123")
    assert from_ci.exit_code == 1 and json.loads(from_ci.stdout)["version"] == "abc123"

    assert relia(*args, "feature", url=server.url, token="relia_000000000000_wrong").exit_code == 2
    assert relia(*args, "feature", url=server.url).exit_code == 2  # no token
    unreachable = relia(*args, "feature", url="http://127.0.0.1:9", token=token)
    assert unreachable.exit_code == 2 and "Cannot reach Relia" in unreachable.stderr

    checks = relia("gate", "history", "--service", "checkout", "-o", "json")
    assert [item["requestedBy"] for item in json.loads(checks.stdout)][:3] == ["bob", "bob", "bob"]


def test_policy_override_and_report_verbs(relia, frozen, db, clock):
    bob, alice = make_token(db, clock, "bob", "write"), make_token(db, clock, "alice", "write")
    listed = relia("policy", "list")
    assert listed.exit_code == 0 and "default (built in)" in listed.stdout and "checkout (active)" in listed.stdout
    status = relia("policy", "status")
    assert status.exit_code == 0 and "checkout" in status.stdout and "frozen" in status.stdout

    requested = relia(
        "policy", "override", "request", "--service", "checkout", "--version", "v2", "--reason", "hotfix", token=bob
    )
    assert requested.exit_code == 0, requested.output
    override_id = requested.stdout.split("#")[1].split()[0]
    own = relia("policy", "override", "approve", override_id, token=bob)
    assert own.exit_code == 1 and "second person" in own.stderr
    approved = relia("policy", "override", "approve", override_id, "--note", "ok", token=alice)
    assert approved.exit_code == 0 and "approved" in approved.stdout
    through = relia("gate", "check", "--service", "checkout", "--version", "v2", "--change-type", "feature")
    assert through.exit_code == 0 and "override" in through.stdout
    overrides = relia("policy", "override", "list", "-o", "json")
    assert [item["status"] for item in json.loads(overrides.stdout)] == ["approved"]

    report = relia("report", "velocity", "--service", "checkout", "--period", "7d")
    assert report.exit_code == 0, report.output
    assert "slow down" in report.stdout and "Gate checks: 0 allowed, 1 warned, 0 blocked" in report.stdout
    assert relia("report", "velocity", "--service", "checkout", "--period", "2y").exit_code == 1
