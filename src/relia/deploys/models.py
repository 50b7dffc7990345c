"""Blue-green tables: each service's target (its environments, which is live, what runs where), the deployments
with their durable state, each deployment's step log, and the analysis measurements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relia.catalog.models import Service, VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class DeployTarget(VersionedMixin, Base):
    """A service's blue-green target. ``spec`` is what was declared (config as code or the API);
    ``live_environment`` and the versions are state that deployments move."""

    __tablename__ = "deploy_targets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"), unique=True)
    spec: Mapped[dict[str, Any]]
    live_environment: Mapped[str] = mapped_column(String(5))
    blue_version: Mapped[str | None] = mapped_column(String(200))
    green_version: Mapped[str | None] = mapped_column(String(200))
    # The one deployment under way, if any: set and cleared under the target's row lock, so two deployments of
    # one service never run at once.
    active_deployment_id: Mapped[int | None] = mapped_column(BigId)

    service: Mapped[Service] = relationship()


class Deployment(Base):
    """One version going through the blue-green state machine. Every field the machine needs to resume after a
    restart is here; ``spec`` is the target's spec when the deployment started (a later change of the target
    applies to the next deployment)."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("deploy_targets.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"), index=True)
    version: Mapped[str] = mapped_column(String(200))
    previous_version: Mapped[str | None] = mapped_column(String(200))
    change_type: Mapped[str] = mapped_column(String(40))
    from_environment: Mapped[str] = mapped_column(String(5))
    to_environment: Mapped[str] = mapped_column(String(5))
    spec: Mapped[dict[str, Any]]
    variables: Mapped[dict[str, Any]]

    state: Mapped[str] = mapped_column(String(30), index=True)
    outcome: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    # Live traffic is (or may be, while a switch is in flight) on to_environment.
    switched: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_phase: Mapped[str | None] = mapped_column(String(4))
    pause_reason: Mapped[str | None] = mapped_column(Text)
    abort_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    # Work with I/O for the action runner (``relia.deploys.runner``): what, from when (the next measurement, or a
    # retry after a failed adapter call), and the claim of the worker doing it. A claim whose lease ran out (the
    # worker died) is taken again; ``action_token`` tells a late result from a stale claim.
    action: Mapped[str | None] = mapped_column(String(20))
    action_due_at: Mapped[datetime | None]
    action_attempts: Mapped[int] = mapped_column(Integer, default=0)
    action_lease_until: Mapped[datetime | None]
    action_token: Mapped[str | None] = mapped_column(String(40))
    action_error: Mapped[str | None] = mapped_column(Text)

    analysis_phase: Mapped[str | None] = mapped_column(String(4))
    analysis_run: Mapped[int] = mapped_column(Integer, default=0)
    analysis_started_at: Mapped[datetime | None]
    promotion_deadline: Mapped[datetime | None]
    warm_until: Mapped[datetime | None]

    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    revision: Mapped[int] = mapped_column(Integer, default=1)

    target: Mapped[DeployTarget] = relationship()
    service: Mapped[Service] = relationship()

    __mapper_args__ = {"version_id_col": revision}
    __table_args__ = (Index("ix_deployments_action_due", "action", "action_due_at"),)


class DeploymentStep(Base):
    """The deployment's own step log (each step also goes to the service timeline)."""

    __tablename__ = "deployment_steps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(30))
    summary: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]


class AnalysisMeasurement(Base):
    """One measurement of one check. ``run`` counts the analysis runs of the deployment (a resume starts a new
    one), so a run's verdict reads only its own measurements."""

    __tablename__ = "deployment_measurements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(4))
    run: Mapped[int] = mapped_column(Integer)
    check_name: Mapped[str] = mapped_column(String(63))
    at: Mapped[datetime]
    verdict: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_deployment_measurements_run", "deployment_id", "run"),)
