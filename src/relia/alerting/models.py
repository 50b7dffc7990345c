"""Alerting tables: integrations (with their hashed keys), routing rules, silences, alerts, alert groups, and
the record of what each silence suppressed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relia.catalog.models import VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class Integration(VersionedMixin, Base):
    """Where alerts come in (config kind ``Integration``). Its key is a secret sent in the webhook URL (or as
    PagerDuty's ``routing_key``): only a SHA-256 of it is stored, which suffices for 128 random bits and
    lets a request find its integration with one indexed lookup. A rotated key may keep working for a grace
    period (``previous_key_*``) so senders can be switched over without losing alerts."""

    __tablename__ = "alert_integrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # The default service: where an alert goes when no routing rule matches.
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    spec: Mapped[dict[str, Any]]
    key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    key_hint: Mapped[str | None] = mapped_column(String(8))
    key_created_at: Mapped[datetime | None]
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_key_expires_at: Mapped[datetime | None]


class RoutingRule(VersionedMixin, Base):
    """Label matchers that send an alert to a service (config kind ``RoutingRule``). A rule of one integration
    is tried before rules for every integration (``integration_id`` NULL); the first that matches wins."""

    __tablename__ = "alert_routing_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_integrations.id", ondelete="RESTRICT"), index=True
    )
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    spec: Mapped[dict[str, Any]]


class Silence(VersionedMixin, Base):
    """Suppresses matching alerts between ``starts_at`` and ``ends_at`` (config kind ``Silence``). With a
    service and no matchers it is a maintenance window for that service. Expired silences stay, with the
    record of what they suppressed, until deleted."""

    __tablename__ = "alert_silences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]


class AlertGroup(Base):
    """Alerts of one service that belong together (same group key, within the grouping window): what people
    are paged for, acknowledge, snooze and resolve. The escalation engine follows its hooks."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("alert_integrations.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(20))
    group_key: Mapped[str] = mapped_column(String(255))
    group_labels: Mapped[dict[str, Any]]
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    firing_count: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime]
    # The last time an alert of the group was reported (new or repeated): the quiet period counts from here.
    last_alert_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    snoozed_until: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # manual (a person), source (every alert resolved by its sender), auto (the quiet period passed)
    resolution: Mapped[str | None] = mapped_column(String(20))
    source_url: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_alert_groups_lookup", "service_id", "group_key", "state"),
        Index("ix_alert_groups_state_id", "state", "id"),
    )


class Alert(Base):
    """One alert of one source, identified by ``dedup_key`` within its integration while it fires (a
    resolved alert's key may fire again: that is a new alert, as in PagerDuty). A suppressed alert has no
    group until its silence ends."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("alert_integrations.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(20))
    dedup_key: Mapped[str] = mapped_column(String(255))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("alert_groups.id", ondelete="CASCADE"), index=True)
    # The key of the group it belongs in (kept while it is suppressed, to place it when its silence ends).
    group_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(10))
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]]
    links: Mapped[list[Any]]
    details: Mapped[dict[str, Any]]
    routed_by: Mapped[str | None] = mapped_column(String(63))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    last_received_at: Mapped[datetime]
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[datetime | None]
    # source, auto, or the name of the person who resolved the alert's group
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    suppressed_by_silence_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_silences.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        Index("ix_alerts_identity", "integration_id", "dedup_key", "id"),
        # At most one firing alert per key and integration, whatever races happen (the intake also takes
        # locks, so this only ever backs it up).
        Index(
            "uq_alerts_firing_identity",
            "integration_id",
            "dedup_key",
            unique=True,
            sqlite_where=text("status = 'firing'"),
            postgresql_where=text("status = 'firing'"),
        ),
        Index("ix_alerts_status_id", "status", "id"),
    )


class AlertSuppression(Base):
    """What a silence suppressed, kept after the silence ends (and after it is deleted, by name)."""

    __tablename__ = "alert_suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    silence_id: Mapped[int | None] = mapped_column(ForeignKey("alert_silences.id", ondelete="SET NULL"))
    silence_name: Mapped[str] = mapped_column(String(63))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    # When the alert stopped being suppressed: the silence ended while it still fired (it then joined a
    # group), or the alert resolved first.
    released_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))

    alert: Mapped[Alert] = relationship()

    __table_args__ = (Index("ix_alert_suppressions_silence_at", "silence_id", "at"),)
