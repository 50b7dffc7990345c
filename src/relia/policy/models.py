"""Policy tables: budget policies, each policy's state per service, the restrictions and pager handoffs they put
in force, overrides, recorded gate checks, action items, and when each SLO objective was last exhausted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relia.catalog.models import VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class BudgetPolicy(VersionedMixin, Base):
    """A BudgetPolicy (config kind). The scope columns repeat the spec's scope as ids, so rights checks and
    listings need not parse the spec; the built-in default has no row (a row named ``default`` replaces it)."""

    __tablename__ = "budget_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    scope_service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    scope_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    spec: Mapped[dict[str, Any]]


class PolicyState(Base):
    """Where one policy stands for one service, when it is not clear (a clear policy has no row). Keyed by the
    policy's name so the built-in default, which has no row of its own, keeps state like any other."""

    __tablename__ = "policy_states"

    policy_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), primary_key=True)
    phase: Mapped[str] = mapped_column(String(20))
    triggered_at: Mapped[datetime]
    phase_since: Mapped[datetime]
    cooling_until: Mapped[datetime | None]
    # The objectives that matched when last evaluated: [{objectiveId, slo, objective, reasons: [...]}].
    matched: Mapped[list[Any]]
    updated_at: Mapped[datetime]


class ReleaseRestriction(Base):
    """A freeze, a required approval or a warning on one service's releases, put in force by a policy that is
    engaged for ``cause_service_id`` (the service itself, or one it depends on). Ended rows stay for reports."""

    __tablename__ = "release_restrictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    policy_name: Mapped[str] = mapped_column(String(63))
    cause_service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    exemptions: Mapped[list[Any]]
    summary: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_release_restrictions_service", "service_id", "ended_at"),)


class PagerHandoff(Base):
    """The pager of a service handed from one team's escalation to another's (the SRE team back to the owning
    developers) while a policy is engaged. The paging domain reads the active row (``ended_at`` null) through
    ``relia.policy.service.active_pager_handoff``."""

    __tablename__ = "pager_handoffs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    policy_name: Mapped[str] = mapped_column(String(63))
    from_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    to_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_pager_handoffs_service", "service_id", "ended_at"),)


class ReleaseOverride(Base):
    """A time-boxed exception for one version of one service: requested with a reason, approved or rejected by
    someone else with rights on the service; it lets that version through freezes and approvals until it
    expires."""

    __tablename__ = "release_overrides"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_release_overrides_service", "service_id", "version"),
        Index("ix_release_overrides_status", "status", "expires_at"),
    )


class GateCheck(Base):
    """One question to the release gate and its answer: who asked, about what, and what was decided why."""

    __tablename__ = "gate_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(200))
    change_type: Mapped[str] = mapped_column(String(40))
    phase: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[Any]]
    override_id: Mapped[int | None] = mapped_column(ForeignKey("release_overrides.id", ondelete="SET NULL"))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    via: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_gate_checks_service_at", "service_id", "at"),)


class PolicyActionItem(Base):
    """Work a policy asked for when it triggered (restore reliability, write the postmortem). ``key`` makes its
    creation idempotent per trigger; closing it is a person's decision, never the evaluator's."""

    __tablename__ = "policy_action_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    policy_name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(200))


class ObjectiveExhaustion(Base):
    """When an SLO objective last had an exhausted budget (the evaluator's status row keeps only the present).
    Written by the policy tick; ``exhaustedWithin`` conditions read it."""

    __tablename__ = "policy_objective_exhaustion"

    objective_id: Mapped[int] = mapped_column(ForeignKey("slo_objectives.id", ondelete="CASCADE"), primary_key=True)
    last_exhausted_at: Mapped[datetime | None]
