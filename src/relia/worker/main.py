"""`relia worker`: the huey consumer plus the engine loop that ticks every few seconds.

The tick is what advances every durable timer and delivers the outbox; huey tasks only ask for a tick sooner.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from huey import Huey
from sqlalchemy import select

from relia import domains
from relia.core import engine
from relia.core.clock import Clock, clock_from_environment
from relia.core.db import Database
from relia.core.models import WorkerHeartbeat
from relia.core.settings import Settings
from relia.worker.queue import make_huey, register_tick_now

log = structlog.get_logger("relia.worker")


@dataclass
class EngineLoop:
    """Runs ``engine.run_tick`` every ``interval`` seconds (or sooner when woken), and keeps a heartbeat."""

    db: Database
    clock: Clock
    interval: float
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)

    def tick_once(self, scheduled: float | None = None) -> engine.TickReport:
        lag = max(0.0, time.monotonic() - scheduled) if scheduled is not None else 0.0
        report = engine.run_tick(self.db, self.clock)
        self._heartbeat(lag, report.total_seconds)
        return report

    def _heartbeat(self, lag: float | None, duration: float | None) -> None:
        """Record that this worker is alive; with a lag and duration, that it just ticked."""
        now = self.clock.now()
        with self.db.transaction() as session:
            row = session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id)).first()
            if row is None:
                row = WorkerHeartbeat(
                    worker_id=self.worker_id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=self.started_at,
                    last_seen_at=now,
                )
                session.add(row)
            row.last_seen_at = now
            if lag is not None and duration is not None:
                row.last_tick_at = now
                row.last_tick_lag_seconds = round(lag, 4)
                row.last_tick_duration_seconds = round(duration, 4)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        # Say we are here before the first tick, which may take a while (the evaluator's first recount).
        try:
            self._heartbeat(None, None)
        except Exception:
            log.exception("worker.heartbeat_failed")
        next_due = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick_once(scheduled=next_due)
            except Exception:
                log.exception("worker.tick_failed")
            next_due += self.interval
            now = time.monotonic()
            if next_due < now:  # we overran: do not try to catch up with a burst of ticks
                next_due = now
            self._wake.wait(timeout=max(0.0, next_due - now))
            if self._wake.is_set() and not self._stop.is_set():
                self._wake.clear()
                next_due = time.monotonic()


def build_huey(settings: Settings, loop: EngineLoop | None) -> Huey:
    huey = make_huey(settings)

    register_tick_now(huey, loop.wake if loop is not None else None)
    return huey


def run_worker(settings: Settings, *, clock: Clock | None = None) -> None:
    domains.load_jobs()
    db = Database(settings.effective_database_url)
    loop = EngineLoop(db=db, clock=clock or clock_from_environment(), interval=settings.tick_interval_seconds)
    huey = build_huey(settings, loop)
    thread = threading.Thread(target=loop.run, name="relia-engine", daemon=True)
    thread.start()
    log.info(
        "worker.started",
        worker_id=loop.worker_id,
        tick_interval=settings.tick_interval_seconds,
        steps=engine.step_names(),
    )
    consumer = huey.create_consumer(
        workers=settings.worker_threads, worker_type="thread", periodic=False, graceful_signal="TERM"
    )
    try:
        consumer.run()
    finally:
        loop.stop()
        thread.join(timeout=30)
        db.dispose()
        log.info("worker.stopped", worker_id=loop.worker_id)
