"""The velocity report: per service and period, how much error budget is left and where it is heading, how long
the service was frozen, what the release gate answered, and a plain verdict on the pace of releases."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relia.catalog.models import Service
from relia.catalog.service import get_service
from relia.core.errors import FieldError, InvalidInput
from relia.policy import rules
from relia.policy.models import GateCheck, ReleaseRestriction
from relia.slo import history
from relia.slo import rules as slo_rules
from relia.slo import service as slo_service
from relia.slo.models import SLO

MIN_PERIOD = 24 * 60
MAX_PERIOD = 90 * 24 * 60
TREND_POINTS = 30  # points per objective in the report's budget series


def parse_period(text: str) -> int:
    """A period such as 7d, 4w or 30d, in minutes, between a day and 90 days."""
    try:
        minutes = slo_rules.parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), errors=[FieldError("query.period", "a duration such as 7d, 4w or 30d")]) from exc
    if not MIN_PERIOD <= minutes <= MAX_PERIOD:
        raise InvalidInput(
            "A velocity report covers between 1 day and 90 days.",
            errors=[FieldError("query.period", "between 1d and 90d")],
        )
    return minutes


def _budget_series(session: Session, slo: SLO, key: str, start: int, end: int) -> list[dict[str, Any]]:
    """Budget remaining at TREND_POINTS instants from ``start`` to ``end`` (epoch minutes), from the stored
    minutes (as the SLO page's burn-down chart reads them)."""
    step = max(1, (end - start) // TREND_POINTS)
    span = history.Range(start - step, end, step)
    points = history.series(session, slo, key, span)["points"]
    return [{"at": point["at"], "budgetRemaining": point["budgetRemaining"]} for point in points]


def velocity_report(session: Session, *, service: str, period: str, now: datetime) -> dict[str, Any]:
    period_minutes = parse_period(period)
    svc = get_service(session, service)
    end_minute = slo_rules.epoch_minute(now)
    start_minute = end_minute - period_minutes
    start, end = slo_rules.minute_datetime(start_minute), now

    slos = session.scalars(
        select(SLO).where(SLO.service_id == svc.id).options(selectinload(SLO.objectives)).order_by(SLO.name)
    ).all()
    statuses = slo_service.statuses(session, [objective.id for slo in slos for objective in slo.objectives])
    budgets: list[dict[str, Any]] = []
    trends: list[rules.BudgetTrend] = []
    for slo in slos:
        for objective in slo.objectives:
            points = _budget_series(session, slo, objective.key, start_minute, end_minute)
            status = statuses.get(objective.id)
            now_value = status.budget_remaining if status is not None else None
            if now_value is None and points:
                now_value = points[-1]["budgetRemaining"]
            first = next((point["budgetRemaining"] for point in points if point["budgetRemaining"] is not None), None)
            trend = rules.BudgetTrend(slo.name, objective.key, now_value, first)
            trends.append(trend)
            budgets.append(
                {
                    "slo": slo.name,
                    "objective": objective.key,
                    "remaining_now": now_value,
                    "remaining_at_start": first,
                    "change": trend.change,
                    "trend": rules.trend_word(trend.change),
                    "points": points,
                }
            )

    freezes: list[dict[str, Any]] = []
    frozen_now = False
    rows = session.execute(
        select(ReleaseRestriction, Service.slug)
        .join(Service, ReleaseRestriction.cause_service_id == Service.id)
        .where(
            ReleaseRestriction.service_id == svc.id,
            ReleaseRestriction.kind == "freeze",
            ReleaseRestriction.started_at <= end,
            (ReleaseRestriction.ended_at.is_(None)) | (ReleaseRestriction.ended_at > start),
        )
        .order_by(ReleaseRestriction.started_at)
    ).all()
    intervals = []
    for row, cause in rows:
        lo = max(row.started_at, start)
        hi = min(row.ended_at or end, end)
        minutes = max(0.0, (hi - lo).total_seconds() / 60)
        intervals.append((lo, hi))
        frozen_now = frozen_now or row.ended_at is None
        freezes.append(
            {
                "policy": row.policy_name,
                "cause_service": cause,
                "started_at": row.started_at,
                "ended_at": row.ended_at,
                "minutes_in_period": round(minutes, 1),
            }
        )
    frozen_minutes = _union_minutes(intervals)

    checks = session.execute(
        select(GateCheck.version, GateCheck.decision, GateCheck.at)
        .where(GateCheck.service_id == svc.id, GateCheck.at >= start, GateCheck.at <= end)
        .order_by(GateCheck.at, GateCheck.id)
    ).all()
    releases = Counter({"allow": 0, "warn": 0, "block": 0})
    latest: dict[str, str] = {}
    for version, decision, _at in checks:
        releases[decision] += 1
        latest[version] = decision
    versions = Counter({"allow": 0, "warn": 0, "block": 0})
    versions.update(latest.values())

    verdict, reason = rules.verdict(
        service=svc.slug,
        budgets=trends,
        frozen_minutes=frozen_minutes,
        period_minutes=float(period_minutes),
        frozen_now=frozen_now,
    )
    return {
        "service": svc.slug,
        "period": period.strip(),
        "start": start,
        "end": end,
        "verdict": verdict,
        "verdict_text": rules.VERDICT_TEXT[verdict],
        "reason": reason,
        "budgets": budgets,
        "freezes": freezes,
        "frozen_minutes": round(frozen_minutes, 1),
        "frozen_now": frozen_now,
        "releases": dict(releases),
        "versions": dict(versions),
    }


def _union_minutes(intervals: list[tuple[datetime, datetime]]) -> float:
    """Minutes covered by at least one interval: two policies freezing at once count once."""
    total = timedelta(0)
    current: tuple[datetime, datetime] | None = None
    for lo, hi in sorted(intervals):
        if current is None or lo > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (lo, hi)
        else:
            current = (current[0], max(current[1], hi))
    if current is not None:
        total += current[1] - current[0]
    return total.total_seconds() / 60
