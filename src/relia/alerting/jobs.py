"""The alerting domain's worker entry points and hook subscriptions (this module is in ``JOB_MODULES``, so the
API and the worker processes both register them):

* durable timers: a group's quiet period (auto-resolve), the end of a snooze, the end of a silence;
* Relia's own burn-rate alerts: ``slo.alert.fired`` / ``slo.alert.resolved`` become alerts and groups in the
  SLO evaluator's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from relia.alerting import groups, intake, service
from relia.core import hooks
from relia.core.timers import timer_handler


@timer_handler(groups.AUTO_RESOLVE_TIMER)
def auto_resolve(session: Session, payload: dict[str, Any], now: datetime) -> datetime | None:
    quiet = timedelta(seconds=int(payload["quiet_seconds"]))
    return groups.auto_resolve(session, group_id=int(payload["group_id"]), quiet=quiet, now=now)


@timer_handler(groups.SNOOZE_TIMER)
def snooze_ended(session: Session, payload: dict[str, Any], now: datetime) -> datetime | None:
    return groups.wake(session, group_id=int(payload["group_id"]), now=now)


@timer_handler(service.SILENCE_TIMER)
def silence_ended(session: Session, payload: dict[str, Any], now: datetime) -> datetime | None:
    return service.silence_ended(session, silence_id=int(payload["silence_id"]), now=now)


def _accept_slo_alert(session: Session, fired: bool, payload: dict[str, Any]) -> None:
    intake.accept_slo_event(
        session,
        fired=fired,
        service_id=int(payload["service_id"]),
        slo=str(payload["slo"]),
        objective=str(payload["objective"]),
        summary=str(payload.get("summary") or ""),
        now=payload["at"],
        data=payload.get("data"),
    )


@hooks.subscribe("slo.alert.fired")
def slo_alert_fired(session: Session, **payload: Any) -> None:
    _accept_slo_alert(session, True, payload)


@hooks.subscribe("slo.alert.resolved")
def slo_alert_resolved(session: Session, **payload: Any) -> None:
    _accept_slo_alert(session, False, payload)
