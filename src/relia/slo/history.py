"""Reading an SLO's past: its budget, SLI and burn rates over a time range, and a replay of its history
through the alert rules (backtest). Both are computed from the stored minutes, on demand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from relia.core.errors import FieldError, InvalidInput
from relia.slo import rules, service
from relia.slo.models import SLO
from relia.slo.rules.totals import Units

MAX_POINTS = 2000


@dataclass(frozen=True)
class Range:
    start: int  # epoch minutes
    end: int
    step: int


def check_range(start: datetime, end: datetime, step_minutes: int) -> Range:
    problems = []
    for field, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            problems.append(FieldError(f"query.{field}", "needs a time zone (e.g. Z)"))
    if problems:
        raise InvalidInput("Times need a time zone.", errors=problems)
    first, last = rules.epoch_minute(start), rules.epoch_minute(end)
    if last <= first:
        raise InvalidInput("The range is empty.", errors=[FieldError("query.end", "must be after start")])
    if step_minutes < 1:
        raise InvalidInput("The step is too small.", errors=[FieldError("query.step", "at least 1 minute")])
    if (last - first) // step_minutes > MAX_POINTS:
        raise InvalidInput(
            f"That would be more than {MAX_POINTS} points.",
            errors=[FieldError("query.step", f"use a step of at least {-(-(last - first) // MAX_POINTS)} minutes")],
        )
    return Range(first, last, step_minutes)


def _objective(slo: SLO, key: str | None):  # type: ignore[no-untyped-def]
    if key is None:
        return slo.objectives[0]
    for objective in slo.objectives:
        if objective.key == key:
            return objective
    raise InvalidInput(
        f"SLO {slo.name!r} has no objective {key!r}.", errors=[FieldError("query.objective", "no such objective")]
    )


def series(session: Session, slo: SLO, objective_key: str | None, span: Range) -> dict[str, Any]:
    """Per step: SLI and remaining budget over the SLO window ending there, and each alert window's burn."""
    objective = _objective(slo, objective_key)
    spec = service.parsed_spec(slo)
    maths = service.math_spec(spec, objective.key)
    policy = service.alert_policy(spec, objective.key)
    ends = np.arange(span.start + span.step, span.end + 1, span.step, dtype=np.int64)
    if ends.size == 0:
        ends = np.array([span.end], dtype=np.int64)
    spans = [rules.window_span(maths.window, int(end)) for end in ends]
    first = min(min(s.start for s in spans), int(ends[0]) - max(policy.windows, default=0))
    size = maths.budgeting.slice_minutes if maths.budgeting.sliced else 1
    first = (first // size) * size
    good, total = service.rollup_series(session, objective.id, first, int(ends[-1]))
    if not maths.budgeting.sliced:
        # Minutes older than the SLO reads were folded into hours: use those for the chart's early points.
        older_good, older_total = service.hourly_series(session, objective.id, first, int(ends[-1]))
        good, total = good + older_good, total + older_total
    exclusions = tuple(service.exclusion_ranges(service.adjustments(session, [slo.id]).get(slo.id, [])))
    if exclusions:
        good, total = rules.exclude(good, total, first, exclusions)
    units = Units(
        good, total, origin=first, budgeting=maths.budgeting, first=first, last=int(ends[-1]), slice_buckets=size
    )
    period = units.totals(np.array([s.start for s in spans]), ends)
    points = []
    burns = {window: _rates(units.totals(ends - window, ends), maths.budget) for window in policy.windows}
    for index, (end, window_span) in enumerate(zip(ends.tolist(), spans, strict=True)):
        status = rules.budget_from_totals(period.column(index), maths, window_span)[0]
        rates = {}
        for window, (rate, has) in burns.items():
            rates[rules.format_duration(window)] = float(rate[index]) if bool(has[index]) else None
        points.append(
            {
                "at": rules.minute_datetime(end).isoformat(),
                "sli": status.sli,
                "budgetRemaining": status.remaining,
                "noData": status.no_data,
                "burnRates": rates,
            }
        )
    return {
        "slo": slo.name,
        "objective": objective.key,
        "target": float(maths.target),
        "stepMinutes": span.step,
        "points": points,
    }


def backtest(
    session: Session, slo: SLO, objective_key: str | None, span: Range, *, step_seconds: int = 60
) -> dict[str, Any]:
    """Replay stored history through the SLO's alert rules: when page and ticket would have fired and reset.

    Minutes are split evenly into ``step_seconds`` steps when a finer replay is asked for (uniform traffic
    within a minute, the usual assumption of the SRE Workbook's detection times)."""
    if step_seconds < 1 or 60 % step_seconds:
        raise InvalidInput(
            "The step must divide a minute.", errors=[FieldError("stepSeconds", "use 1, 2, 3, 5, 10, 15, 20, 30 or 60")]
        )
    objective = _objective(slo, objective_key)
    spec = service.parsed_spec(slo)
    policy = service.alert_policy(spec, objective.key)
    maths = policy.spec
    history = max(rules.window_span(maths.window, span.start).period_minutes, max(policy.windows, default=0))
    first = span.start - history
    good, total = service.rollup_series(session, objective.id, first, span.end)
    per_minute = 60 // step_seconds
    if per_minute > 1:
        if (span.end - first) * per_minute > 20_000_000:
            raise InvalidInput(
                "That replay is too fine for so long a range.",
                errors=[FieldError("stepSeconds", "use a coarser step or a shorter range")],
            )
        good = np.repeat(good / per_minute, per_minute)
        total = np.repeat(total / per_minute, per_minute)
    exclusions = [
        (start * 60, end * 60)
        for start, end in service.exclusion_ranges(service.adjustments(session, [slo.id]).get(slo.id, []))
    ]
    result = rules.backtest(
        good,
        total,
        policy=policy,
        step_seconds=step_seconds,
        origin_seconds=first * 60,
        evaluate_from=span.start * 60 + step_seconds,
        exclusions=exclusions,
    )
    return {
        "slo": slo.name,
        "objective": objective.key,
        "stepSeconds": step_seconds,
        "tiers": [
            {
                "name": rule.name,
                "severity": str(rule.severity),
                "long": rules.format_duration(rule.tier.long_minutes),
                "short": rules.format_duration(rule.tier.short_minutes),
                "factor": rule.factor_float,
                "threshold": rule.threshold_float,
            }
            for rule in policy.rules
        ],
        "events": [event_out(event) for event in result.events],
        "tierEvents": [event_out(event) for event in result.tier_events],
    }


def event_out(event: rules.AlertEvent) -> dict[str, Any]:
    return {
        "at": datetime.fromtimestamp(event.time, tz=rules.minute_datetime(0).tzinfo).isoformat(),
        "seconds": event.time,
        "severity": str(event.severity),
        "kind": event.kind,
        "tier": event.tier,
        "longBurnRate": event.long_burn,
        "shortBurnRate": event.short_burn,
        "budgetSpent": event.budget_spent,
    }


def _rates(totals: rules.WindowTotals, budget: Any) -> tuple[Any, Any]:
    return rules.burn_rates(totals.bad, totals.units, budget)
