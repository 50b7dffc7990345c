"""Durable timers: every piece of future work is a row with a ``due_at``; the worker's tick runs due ones.

Each due timer is handled in its own transaction, claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
(SQLite's ``BEGIN IMMEDIATE`` serialises writers), so many workers can cooperate and a crash loses nothing:
the row stays until the transaction that handled it commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.models import Timer

log = structlog.get_logger("relia.timers")

# A handler does its work in the session it is given; it returns a new due time to fire again, or None.
TimerHandler = Callable[[Session, dict[str, Any], datetime], datetime | None]
_handlers: dict[str, TimerHandler] = {}

RETRY_BASE = timedelta(seconds=15)
RETRY_CAP = timedelta(minutes=30)


def timer_handler(kind: str) -> Callable[[TimerHandler], TimerHandler]:
    def register(fn: TimerHandler) -> TimerHandler:
        _handlers[kind] = fn
        return fn

    return register


def schedule(
    session: Session, *, kind: str, key: str, due_at: datetime, payload: dict[str, Any], now: datetime
) -> Timer:
    """Create the timer, or move an existing one with the same (kind, key) to the new time and payload."""
    existing = session.scalars(select(Timer).where(Timer.kind == kind, Timer.key == key)).one_or_none()
    if existing is not None:
        existing.due_at = due_at
        existing.payload = payload
        existing.attempts = 0
        existing.last_error = None
        return existing
    timer = Timer(kind=kind, key=key, due_at=due_at, payload=payload, created_at=now)
    session.add(timer)
    return timer


def cancel(session: Session, *, kind: str, key: str) -> None:
    session.execute(delete(Timer).where(Timer.kind == kind, Timer.key == key))


def run_due(db: Database, clock: Clock, *, limit: int = 200) -> int:
    """Handle up to ``limit`` due timers; returns how many fired."""
    fired = 0
    for _ in range(limit):
        with db.transaction() as session:
            now = clock.now()
            timer = session.scalars(
                select(Timer)
                .where(Timer.due_at <= now)
                .order_by(Timer.due_at, Timer.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if timer is None:
                return fired
            handler = _handlers.get(timer.kind)
            try:
                if handler is None:
                    raise LookupError(f"no handler registered for timer kind {timer.kind!r}")
                with session.begin_nested():
                    next_due = handler(session, dict(timer.payload), now)
            except Exception as exc:
                log.exception("timer.failed", kind=timer.kind, key=timer.key)
                timer.attempts += 1
                timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                timer.due_at = now + min(RETRY_CAP, RETRY_BASE * 2 ** (timer.attempts - 1))
            else:
                fired += 1
                if next_due is None:
                    session.delete(timer)
                else:
                    timer.due_at = next_due
                    timer.attempts = 0
    return fired
