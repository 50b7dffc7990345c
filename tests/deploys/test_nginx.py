"""Blue-green through a real nginx: two backends on 127.0.0.1 (blue answers v1, green v2) behind an nginx master
of our own, a client loop sending requests the whole time, and deployments driven by the worker's steps on the
simulated clock through the ``nginx`` adapter. Skipped, with the reason, where nginx is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relia.deploys import service
from relia.deploys.rules import State
from tests.deploys import support
from tests.deploys.nginx_support import NGINX, NGINX_MISSING, UPSTREAM_NAME, Answer, ClientLoop, blue_green_stack
from tests.deploys.support import drive, health_check, read, start

pytestmark = pytest.mark.skipif(NGINX is None, reason=NGINX_MISSING)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator:
    with blue_green_stack(tmp_path / "nginx") as parts:
        yield parts


@pytest.fixture
def client(stack) -> Iterator[ClientLoop]:
    _, _, nginx = stack
    loop = ClientLoop(nginx.port, threads=2).start()
    try:
        loop.wait_for("v1")
        yield loop
    finally:
        loop.stop()


def nginx_target(db, clock, stack) -> None:
    blue, green, nginx = stack
    adapter = {
        "type": "nginx",
        "upstreamFile": str(nginx.upstream_file),
        "upstreamName": UPSTREAM_NAME,
        "testCommand": nginx.test_command,
        "reloadCommand": nginx.reload_command,
        "timeoutSeconds": 20,
    }
    target = support.spec(
        blue=(blue.address, blue.health_url),
        green=(green.address, green.health_url),
        adapter=adapter,
        checks=[health_check()],
        keep_warm="10m",
    )
    support.make_target(db, clock, target)


# nginx reloads gracefully: for a moment old workers (old upstream) and new ones (new upstream) both answer, so a
# switch shows a short window where answers of both versions interleave.
LONGEST_OVERLAP_SECONDS = 2.0


def assert_switched(answers: list[Answer], old: str, new: str) -> None:
    """``answers`` (around one switch) start with ``old`` and end with ``new``; both interleave only within a
    short window, and nothing else was answered."""
    bodies = [answer.body for answer in answers]
    assert set(bodies) == {old, new}, set(bodies)
    assert bodies[0] == old and bodies[-1] == new
    first_new = next(answer.at for answer in answers if answer.body == new)
    last_old = max(answer.at for answer in answers if answer.body == old)
    assert last_old - first_new < LONGEST_OVERLAP_SECONDS


def test_traffic_moves_to_green_without_a_failed_request_and_a_rollback_moves_it_back(db, clock, org, stack, client):
    blue, green, nginx = stack
    nginx_target(db, clock, stack)
    deployment_id = start(db, clock, version="v2")

    drive(db, clock, deployment_id, State.post_analysis)
    client.wait_for("v2")
    switched_at = len(client.snapshot())
    assert f"server {green.address};" in nginx.upstream_file.read_text()
    answered_before = green.requests
    drive(db, clock, deployment_id, State.keeping_warm)
    assert green.requests > answered_before  # green keeps serving through the post-promotion analysis

    support.act(db, clock, deployment_id, "abort")
    finished = drive(db, clock, deployment_id, State.rolled_back)
    client.wait_for("v1")
    client.stop()

    assert client.failures() == []
    answers = client.snapshot()
    assert_switched(answers[:switched_at], "v1", "v2")
    assert_switched(answers[switched_at - 20 :], "v2", "v1")
    assert len(answers) > 100
    assert f"server {blue.address};" in nginx.upstream_file.read_text()
    assert finished.outcome == "rolled_back"
    with db.reader() as session:
        assert service.get_target(session, "checkout").live_environment == "blue"
        switched = [step.summary for step in service.steps(session, deployment_id) if step.type == "deploy.switched"]
    assert "now sends traffic to green" in switched[0]
    assert "[emerg]" not in nginx.error_text() and "[alert]" not in nginx.error_text()


def test_a_deployment_that_completes_leaves_all_traffic_on_green(db, clock, org, stack, client):
    nginx_target(db, clock, stack)
    deployment_id = start(db, clock, version="v2")
    drive(db, clock, deployment_id, State.succeeded)
    client.wait_for("v2")
    client.stop()
    assert client.failures() == []
    assert_switched(client.snapshot(), "v1", "v2")


def test_a_failing_analysis_aborts_and_nothing_switches(db, clock, org, stack, client):
    _, green, nginx = stack
    green.health_status = 500  # green is broken: its health URL answers 500
    nginx_target(db, clock, stack)
    upstream_before = nginx.upstream_file.read_bytes()
    deployment_id = start(db, clock, version="v2")

    finished = drive(db, clock, deployment_id, State.aborted)
    client.stop()

    assert "pre-promotion analysis is failed (health)" in finished.message
    assert "deploy.switched" not in support.step_types(db, deployment_id)
    assert nginx.upstream_file.read_bytes() == upstream_before
    assert client.failures() == []
    assert {answer.body for answer in client.snapshot()} == {"v1"}
    assert green.requests == 0
    assert read(db, deployment_id).switched is False
