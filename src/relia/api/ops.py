"""Relia observing itself: /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy import func, select, text
from starlette.responses import JSONResponse

from relia.api.deps import NO_CREDENTIALS, PrincipalDep
from relia.core import migrate
from relia.core.models import OutboxMessage, Timer, WorkerHeartbeat

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, dict[str, Any]]


@router.get("/healthz", summary="The process is up (no authentication)", openapi_extra=NO_CREDENTIALS)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Ready to serve: database reachable, migrations current, a worker ticking (no authentication)",
    responses={503: {"model": Readiness, "description": "Not ready; the failing checks say why"}},
    openapi_extra=NO_CREDENTIALS,
)
def readyz(request: Request) -> Readiness:
    state = request.app.state
    checks: dict[str, dict[str, Any]] = {}
    try:
        with state.db.reader() as session:
            session.execute(text("SELECT 1"))
            checks["database"] = {"ok": True}
            current = migrate.current_revision(state.db.engine)
            head = migrate.head_revision()
            checks["migrations"] = {"ok": current == head, "current": current, "head": head}
            newest = session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
            now = state.clock.now()
            stale_after = timedelta(seconds=state.settings.worker_stale_after_seconds)
            checks["worker"] = {
                "ok": newest is not None and now - newest <= stale_after,
                "lastSeen": newest.isoformat() if newest else None,
            }
    except Exception as exc:  # readiness must answer, whatever is broken
        checks.setdefault("database", {"ok": False, "error": type(exc).__name__})
    ready = all(check["ok"] for check in checks.values()) and {"database", "migrations", "worker"} <= set(checks)
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    if not ready:
        return JSONResponse(body.model_dump(), status_code=503)  # type: ignore[return-value]
    return body


class EngineCollector(Collector):
    """Queue depth, tick lag and outbox backlog, read when Prometheus scrapes."""

    def __init__(self, app_state: Any) -> None:
        self.state = app_state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue_depth = GaugeMetricFamily("relia_worker_queue_depth", "Tasks waiting in the huey queue")
        try:
            queue_depth.add_metric([], float(self.state.queue.pending_count()))
        except Exception:
            queue_depth.add_metric([], float("nan"))
        yield queue_depth
        lag = GaugeMetricFamily(
            "relia_worker_tick_lag_seconds", "How late the last engine tick started", labels=["worker"]
        )
        age = GaugeMetricFamily(
            "relia_worker_last_tick_age_seconds", "Seconds since the worker's last tick", labels=["worker"]
        )
        duration = GaugeMetricFamily(
            "relia_worker_tick_duration_seconds", "How long the last tick took", labels=["worker"]
        )
        outbox = GaugeMetricFamily("relia_outbox_messages", "Outbox messages by status", labels=["status"])
        timers = GaugeMetricFamily("relia_timers_due", "Durable timers already due")
        try:
            now = self.state.clock.now()
            with self.state.db.reader() as session:
                for row in session.scalars(select(WorkerHeartbeat)):
                    lag.add_metric([row.worker_id], row.last_tick_lag_seconds or 0.0)
                    duration.add_metric([row.worker_id], row.last_tick_duration_seconds or 0.0)
                    if row.last_tick_at is not None:
                        age.add_metric([row.worker_id], (now - row.last_tick_at).total_seconds())
                for status, count in session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                ):
                    outbox.add_metric([status], float(count))
                timers.add_metric([], float(session.scalar(select(func.count()).where(Timer.due_at <= now)) or 0))
        except Exception:
            pass
        yield from (lag, age, duration, outbox, timers)


@router.get(
    "/metrics",
    summary="Prometheus metrics (needs a read token)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, actor: PrincipalDep) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
