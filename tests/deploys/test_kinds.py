"""DeployTarget as config as code: apply, plan, references, and the live environment, which deployments move
without the declaration moving it back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from relia.core.models import TimelineEvent
from relia.deploys.rules import State
from tests.config.support import apply_ok, changed, document, post
from tests.deploys.support import drive

TARGET = document(
    "DeployTarget",
    "checkout",
    """  service: checkout
  environments:
    blue: {upstream: "10.0.1.10:8080", healthUrl: "http://10.0.1.10:8080/healthz"}
    green: {upstream: "10.0.1.11:8080", healthUrl: "http://10.0.1.11:8080/healthz"}
  live: blue
  adapter: {type: http, switch: "http://127.0.0.1:9/switch", retries: 0}
  analysis:
    checks:
      - {name: burn, type: sloBurn, slo: checkout-availability, maxBurnRate: 2, phases: [post]}
  keepWarm: 0s
""",
)
SLO = document(
    "SLO",
    "checkout-availability",
    """  service: checkout
  indicator: {ratio: {}}
  window: {rolling: 28d}
  objectives: [{target: 0.99}]
""",
)


def test_a_target_is_applied_and_then_unchanged(client, org):
    alice = org.headers("alice:write")
    first = apply_ok(client, alice, {"deploys.yaml": f"{TARGET}---\n{SLO}"})
    assert ("create", "DeployTarget", "checkout") in changed(first)
    again = post(client, "plan", alice, {"deploys.yaml": f"{TARGET}---\n{SLO}"}).json()
    assert changed(again) == []
    target = client.get("/api/v1/deploy-targets/checkout", headers=alice).json()
    assert target["spec"]["analysis"]["checks"][0]["slo"] == "checkout-availability"


def test_a_target_naming_a_missing_slo_is_refused_with_its_line(client, org):
    response = post(client, "plan", org.headers("alice:write"), {"deploys.yaml": TARGET})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["file"] == "deploys.yaml" and error["kind"] == "DeployTarget"
    assert error["path"] == "spec.analysis.checks.0.slo"
    assert "checkout-availability" in error["message"]


def plain_target(webhook: str, live: str) -> str:
    return document(
        "DeployTarget",
        "checkout",
        f"""  service: checkout
  environments:
    blue: {{upstream: "10.0.1.10:8080"}}
    green: {{upstream: "10.0.1.11:8080"}}
  live: {live}
  adapter: {{type: http, switch: "{webhook}"}}
  keepWarm: 0s
""",
    )


@pytest.fixture
def webhook() -> Iterator[str]:
    """A switch webhook that always answers 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/switch"
    server.shutdown()
    server.server_close()


def test_reapplying_after_a_deployment_never_moves_the_live_environment_back(db, clock, client, org, webhook):
    alice = org.headers("alice:write")
    apply_ok(client, alice, {"deploys.yaml": plain_target(webhook, "blue")})
    deployment = client.post("/api/v1/deployments", headers=alice, json={"service": "checkout", "version": "v2"}).json()
    assert drive(db, clock, deployment["id"], State.succeeded).outcome == "succeeded"

    # The file still says blue; green is live. Nothing to plan, nothing moved by applying it again.
    assert changed(post(client, "plan", alice, {"deploys.yaml": plain_target(webhook, "blue")}).json()) == []
    apply_ok(client, alice, {"deploys.yaml": plain_target(webhook, "blue")})
    assert client.get("/api/v1/deploy-targets/checkout", headers=alice).json()["live"] == "green"
    assert _declared(db) == []

    # Declaring another value records a switch made outside Relia (and says no traffic moved).
    apply_ok(client, alice, {"deploys.yaml": plain_target(webhook, "green")})  # what is true already: no event
    assert _declared(db) == []
    apply_ok(client, alice, {"deploys.yaml": plain_target(webhook, "blue")})
    assert client.get("/api/v1/deploy-targets/checkout", headers=alice).json()["live"] == "blue"
    assert _declared(db) == ["alice declared blue live for checkout (target checkout); no traffic was moved"]


def _declared(db) -> list[str]:
    with db.reader() as session:
        return list(session.scalars(select(TimelineEvent.summary).where(TimelineEvent.type == "deploy.live.declared")))
