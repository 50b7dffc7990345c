"""`relia deploy start|status|promote|resume|abort|targets`, in local mode on the test database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relia.deploys import gate
from tests.deploys import support


def make_target(db, clock, **promotion: Any) -> None:
    target = support.spec(adapter={"type": "http", "switch": "http://127.0.0.1:9/switch"}, promotion=promotion or None)
    support.make_target(db, clock, target)


def test_start_then_status_then_abort(relia, db, clock, org):
    make_target(db, clock, mode="manual", timeout="1h")
    started = relia("deploy", "start", "--service", "checkout", "--version", "v2.3.0", "--var", "IMAGE=reg/c:2.3.0")
    assert started.exit_code == 0, started.stderr
    assert "Deployment 1: v2.3.0 to green of checkout (blue is live)" in started.stdout
    assert "relia deploy status 1" in started.stdout

    listed = relia("deploy", "status")
    assert listed.exit_code == 0 and "v2.3.0" in listed.stdout and "awaiting promotion" in listed.stdout

    shown = relia("deploy", "status", "1")
    assert shown.exit_code == 0, shown.stderr
    assert "You may: relia deploy promote|abort 1" in shown.stdout
    for step in ("deploy.started", "deploy.gate.checked", "deploy.deployed", "deploy.promotion.awaiting"):
        assert step in shown.stdout

    as_json = json.loads(relia("deploy", "status", "1", "-o", "json").stdout)
    assert as_json["variables"] == {"IMAGE": "reg/c:2.3.0"} and as_json["state"] == "awaiting_promotion"

    refused = relia("deploy", "resume", "1")
    assert refused.exit_code == 1
    assert "only a paused deployment can be resumed" in refused.stderr

    aborted = relia("deploy", "abort", "1", "--reason", "wrong branch")
    assert aborted.exit_code == 0 and "Deployment 1: ■ aborted" in aborted.stdout
    assert relia("deploy", "status").stdout.strip() == "No deployments under way."
    history = relia("deploy", "status", "--service", "checkout")
    assert "aborted" in history.stdout


def test_targets(relia, db, clock, org):
    make_target(db, clock)
    listed = relia("deploy", "targets", "-o", "json")
    assert json.loads(listed.stdout) == [
        {
            "target": "checkout",
            "service": "checkout",
            "live": "blue",
            "blue": None,
            "green": None,
            "adapter": "http",
            "underWay": None,
        }
    ]


def test_wait_stops_when_a_person_must_decide(relia, db, clock, org):
    make_target(db, clock, mode="manual", timeout="1h")
    waited = relia("deploy", "start", "-s", "checkout", "-v", "v2", "--wait")
    assert waited.exit_code == 3
    assert "Waiting for a person: relia deploy promote|resume|abort 1" in waited.stdout
    assert "deploy.promotion.awaiting" in waited.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--var", "IMAGE"], "give NAME=VALUE"),
        (["--var", "image=x"], "variable names are upper-case"),
        (["--version", "v 2"], "version"),
    ],
)
def test_bad_starts_say_why_and_change_nothing(relia, db, clock, org, args, words):
    make_target(db, clock)
    base = ["deploy", "start", "--service", "checkout", "--version", "v2"]
    result = relia(*base, *args)
    assert result.exit_code in (1, 2)
    assert words in result.stderr
    assert relia("deploy", "status", "--service", "checkout").stdout.strip() == "No deployments of checkout."


def test_a_blocked_release_prints_the_gates_reasons(relia, db, clock, org, monkeypatch):
    make_target(db, clock)

    class Answer:
        decision = "block"
        reasons = ("checkout is frozen by policy default: its budget is spent",)

    monkeypatch.setattr(gate, "gate_function", lambda: lambda session, **_: Answer())
    result = relia("deploy", "start", "--service", "checkout", "--version", "v2")
    assert result.exit_code == 1
    assert "Release blocked by the gate (409)" in result.stderr
    assert "gate: checkout is frozen by policy default: its budget is spent" in result.stderr
