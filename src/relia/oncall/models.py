"""On-call tables: schedules (their spec is JSON, users are referenced through a link table so that a user who
is on a schedule cannot be deleted from under it), swap requests, the append-only shift history with its
per-schedule mark, and calendar subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relia.catalog.models import Team, User, VersionedMixin
from relia.core.db import Base
from relia.core.models import BigId


class Schedule(VersionedMixin, Base):
    __tablename__ = "oncall_schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"), index=True)
    spec: Mapped[dict[str, Any]]

    team: Mapped[Team] = relationship()


class ScheduleUser(Base):
    """Every user a schedule's spec names (participants, overrides, temporary shifts)."""

    __tablename__ = "oncall_schedule_users"

    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True, index=True)


class SwapRequest(Base):
    """Someone offers their on-call time in a window; once another person takes it, it is theirs."""

    __tablename__ = "oncall_swaps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    taker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime]
    end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="open")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))

    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    taker: Mapped[User | None] = relationship(foreign_keys=[taker_id])


class ShiftEvent(Base):
    """The shift history: a row when a shift began and one when it ended (carrying when it began), written as
    they happen and never changed. Names are kept alongside the ids, so the history outlives a deleted
    schedule or user."""

    __tablename__ = "oncall_shift_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="SET NULL"))
    schedule_name: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    username: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime]
    began_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(20))
    layer: Mapped[str | None] = mapped_column(String(63))
    recorded_at: Mapped[datetime]

    __table_args__ = (Index("ix_oncall_shift_events_schedule", "schedule_name", "event", "at"),)


class HistoryMark(Base):
    """How far a schedule's history is written, and who was on call at that moment (since when, and why)."""

    __tablename__ = "oncall_history_marks"

    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"), primary_key=True)
    recorded_through: Mapped[datetime] = mapped_column(index=True)
    open_shifts: Mapped[dict[str, Any]]


class CalendarFeed(Base):
    """A calendar subscription URL: its owner's shifts on every schedule (scope ``personal``) or one schedule
    (scope ``schedule:<id>``). Only the SHA-256 of the URL's secret is stored."""

    __tablename__ = "oncall_calendar_feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]

    owner: Mapped[User] = relationship()
    schedule: Mapped[Schedule | None] = relationship()

    __table_args__ = (UniqueConstraint("owner_id", "scope"),)
