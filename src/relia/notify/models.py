"""Notification tables: each user's personal notification rules, every notification (one per page, user and
contact attempt: the record that says who was paged, when, how), per-destination state for throttling and
bundling, and the pipeline watchdog's state.

A notification is delivered by the outbox (``outbox_messages``): several notifications to one destination may
share one message (a bundle), and the message's attempts (``outbox_deliveries``) are the delivery log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relia.catalog.models import VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class NotificationRuleSet(VersionedMixin, Base):
    """A user's ordered notification rules (config kind ``NotificationRules``, named by the username):
    ``[{"contactMethod": "work-email", "after": "0m"}, ...]``. No row: every contact method at once."""

    __tablename__ = "notification_rule_sets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    rules: Mapped[list[Any]]


class Notification(Base):
    """One contact attempt for one page: escalation step (group, round, step, repeat) x user x rule.

    The idempotency key is unique, so running a step twice cannot notify twice. ``status`` is ours
    (``queued`` in an outbox message, ``cancelled`` before it left because the group was acknowledged or
    resolved, ``unreachable`` when the user had no way to be reached); whether it was delivered is the outbox
    message's status and attempts."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    group_id: Mapped[int] = mapped_column(BigInteger, index=True)
    round: Mapped[int]
    step_index: Mapped[int]
    repeat: Mapped[int]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(63))
    contact_method: Mapped[str | None] = mapped_column(String(63))
    contact_kind: Mapped[str | None] = mapped_column(String(20))
    delay_seconds: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    destination_key: Mapped[str | None] = mapped_column(String(64))
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (Index("ix_notifications_user_created", "user_id", "created_at"),)


class NotificationDestination(Base):
    """Per destination (a hash of the address): the send times handed out for the throttle, and the message
    still waiting to leave, which later notifications to the same destination join (the bundle)."""

    __tablename__ = "notification_destinations"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    recent_sends: Mapped[list[Any]]
    open_message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime]


class PagingWatchdog(Base):
    """The pipeline watchdog's memory, one row: since when the pipeline is stalled (None when healthy), when
    the stall was last announced, and the last heartbeat ping. Locked while a worker decides, so several
    workers announce a stall once."""

    __tablename__ = "paging_watchdog"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    stalled_since: Mapped[datetime | None]
    last_alert_at: Mapped[datetime | None]
    last_alert_result: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None]
    last_ping_at: Mapped[datetime | None]
    last_ping_result: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
