"""Helpers for the deployment tests: target specs, a recording command adapter, and a driver that runs the
worker's two deploy steps (the timers, then the action runner) on the simulated clock."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from relia.core import timers
from relia.core.auth import Principal
from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.core.models import TimelineEvent
from relia.deploys import jobs, service
from relia.deploys.models import Deployment
from relia.deploys.rules import State
from relia.deploys.runner import ActionRunner
from relia.deploys.schemas import DeploymentCreate, DeployTargetSpec

OPERATOR = Principal.system("test-operator")

# A command adapter that records every call (its RELIA_* environment) and fails while a file named after the
# action exists (``fail-switch``, ``fail-rollback``, ...), so a test decides which calls fail.
RECORDER = """\
import json, os, sys
directory = sys.argv[1]
action = os.environ["RELIA_ACTION"]
with open(os.path.join(directory, "calls.jsonl"), "a") as log:
    log.write(json.dumps(dict(os.environ)) + "\\n")
if os.path.exists(os.path.join(directory, "fail-" + action)):
    print(action + " refused on purpose")
    sys.exit(3)
print(action + " done")
"""


@dataclass
class Recorder:
    directory: Path

    @classmethod
    def create(cls, directory: Path) -> Recorder:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "recorder.py").write_text(RECORDER)
        return cls(directory)

    @property
    def command(self) -> list[str]:
        return [sys.executable, str(self.directory / "recorder.py"), str(self.directory)]

    def fail(self, action: str, failing: bool = True) -> None:
        path = self.directory / f"fail-{action}"
        if failing:
            path.write_text("")
        else:
            path.unlink(missing_ok=True)

    def calls(self) -> list[dict[str, str]]:
        log = self.directory / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def actions(self) -> list[tuple[str, str]]:
        """(action, environment) of each call, in order."""
        return [(call["RELIA_ACTION"], call["RELIA_ENVIRONMENT"]) for call in self.calls()]

    def adapter(self, *, deploy: bool = True, retire: bool = True, retries: int = 0) -> dict[str, Any]:
        adapter: dict[str, Any] = {"type": "command", "switch": self.command, "timeoutSeconds": 20, "retries": retries}
        if deploy:
            adapter["deploy"] = self.command
        if retire:
            adapter["retire"] = self.command
        return adapter


def spec(
    *,
    service_slug: str = "checkout",
    blue: tuple[str, str | None] = ("127.0.0.1:9101", None),
    green: tuple[str, str | None] = ("127.0.0.1:9102", None),
    adapter: dict[str, Any] | None = None,
    checks: Iterable[dict[str, Any]] = (),
    analysis: dict[str, Any] | None = None,
    promotion: dict[str, Any] | None = None,
    keep_warm: str = "5m",
    live: str = "blue",
) -> DeployTargetSpec:
    return DeployTargetSpec.model_validate(
        {
            "service": service_slug,
            "environments": {
                "blue": {"upstream": blue[0], "healthUrl": blue[1]},
                "green": {"upstream": green[0], "healthUrl": green[1]},
            },
            "live": live,
            "adapter": adapter or {"type": "http", "switch": "http://127.0.0.1:9/switch"},
            "analysis": {"interval": "10s", "count": 2, **(analysis or {}), "checks": list(checks)},
            "promotion": promotion or {},
            "keepWarm": keep_warm,
        }
    )


def health_check(name: str = "health", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "http", **extra}


def make_target(db: Database, clock: SimulatedClock, target: DeployTargetSpec, name: str = "checkout") -> None:
    with db.transaction() as session:
        service.upsert_target(session, actor=OPERATOR, name=name, spec=target, now=clock.now())


def start(
    db: Database,
    clock: SimulatedClock,
    *,
    version: str = "v2",
    service_slug: str = "checkout",
    actor: Principal = OPERATOR,
    **extra: Any,
) -> int:
    data = DeploymentCreate.model_validate({"service": service_slug, "version": version, **extra})
    with db.transaction() as session:
        return service.start_deployment(session, actor=actor, data=data, now=clock.now()).id


def act(db: Database, clock: SimulatedClock, deployment_id: int, verb: str, actor: Principal = OPERATOR) -> None:
    with db.transaction() as session:
        service.act(session, actor=actor, deployment_id=deployment_id, verb=verb, now=clock.now())


def read(db: Database, deployment_id: int) -> Deployment:
    with db.reader() as session:
        return service.get_deployment(session, deployment_id)


def step_types(db: Database, deployment_id: int) -> list[str]:
    with db.reader() as session:
        return [step.type for step in service.steps(session, deployment_id)]


def timeline_types(db: Database) -> list[str]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(TimelineEvent.type).where(TimelineEvent.type.startswith("deploy.")).order_by(TimelineEvent.id)
            )
        )


def tick(db: Database, clock: SimulatedClock, runner: ActionRunner | None = None) -> None:
    """What the worker's engine tick does for deployments: due timers first, then due actions."""
    timers.run_due(db, clock)
    (runner or jobs.runner).tick(db, clock)


def drive(
    db: Database,
    clock: SimulatedClock,
    deployment_id: int,
    until: State | Iterable[State] | Callable[[Deployment], bool],
    *,
    step: timedelta = timedelta(seconds=5),
    max_ticks: int = 400,
    on_tick: Callable[[Deployment], None] | None = None,
) -> Deployment:
    """Tick and advance the clock by ``step`` until the deployment satisfies ``until``; returns it."""
    if callable(until):
        done = until
    else:
        wanted = {until} if isinstance(until, State) else set(until)
        done = lambda deployment: State(deployment.state) in wanted  # noqa: E731
    for _ in range(max_ticks):
        deployment = read(db, deployment_id)
        if done(deployment):
            return deployment
        tick(db, clock)
        deployment = read(db, deployment_id)
        if on_tick is not None:
            on_tick(deployment)
        if done(deployment):
            return deployment
        clock.advance(step)
    raise AssertionError(f"deployment {deployment_id} is still {read(db, deployment_id).state}: {until}")
