"""Escalation tables: policies (a config kind), the services that use a policy other than their team's default,
and the escalation of each alert group: its state, with the snapshot of the policy it opened with, and one row
per step that ran (the idempotency record: a step runs once per group, round, step and repeat).

``group_id`` is the alerting domain's alert group id. It has no foreign key here: the two domains are built
apart, and an escalation must survive whatever the other side does to its rows (the delivery log stays).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from relia.catalog.models import VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class EscalationPolicy(VersionedMixin, Base):
    """An EscalationPolicy (config kind). ``spec`` is the camelCase spec as written; the columns repeat what
    lookups need (the team, whether it is the team's default)."""

    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    spec: Mapped[dict[str, Any]]

    __table_args__ = (
        # At most one default per team, on both databases (a partial unique index).
        Index(
            "uq_escalation_policies_team_default",
            "team_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )


class EscalationPolicyService(Base):
    """A service that uses this policy instead of its owning team's default. One policy per service at most."""

    __tablename__ = "escalation_policy_services"

    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("escalation_policies.id", ondelete="CASCADE"), index=True)


class Escalation(Base):
    """The escalation of one alert group.

    ``snapshot`` is the policy spec the group opened with (or reopened with): editing or deleting the policy
    never changes a live escalation. ``round`` counts restarts (reopened, snooze ended, acknowledgement timed
    out); a timer or step from an older round is stale and does nothing. ``stage``/``repeat`` is the next stage
    to run while ``status`` is ``active``."""

    __tablename__ = "escalations"

    group_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id", ondelete="SET NULL"))
    policy_name: Mapped[str | None] = mapped_column(String(63))
    policy_version: Mapped[int | None]
    # Why this policy: "service" (named the service), "team-default", "handoff" (the pager was handed to
    # another team), "fallback" (no policy: the team's members are paged) or "none" (nobody to page).
    source: Mapped[str] = mapped_column(String(20))
    source_detail: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[dict[str, Any]]
    title: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))  # active, acknowledged, snoozed, resolved, exhausted, none
    round: Mapped[int] = mapped_column(default=0)
    stage: Mapped[int] = mapped_column(default=0)
    repeat: Mapped[int] = mapped_column(default=0)
    next_step_at: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    round_started_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    snoozed_until: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    exhausted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_escalations_status", "status", "next_step_at"),)


class EscalationStep(Base):
    """One step that ran for one group. The unique key is what makes a redelivered or repeated timer harmless:
    the second attempt finds the row and pages nobody."""

    __tablename__ = "escalation_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int]
    step_index: Mapped[int]
    repeat: Mapped[int]
    ran_at: Mapped[datetime]
    # [{"userId", "username", "via"}]: whom the step reached, and through which target (user, schedule, team).
    targets: Mapped[list[Any]]
    notes: Mapped[list[Any]]

    __table_args__ = (UniqueConstraint("group_id", "round", "step_index", "repeat"),)
