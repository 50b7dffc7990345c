"""SLO tables: data sources, SLOs and their objectives, per-minute rollups (hourly once old), ingest
idempotency, budget adjustments, source health, and the evaluator's state and latest status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relia.catalog.models import Service, VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class DataSource(VersionedMixin, Base):
    __tablename__ = "slo_data_sources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict[str, Any]]


class SLO(VersionedMixin, Base):
    __tablename__ = "slos"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"), index=True)
    data_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("slo_data_sources.id", ondelete="RESTRICT"), index=True
    )
    spec: Mapped[dict[str, Any]]

    service: Mapped[Service] = relationship()
    data_source: Mapped[DataSource | None] = relationship()
    objectives: Mapped[list[Objective]] = relationship(
        back_populates="slo", cascade="all, delete-orphan", order_by="Objective.position"
    )


class Objective(Base):
    """One objective of an SLO. Rollups hang off objectives: threshold indicators count good events per
    threshold, so each objective has its own counts."""

    __tablename__ = "slo_objectives"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slo_id: Mapped[int] = mapped_column(ForeignKey("slos.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(default=0)
    target: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[float | None] = mapped_column(Float)
    # Pushed or fetched data arrived for minutes already evaluated: the evaluator recounts from here.
    dirty_from_minute: Mapped[int | None] = mapped_column(Integer)

    slo: Mapped[SLO] = relationship(back_populates="objectives")

    __table_args__ = (UniqueConstraint("slo_id", "key"),)


class Rollup(Base):
    """Good and total events of one objective in one UTC minute (``minute`` = epoch seconds // 60)."""

    __tablename__ = "slo_rollups"

    objective_id: Mapped[int] = mapped_column(ForeignKey("slo_objectives.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)
    good: Mapped[float] = mapped_column(Float)
    total: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_slo_rollups_minute", "minute"), {"sqlite_with_rowid": False})


class HourlyRollup(Base):
    """Minutes older than every window of the SLO, folded into hours for history and reports. Slice counts
    are computed when folding, with the objective's slice settings of that time."""

    __tablename__ = "slo_rollups_hourly"

    objective_id: Mapped[int] = mapped_column(ForeignKey("slo_objectives.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    good: Mapped[float] = mapped_column(Float)
    total: Mapped[float] = mapped_column(Float)
    good_slices: Mapped[float] = mapped_column(Float, default=0)
    total_slices: Mapped[float] = mapped_column(Float, default=0)
    slice_ratio_sum: Mapped[float] = mapped_column(Float, default=0)

    __table_args__ = ({"sqlite_with_rowid": False},)


class IngestBatch(Base):
    """Idempotency of pushed batches: a batch key seen before changes nothing."""

    __tablename__ = "slo_ingest_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slo_id: Mapped[int] = mapped_column(ForeignKey("slos.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(index=True)
    accepted: Mapped[int]
    minutes: Mapped[int]

    __table_args__ = (UniqueConstraint("slo_id", "key"),)


class BudgetAdjustment(Base):
    """A period excluded from an SLO (maintenance, an incident not to count), with a reason."""

    __tablename__ = "slo_budget_adjustments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slo_id: Mapped[int] = mapped_column(ForeignKey("slos.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class SourceState(Base):
    """Health of an SLO's data feed: the last good sample and the last error (Prometheus), and how far
    history has been fetched."""

    __tablename__ = "slo_source_state"

    slo_id: Mapped[int] = mapped_column(ForeignKey("slos.id", ondelete="CASCADE"), primary_key=True)
    fetched_through_minute: Mapped[int | None] = mapped_column(Integer)
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sample_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    failing: Mapped[bool] = mapped_column(Boolean, default=False)


class ObjectiveStatus(Base):
    """The evaluator's latest result for one objective (what lists and the API read)."""

    __tablename__ = "slo_status"

    objective_id: Mapped[int] = mapped_column(ForeignKey("slo_objectives.id", ondelete="CASCADE"), primary_key=True)
    evaluated_at: Mapped[datetime]
    through_minute: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    budget_remaining: Mapped[float | None] = mapped_column(Float, index=True)
    page_active: Mapped[bool] = mapped_column(Boolean, default=False)
    ticket_active: Mapped[bool] = mapped_column(Boolean, default=False)
    no_data_active: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last budget threshold crossed downwards (50, 25, 0), so each crossing is announced once.
    budget_band: Mapped[int] = mapped_column(Integer, default=100)
    detail: Mapped[dict[str, Any]]


class WindowState(Base):
    """The evaluator's running totals for one objective and one window ``[start, end)``, so a tick adds
    what entered and subtracts what left instead of re-reading the whole period. ``window`` is the window
    length in minutes, or 0 for the SLO's own (rolling or calendar) period. The four sums are those of
    ``rules.WindowTotals`` (units and bad units of the budgeting method, raw events and good events)."""

    __tablename__ = "slo_window_state"

    objective_id: Mapped[int] = mapped_column(ForeignKey("slo_objectives.id", ondelete="CASCADE"), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    bad: Mapped[float] = mapped_column(Float)
    units: Mapped[float] = mapped_column(Float)
    events: Mapped[float] = mapped_column(Float)
    good_events: Mapped[float] = mapped_column(Float)


class EvaluatorMark(Base):
    """One row: the minute the evaluator has counted up to. Ingestion reads it (under a share lock on
    PostgreSQL) to know which pushed minutes arrive late and must be recounted."""

    __tablename__ = "slo_evaluator"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_minute: Mapped[int] = mapped_column(Integer)
    evaluated_at: Mapped[datetime]
