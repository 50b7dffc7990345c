"""The outbox: side effects written in the same transaction as the change that caused them, delivered after
commit with an idempotency key, retried with backoff, every attempt's result recorded.

Delivery is at-least-once: a message is claimed with a lease (``next_attempt_at`` moved forward) before it is
sent, so a worker that dies mid-send leaves it to be retried when the lease runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.models import OutboxDelivery, OutboxMessage

log = structlog.get_logger("relia.outbox")

CLAIM_LEASE = timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600


class DeliveryFailed(Exception):
    """Raised by a channel. ``permanent`` failures are not retried (a 4xx from a webhook, a bad address)."""

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


Channel = Callable[[str, dict[str, Any]], str]
_channels: dict[str, Channel] = {}


def register_channel(name: str, deliver: Channel) -> None:
    """A channel takes (destination, payload), returns a short result detail, or raises DeliveryFailed."""
    _channels[name] = deliver


def channel_names() -> list[str]:
    return sorted(_channels)


def enqueue(
    session: Session,
    *,
    channel: str,
    destination: str,
    payload: dict[str, Any],
    idempotency_key: str,
    now: datetime,
    max_attempts: int = 8,
) -> None:
    """Queue a message unless one with the same idempotency key exists (then this is a no-op)."""
    if channel not in _channels:
        raise ValueError(f"unknown outbox channel {channel!r}")
    values = {
        "idempotency_key": idempotency_key,
        "channel": channel,
        "destination": destination,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "next_attempt_at": now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    session.execute(statement)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


Claimed = tuple[int, str, str, dict[str, Any], int]  # id, channel, destination, payload, attempt number


def _renew_lease(db: Database, clock: Clock, claimed: list[Claimed]) -> tuple[list[Claimed], datetime]:
    """Extend the lease of claimed messages not sent yet; returns those still ours (same attempt number, not
    locked by another worker claiming them) and when their new lease started."""
    with db.transaction() as session:
        now = clock.now()
        current = dict(
            session.execute(
                select(OutboxMessage.id, OutboxMessage.attempts)
                .where(OutboxMessage.id.in_([item[0] for item in claimed]), OutboxMessage.status == "pending")
                .with_for_update(skip_locked=True)
            ).all()
        )
        kept = [item for item in claimed if current.get(item[0]) == item[4]]
        if kept:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([item[0] for item in kept]))
                .values(next_attempt_at=now + CLAIM_LEASE)
            )
    return kept, now


def deliver_due(db: Database, clock: Clock, *, limit: int = 100) -> DeliveryReport:
    report = DeliveryReport()
    with db.transaction() as session:
        now = clock.now()
        due = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        claimed: list[Claimed] = []
        for message in due:
            message.attempts += 1
            message.next_attempt_at = now + CLAIM_LEASE
            claimed.append((message.id, message.channel, message.destination, dict(message.payload), message.attempts))

    pending, lease_started = claimed, now
    while pending:
        if clock.now() - lease_started >= CLAIM_LEASE / 2:
            # Slow endpoints have used half the lease: extend it for what is still to send, and drop what another
            # worker claimed since (its lease ran out), so a batch that outlasts its lease never sends twice.
            pending, lease_started = _renew_lease(db, clock, pending)
            if not pending:
                break
        message_id, channel_name, destination, payload, attempt = pending.pop(0)
        started = time.perf_counter()
        permanent = False
        try:
            detail = _channels[channel_name](destination, payload)
            ok = True
        except DeliveryFailed as exc:
            ok, detail, permanent = False, str(exc), exc.permanent
        except Exception as exc:  # a channel bug must not stop the other deliveries
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.perf_counter() - started) * 1000)
        with db.transaction() as session:
            now = clock.now()
            message = session.get(OutboxMessage, message_id)
            if message is None:
                continue
            session.add(
                OutboxDelivery(
                    message_id=message_id,
                    attempt=attempt,
                    at=now,
                    ok=ok,
                    duration_ms=duration_ms,
                    detail=detail[:2000],
                )
            )
            if ok:
                message.status = "delivered"
                message.delivered_at = now
                message.last_error = None
                report.delivered += 1
            elif permanent or attempt >= message.max_attempts:
                message.status = "dead"
                message.last_error = detail[:2000]
                report.dead += 1
                log.warning("outbox.dead", message_id=message_id, channel=channel_name, detail=detail[:200])
            else:
                message.next_attempt_at = now + backoff(attempt)
                message.last_error = detail[:2000]
                report.failed += 1
    return report
