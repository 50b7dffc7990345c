"""The deploys domain's worker entry points: the action runner (a tick step, right after the timers) and the
handler of the deployments' deadline timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.engine import tick_step
from relia.core.errors import NotFound
from relia.core.timers import timer_handler
from relia.deploys import machine
from relia.deploys.runner import ActionRunner

runner = ActionRunner()


@timer_handler(machine.DEADLINE_TIMER)
def deadline_reached(session: Session, payload: dict[str, Any], now: datetime) -> datetime | None:
    """A manual promotion ran out of time, or keep-warm ended. The timer tick holds the timer row already, so only
    the deployment is locked here (the machine's lock order)."""
    try:
        deployment = machine.lock_deployment_row(session, int(payload["deployment"]))
    except NotFound:
        return None
    return machine.on_deadline(session, deployment, now)


@tick_step("deploys.actions", order=20)
def run_actions(db: Database, clock: Clock) -> object:
    """Adapter calls and analysis measurements that are due; after the timers, so a deadline that armed an action
    has it done in the same tick."""
    return runner.tick(db, clock)
