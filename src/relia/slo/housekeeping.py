"""Keeping SLO storage bounded: minutes older than every window an SLO reads are folded into hourly rows
(with their slice counts) and removed; idempotency keys of old batches are forgotten."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from relia.core.clock import Clock
from relia.core.db import Database
from relia.slo import rules, service
from relia.slo.models import SLO, HourlyRollup, Rollup
from relia.slo.schemas import SLOSpec

FOLD_AT_MOST_HOURS = 48
"""Hours folded per objective per run, so one run stays short; the rest follows on the next runs."""


@dataclass
class HousekeepingReport:
    hours_folded: int = 0
    minutes_removed: int = 0
    batch_keys_forgotten: int = 0


def run(db: Database, clock: Clock) -> HousekeepingReport:
    report = HousekeepingReport()
    now = clock.now()
    now_minute = rules.epoch_minute(now)
    if now_minute % 15 != 0:  # every quarter of an hour is plenty
        return report
    with db.transaction() as session:
        report.batch_keys_forgotten = service.forget_old_batches(session, now=now)
        slos = session.scalars(select(SLO).options(selectinload(SLO.objectives))).all()
        for slo in slos:
            spec = SLOSpec.model_validate(slo.spec)
            keep_from = now_minute - service.retention_minutes(spec, now)
            boundary = (keep_from // 60) * 60
            for objective in slo.objectives:
                hours, removed = _fold(session, objective.id, spec, objective.key, boundary)
                report.hours_folded += hours
                report.minutes_removed += removed
    return report


def _fold(session, objective_id: int, spec: SLOSpec, key: str, boundary: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Fold up to FOLD_AT_MOST_HOURS of the oldest minutes before ``boundary`` into hours; only what was
    folded is removed. Returns (hours written, minutes removed)."""
    oldest = session.scalar(
        select(Rollup.minute).where(Rollup.objective_id == objective_id).order_by(Rollup.minute).limit(1)
    )
    if oldest is None or oldest >= boundary:
        return 0, 0
    first = (oldest // 60) * 60
    last = min(boundary, first + FOLD_AT_MOST_HOURS * 60)
    good, total = service.rollup_series(session, objective_id, first, last)
    maths = service.math_spec(spec, key)
    hours = (last - first) // 60
    rows = []
    for hour in range(hours):
        lo, hi = first + hour * 60, first + (hour + 1) * 60
        g, t = good[lo - first : hi - first], total[lo - first : hi - first]
        if not t.any():
            continue
        totals = rules.totals_ending_at(g, t, origin=lo, end=hi, starts=[lo], budgeting=maths.budgeting).column(0)
        sliced = maths.budgeting.sliced
        rows.append(
            HourlyRollup(
                objective_id=objective_id,
                hour=lo // 60,
                good=float(np.sum(g)),
                total=float(np.sum(t)),
                good_slices=float(totals.units - totals.bad) if sliced else 0.0,
                total_slices=float(totals.units) if sliced else 0.0,
                slice_ratio_sum=float(totals.units - totals.bad) if sliced else 0.0,
            )
        )
    for row in rows:
        session.merge(row)
    removed = (
        session.execute(delete(Rollup).where(Rollup.objective_id == objective_id, Rollup.minute < last)).rowcount or 0
    )
    return len(rows), removed
