"""The API's gate cache (relia.policy.gate) on both databases: this process's changes show in the next answer;
another process's (a worker elsewhere) once the generations are read again, with the old snapshot answering
meanwhile for at most the stale grace; an unknown service is a 404 naming the field, warm or cold."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relia.core.db import Database
from relia.policy import gate as gate_cache
from tests.policy.support import API, Worker, burn, create_slo, exhaust, gate, good_hours


@pytest.fixture
def other_worker(database_url, clock):  # type: ignore[no-untyped-def]
    """A worker in another process: its own Database, so its commits are not this process's."""
    other = Database(database_url)
    yield Worker(other, clock)
    other.dispose()


def test_another_process_s_freeze_shows_once_the_generations_are_read_again(
    client, app, org, clock, other_worker, monkeypatch
):
    writer, reader = org.headers("alice:write"), org.headers("carol:write")
    create_slo(client, writer)
    good_hours(client, writer, clock, other_worker)
    assert gate(client, reader)["decision"] == "allow"  # the snapshot is read

    burn(client, writer, clock, other_worker)  # freezes checkout (the built-in default), in the other process
    assert gate(client, reader)["decision"] == "allow"  # its generations are still fresh here: the old answer

    cache = app.state.gate_input_cache
    monkeypatch.setattr(app.state.generation_cache, "max_age", 0.0)
    # Not fresh any more, but confirmed less than the grace ago: the old snapshot answers while a thread reads
    # the new one.
    assert gate(client, reader)["decision"] == "allow"
    with cache._refreshing:  # held by the refresh until it is done
        pass
    assert gate(client, reader)["decision"] == "block"


def test_without_grace_another_process_s_change_shows_in_the_next_answer(
    client, app, org, clock, other_worker, monkeypatch
):
    writer, reader = org.headers("alice:write"), org.headers("carol:write")
    create_slo(client, writer)
    good_hours(client, writer, clock, other_worker)
    assert gate(client, reader)["decision"] == "allow"
    burn(client, writer, clock, other_worker)
    monkeypatch.setattr(app.state.generation_cache, "max_age", 0.0)
    monkeypatch.setattr(gate_cache, "STALE_GRACE_SECONDS", 0.0)
    blocked = gate(client, reader)
    assert blocked["decision"] == "block" and blocked["reasons"][0]["services"] == ["checkout"]


def test_this_process_s_override_decision_shows_at_once(client, org, clock, db):
    writer, approver, reader = org.headers("alice:write"), org.headers("bob:write"), org.headers("carol:write")
    create_slo(client, writer)
    exhaust(client, writer, clock, Worker(db, clock))
    assert gate(client, reader, version="v9")["decision"] == "block"
    override = client.post(
        f"{API}/overrides",
        headers=writer,
        json={"service": "checkout", "version": "v9", "reason": "hotfix", "duration": "1h"},
    )
    assert override.status_code == 201, override.text
    assert gate(client, reader, version="v9")["decision"] == "block"  # pending: not yet
    approved = client.post(f"{API}/overrides/{override.json()['id']}/approve", headers=approver, json={})
    assert approved.status_code == 200, approved.text
    through = gate(client, reader, version="v9")
    assert through["decision"] == "warn" and through["override"] == override.json()["id"]
    # It lets exactly that version through, and no longer than its time box.
    assert gate(client, reader, version="v10")["decision"] == "block"
    clock.advance(timedelta(hours=1, minutes=1))
    assert gate(client, reader, version="v9")["decision"] == "block"


@pytest.mark.parametrize("warm", [False, True])
def test_an_unknown_service_is_a_404_naming_the_field(client, org, warm):
    reader = org.headers("carol:write")
    if warm:
        assert (
            client.post(
                f"{API}/gates/check",
                headers=reader,
                json={"service": "checkout", "version": "v1", "changeType": "feature"},
            ).status_code
            == 200
        )
    response = client.post(
        f"{API}/gates/check", headers=reader, json={"service": "nowhere", "version": "v1", "changeType": "feature"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["path"] for error in response.json()["errors"]] == ["service"]
