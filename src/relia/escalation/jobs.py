"""Worker entry points of the escalation domain: its timer handlers, and its subscriptions to the alerting
domain's group transitions (in the module list of ``relia.domains`` so both the API and the worker register
them: a transition may happen in either).

The subscriptions run in the emitter's transaction. The alerting domain announces::

    alert.group.opened        group_id, service_id
    alert.group.acknowledged  group_id, user_id
    alert.group.resolved      group_id, user_id (or None)
    alert.group.snoozed       group_id, until
    alert.group.reopened      group_id

and may add ``at`` (the instant, from its injected clock, as the SLO evaluator's events do) and ``title``. Without
``at`` the system clock is used, which is wrong under a simulated clock: emitters should pass it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.core import hooks
from relia.core.clock import SystemClock, utc
from relia.core.timers import timer_handler
from relia.escalation import service
from relia.escalation.models import Escalation

log = structlog.get_logger("relia.escalation")


def _instant(event: str, at: datetime | None) -> datetime:
    if at is not None:
        return utc(at)
    log.warning("escalation.event_without_time", event=event, hint="emit with at=now (the injected clock)")
    return SystemClock().now()


def _title(details: dict[str, Any]) -> str | None:
    for key in ("title", "summary"):
        value = details.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@hooks.subscribe("alert.group.opened")
def on_group_opened(
    session: Session, *, group_id: int, service_id: int | None, at: datetime | None = None, **details: Any
) -> None:
    service.open_group(
        session,
        group_id=group_id,
        service_id=service_id,
        now=_instant("alert.group.opened", at),
        title=_title(details),
    )


@hooks.subscribe("alert.group.acknowledged")
def on_group_acknowledged(
    session: Session, *, group_id: int, user_id: int | None = None, at: datetime | None = None, **_: Any
) -> None:
    service.acknowledge_group(session, group_id=group_id, user_id=user_id, now=_instant("alert.group.acknowledged", at))


@hooks.subscribe("alert.group.resolved")
def on_group_resolved(
    session: Session, *, group_id: int, user_id: int | None = None, at: datetime | None = None, **_: Any
) -> None:
    service.resolve_group(session, group_id=group_id, user_id=user_id, now=_instant("alert.group.resolved", at))


@hooks.subscribe("alert.group.snoozed")
def on_group_snoozed(session: Session, *, group_id: int, until: datetime, at: datetime | None = None, **_: Any) -> None:
    service.snooze_group(session, group_id=group_id, until=utc(until), now=_instant("alert.group.snoozed", at))


@hooks.subscribe("alert.group.reopened")
def on_group_reopened(
    session: Session,
    *,
    group_id: int,
    service_id: int | None = None,
    at: datetime | None = None,
    **details: Any,
) -> None:
    if service_id is None:
        # The event names the group only; an escalation row knows its service.
        service_id = session.scalar(select(Escalation.service_id).where(Escalation.group_id == group_id))
    service.reopen_group(
        session,
        group_id=group_id,
        service_id=service_id,
        now=_instant("alert.group.reopened", at),
        title=_title(details),
    )


@timer_handler(service.STEP_TIMER)
def step_due(session: Session, payload: dict[str, Any], now: datetime) -> None:
    service.run_step(session, payload, now)


@timer_handler(service.RULE_TIMER)
def rule_due(session: Session, payload: dict[str, Any], now: datetime) -> None:
    service.run_rule(session, payload, now)


@timer_handler(service.ACK_TIMEOUT_TIMER)
def ack_timeout_due(session: Session, payload: dict[str, Any], now: datetime) -> None:
    service.ack_timed_out(session, payload, now)


@timer_handler(service.SNOOZE_END_TIMER)
def snooze_end_due(session: Session, payload: dict[str, Any], now: datetime) -> None:
    service.snooze_ended(session, payload, now)
