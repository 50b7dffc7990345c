"""The SLO evaluator: every minute, budgets, burn rates, alert conditions and forecasts for every objective.

It keeps running totals per objective and window (the SLO's period, each alert window, the forecast's
burn window, the no-data window) and moves them forward by adding the minutes that entered a window and
subtracting the ones that left, so a tick costs the same whatever the history's length. Totals are
recounted from the stored minutes only when they are missing (first run, changed definition, a gap of
more than ``MAX_CATCH_UP`` minutes, a new calendar period) or when data arrived for minutes already
counted (the objective is marked dirty by ingestion).

One evaluator runs at a time: on PostgreSQL a transaction-level advisory lock elects it and the
``slo_evaluator`` row, held for update, orders it against ingestion (see ``service.evaluated_end``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from relia.core import generations, hooks, timeline
from relia.core.clock import Clock
from relia.core.db import Database
from relia.slo import rules, service
from relia.slo.models import (
    SLO,
    EvaluatorMark,
    Objective,
    ObjectiveStatus,
    Rollup,
    SourceState,
    WindowState,
)
from relia.slo.schemas import SLOSpec

log = structlog.get_logger("relia.slo.evaluator")

GRACE_MINUTES = 1
"""A minute is counted once it ended at least this long ago, so pushes of the current minute are on time."""
MAX_CATCH_UP = 360
"""Beyond this many missed minutes, recounting from the stored minutes is cheaper than catching up."""
PERIOD = 0
"""Window key of the SLO's own period in the running totals."""
PERSIST_EVERY = 10
"""Running totals are saved every this many minutes (and whenever recounted) so a restart resumes cheaply."""
ADVISORY_LOCK_KEY = 0x52454C49  # "RELI"
BUDGET_BANDS = (50, 25, 0)


@dataclass(frozen=True)
class ObjectivePlan:
    """What the evaluator needs to know about one objective, derived from its SLO's definition."""

    objective_id: int
    slo_id: int
    slo_name: str
    service_id: int
    key: str
    maths: rules.SLOSpec
    policy: rules.AlertPolicy
    windows: tuple[int, ...]
    no_data_after: int | None
    exclusions: tuple[tuple[int, int], ...]

    @property
    def sliced(self) -> bool:
        return self.maths.budgeting.sliced

    def start_of(self, window: int, end: int) -> int:
        if window == PERIOD:
            return rules.window_span(self.maths.window, end).start
        return end - window


@dataclass
class Running:
    start: int
    end: int
    bad: float = 0.0
    units: float = 0.0
    events: float = 0.0
    good_events: float = 0.0

    def totals(self) -> rules.WindowTotals:
        return rules.WindowTotals(
            bad=np.float64(self.bad),
            units=np.float64(self.units),
            events=np.float64(self.events),
            good_events=np.float64(self.good_events),
            slots=np.int64(max(0, self.end - self.start)),
        )


@dataclass
class TickReport:
    evaluated: int = 0
    recounted: int = 0
    skipped: bool = False
    end_minute: int | None = None
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)


class Evaluator:
    """Holds the running totals between ticks (in memory, saved to ``slo_window_state``)."""

    def __init__(self) -> None:
        self.running: dict[tuple[int, int], Running] = {}
        self.plans: dict[tuple[int, int, tuple[tuple[int, int], ...]], list[ObjectivePlan]] = {}
        self.loaded = False

    # ---------------------------------------------------------------------------------------- the tick

    def tick(self, db: Database, clock: Clock) -> TickReport:
        started = time.perf_counter()
        report = TickReport()
        now = clock.now()
        end = rules.epoch_minute(now) - GRACE_MINUTES
        with db.transaction() as session:
            mark = self._take_mark(session, db)
            if mark is None:
                report.skipped = True
                return report
            if mark.end_minute >= end and not self._anything_dirty(session):
                report.skipped = True
                report.end_minute = mark.end_minute
                return report
            end = max(end, mark.end_minute)
            slos = session.scalars(select(SLO).options(selectinload(SLO.objectives))).all()
            adjustments = service.adjustments(session, [slo.id for slo in slos])
            plans = self._plans(slos, adjustments)
            if not self.loaded:
                self._load_saved(session, plans)
            dirty = {
                row.id: row.dirty_from_minute
                for row in session.execute(
                    select(Objective.id, Objective.dirty_from_minute).where(Objective.dirty_from_minute.is_not(None))
                )
            }
            recount = [plan for plan in plans if self._needs_recount(plan, end, dirty)]
            incremental = [plan for plan in plans if plan not in recount]
            self._advance(session, incremental, end)
            self._recount(session, recount, end)
            results = self._evaluate(plans, end)
            report.events = self._publish(session, plans, results, end, now)
            if dirty:
                session.execute(update(Objective).where(Objective.id.in_(list(dirty))).values(dirty_from_minute=None))
            if recount or end % PERSIST_EVERY == 0:
                self._save(session, plans if end % PERSIST_EVERY == 0 else recount)
            self._forget_removed(plans)
            mark.end_minute, mark.evaluated_at = end, now
            report.evaluated, report.recounted, report.end_minute = len(plans), len(recount), end
        report.seconds = time.perf_counter() - started
        return report

    def _take_mark(self, session: Session, db: Database) -> EvaluatorMark | None:
        if db.is_postgres and not session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ):
            return None
        mark = session.scalars(select(EvaluatorMark).where(EvaluatorMark.id == 1).with_for_update()).one_or_none()
        if mark is None:
            # Start at the oldest minute any objective could need so the first tick recounts everything.
            mark = EvaluatorMark(id=1, end_minute=0, evaluated_at=datetime.fromtimestamp(0).astimezone())
            session.add(mark)
            session.flush()
        return mark

    @staticmethod
    def _anything_dirty(session: Session) -> bool:
        return session.scalar(select(func.count()).where(Objective.dirty_from_minute.is_not(None))) > 0

    # ----------------------------------------------------------------------------------------- plans

    def _plans(self, slos: list[SLO], adjustments: dict[int, list[Any]]) -> list[ObjectivePlan]:
        plans: list[ObjectivePlan] = []
        fresh: dict[tuple[int, int, tuple[tuple[int, int], ...]], list[ObjectivePlan]] = {}
        for slo in slos:
            exclusions = tuple(service.exclusion_ranges(adjustments.get(slo.id, [])))
            key = (slo.id, slo.version, exclusions)
            found = self.plans.get(key)
            if found is None or {plan.objective_id for plan in found} != {o.id for o in slo.objectives}:
                found = self._plan_slo(slo, exclusions)
            fresh[key] = found
            plans.extend(found)
        self.plans = fresh
        return plans

    @staticmethod
    def _plan_slo(slo: SLO, exclusions: tuple[tuple[int, int], ...]) -> list[ObjectivePlan]:
        spec = SLOSpec.model_validate(slo.spec)
        no_data = rules.parse_duration(spec.alerting.no_data.after) if spec.alerting.no_data.enabled else None
        plans = []
        for objective in slo.objectives:
            policy = service.alert_policy(spec, objective.key)
            windows = sorted({*policy.windows, rules.DEFAULT_BURN_WINDOW, *([no_data] if no_data else [])})
            plans.append(
                ObjectivePlan(
                    objective_id=objective.id,
                    slo_id=slo.id,
                    slo_name=slo.name,
                    service_id=slo.service_id,
                    key=objective.key,
                    maths=policy.spec,
                    policy=policy,
                    windows=(PERIOD, *windows),
                    no_data_after=no_data,
                    exclusions=exclusions,
                )
            )
        return plans

    def _load_saved(self, session: Session, plans: list[ObjectivePlan]) -> None:
        ids = [plan.objective_id for plan in plans]
        for row in session.scalars(select(WindowState).where(WindowState.objective_id.in_(ids))):
            self.running[(row.objective_id, row.window)] = Running(
                row.start_minute, row.end_minute, row.bad, row.units, row.events, row.good_events
            )
        self.loaded = True

    def _forget_removed(self, plans: list[ObjectivePlan]) -> None:
        wanted = {(plan.objective_id, window) for plan in plans for window in plan.windows}
        for key in [key for key in self.running if key not in wanted]:
            del self.running[key]

    # --------------------------------------------------------------------------------- moving forward

    def _needs_recount(self, plan: ObjectivePlan, end: int, dirty: dict[int, int]) -> bool:
        for window in plan.windows:
            state = self.running.get((plan.objective_id, window))
            if state is None or state.end > end or end - state.end > MAX_CATCH_UP:
                return True
            start = plan.start_of(window, end)
            # Moved back, or jumped (a new calendar period): recounting is cheaper than subtracting a month.
            if start < state.start or start - state.start > MAX_CATCH_UP:
                return True
            since = dirty.get(plan.objective_id)
            if since is not None and since < state.end:
                return True
        return False

    def _advance(self, session: Session, plans: list[ObjectivePlan], end: int) -> None:
        """Add what entered each window and subtract what left it."""
        occurrences = [plan for plan in plans if not plan.sliced]
        ranges: dict[tuple[int, int], list[tuple[ObjectivePlan, int, int]]] = defaultdict(list)
        for plan in occurrences:
            for window in plan.windows:
                state = self.running[(plan.objective_id, window)]
                start = plan.start_of(window, end)
                if state.end < end:
                    for lo, hi in _minus(state.end, end, plan.exclusions):
                        ranges[(lo, hi)].append((plan, window, +1))
                if state.start < start:
                    for lo, hi in _minus(state.start, start, plan.exclusions):
                        ranges[(lo, hi)].append((plan, window, -1))
        for (lo, hi), users in ranges.items():
            sums = _event_sums(session, sorted({plan.objective_id for plan, _, _ in users}), lo, hi)
            for plan, window, sign in users:
                good, total = sums.get(plan.objective_id, (0.0, 0.0))
                state = self.running[(plan.objective_id, window)]
                state.events += sign * total
                state.good_events += sign * good
                state.units += sign * total
                state.bad += sign * (total - good)
        for plan in occurrences:
            for window in plan.windows:
                state = self.running[(plan.objective_id, window)]
                state.start, state.end = plan.start_of(window, end), end
        for plan in plans:
            if plan.sliced:
                self._advance_sliced(session, plan, end)

    def _advance_sliced(self, session: Session, plan: ObjectivePlan, end: int) -> None:
        size = plan.maths.budgeting.slice_minutes
        for window in plan.windows:
            state = self.running[(plan.objective_id, window)]
            start = plan.start_of(window, end)
            entered = self._sliced_range(session, plan, state.end, end, size)
            left = self._sliced_range(session, plan, state.start, start, size)
            for name in ("bad", "units", "events", "good_events"):
                value = getattr(state, name) + float(getattr(entered, name)) - float(getattr(left, name))
                setattr(state, name, value)
            state.start, state.end = start, end

    @staticmethod
    def _sliced_range(session: Session, plan: ObjectivePlan, lo: int, hi: int, size: int) -> rules.WindowTotals:
        """Totals of the complete slices ending in (lo, hi]: what a window gains when its edge moves."""
        if hi <= lo:
            return _zero_totals()
        first = (lo // size) * size
        good, total = service.rollup_series(session, plan.objective_id, first, hi)
        if plan.exclusions:
            good, total = rules.exclude(good, total, first, plan.exclusions)
        return rules.totals_ending_at(
            good, total, origin=first, end=hi, starts=[lo], budgeting=plan.maths.budgeting
        ).column(0)

    # --------------------------------------------------------------------------------------- recounting

    def _recount(self, session: Session, plans: list[ObjectivePlan], end: int) -> None:
        """Totals from the stored minutes: SQL sums for Occurrences (shared ranges in one query), the
        minutes themselves for the slice methods."""
        ranges: dict[tuple[int, int], list[tuple[ObjectivePlan, int]]] = defaultdict(list)
        for plan in plans:
            for window in plan.windows:
                self.running[(plan.objective_id, window)] = Running(plan.start_of(window, end), end)
            if plan.sliced:
                self._recount_sliced(session, plan, end)
                continue
            for window in plan.windows:
                for lo, hi in _minus(plan.start_of(window, end), end, plan.exclusions):
                    ranges[(lo, hi)].append((plan, window))
        for (lo, hi), users in ranges.items():
            sums = _event_sums(session, sorted({plan.objective_id for plan, _ in users}), lo, hi)
            for plan, window in users:
                good, total = sums.get(plan.objective_id, (0.0, 0.0))
                state = self.running[(plan.objective_id, window)]
                state.events += total
                state.good_events += good
                state.units += total
                state.bad += total - good

    def _recount_sliced(self, session: Session, plan: ObjectivePlan, end: int) -> None:
        size = plan.maths.budgeting.slice_minutes
        starts = [plan.start_of(window, end) for window in plan.windows]
        first = (min(starts) // size) * size
        good, total = service.rollup_series(session, plan.objective_id, first, end)
        if plan.exclusions:
            good, total = rules.exclude(good, total, first, plan.exclusions)
        totals = rules.totals_ending_at(
            good, total, origin=first, end=end, starts=starts, budgeting=plan.maths.budgeting
        )
        for index, window in enumerate(plan.windows):
            column = totals.column(index)
            self.running[(plan.objective_id, window)] = Running(
                starts[index],
                end,
                float(column.bad),
                float(column.units),
                float(column.events),
                float(column.good_events),
            )

    # --------------------------------------------------------------------------------------- evaluating

    def _evaluate(self, plans: list[ObjectivePlan], end: int) -> dict[int, dict[str, Any]]:
        results: dict[int, dict[str, Any]] = {}
        for plan in plans:
            span = rules.window_span(plan.maths.window, end)
            budget = rules.budget_from_totals(self.running[(plan.objective_id, PERIOD)].totals(), plan.maths, span)[0]
            windows = {window: self.running[(plan.objective_id, window)].totals() for window in plan.windows[1:]}
            alerts = rules.alert_from_totals(windows, plan.policy)[0]
            rate, has = _rates(windows[rules.DEFAULT_BURN_WINDOW], plan.maths.budget)
            burn = float(rate) if bool(has) else None
            outlook = rules.forecast(budget, burn)
            no_data = plan.no_data_after is not None and not bool(windows[plan.no_data_after].has_data)
            results[plan.objective_id] = {
                "budget": budget,
                "alerts": alerts,
                "forecast": outlook,
                "no_data_alert": no_data,
                "burn_rates": {window: _burn(totals, plan.maths.budget) for window, totals in windows.items()},
            }
        return results

    # --------------------------------------------------------------------------------------- publishing

    def _publish(
        self,
        session: Session,
        plans: list[ObjectivePlan],
        results: dict[int, dict[str, Any]],
        end: int,
        now: datetime,
    ) -> list[str]:
        previous = service.statuses(session, [plan.objective_id for plan in plans])
        events: list[str] = []
        rows = []
        for plan in plans:
            result = results[plan.objective_id]
            budget: rules.BudgetStatus = result["budget"]
            alerts: rules.AlertStatus = result["alerts"]
            state = classify(budget, alerts)
            band = _band(budget.remaining)
            before = previous.get(plan.objective_id)
            label = plan.slo_name if plan.key == "default" else f"{plan.slo_name}/{plan.key}"
            events += self._transitions(session, plan, label, before, result, band, now)
            rows.append(
                {
                    "objective_id": plan.objective_id,
                    "evaluated_at": now,
                    "through_minute": end,
                    "state": state,
                    "budget_remaining": budget.remaining,
                    "page_active": alerts.page,
                    "ticket_active": alerts.ticket,
                    "no_data_active": result["no_data_alert"],
                    "budget_band": band,
                    "detail": detail(plan, result),
                }
            )
        _upsert(session, ObjectiveStatus, rows, ["objective_id"])
        if rows:
            generations.bump(session, service.SLO_GENERATION)
        return events

    def _transitions(
        self,
        session: Session,
        plan: ObjectivePlan,
        label: str,
        before: ObjectiveStatus | None,
        result: dict[str, Any],
        band: int,
        now: datetime,
    ) -> list[str]:
        alerts: rules.AlertStatus = result["alerts"]
        budget: rules.BudgetStatus = result["budget"]
        found: list[tuple[str, str, dict[str, Any]]] = []
        was_page = before.page_active if before else False
        was_ticket = before.ticket_active if before else False
        for severity, active, was, tier in (
            ("page", alerts.page, was_page, alerts.page_tier),
            ("ticket", alerts.ticket, was_ticket, alerts.ticket_tier),
        ):
            if active and not was:
                status = alerts.tier(tier) if tier else None
                found.append(
                    (
                        "slo.alert.fired",
                        f"{severity.capitalize()} alert on {label}: error budget burning {_rate_text(status)}",
                        {"severity": severity, "tier": tier, **_tier_data(status), **_budget_data(budget)},
                    )
                )
            elif was and not active:
                found.append(
                    (
                        "slo.alert.resolved",
                        f"{severity.capitalize()} alert on {label} resolved",
                        {"severity": severity, **_budget_data(budget)},
                    )
                )
        was_no_data = before.no_data_active if before else False
        if result["no_data_alert"] and not was_no_data:
            found.append(
                (
                    "slo.nodata.started",
                    f"No data for {label} in the last {rules.format_duration(plan.no_data_after or 0)}",
                    {},
                )
            )
        elif was_no_data and not result["no_data_alert"]:
            found.append(("slo.nodata.ended", f"Data is arriving again for {label}", {}))
        old_band = before.budget_band if before else 100
        if band < old_band:
            crossed = [level for level in BUDGET_BANDS if band <= level < old_band]
            for level in crossed:
                found.append(
                    (
                        "slo.budget.crossed",
                        f"Error budget of {label} fell below {level} %"
                        if level
                        else f"Error budget of {label} is exhausted",
                        {"threshold": level, "direction": "down", **_budget_data(budget)},
                    )
                )
        elif band > old_band and before is not None:
            for level in [level for level in reversed(BUDGET_BANDS) if old_band <= level < band]:
                found.append(
                    (
                        "slo.budget.crossed",
                        f"Error budget of {label} is back above {level} %",
                        {"threshold": level, "direction": "up", **_budget_data(budget)},
                    )
                )
        for event_type, summary, data in found:
            timeline.append(
                session,
                type=event_type,
                at=now,
                service_id=plan.service_id,
                actor="slo-evaluator",
                summary=summary,
                data={"slo": plan.slo_name, "objective": plan.key, **data},
            )
            # Other domains (alerting turns page/ticket burns into alerts) react in this transaction.
            hooks.emit(
                session,
                event_type,
                service_id=plan.service_id,
                slo=plan.slo_name,
                objective=plan.key,
                summary=summary,
                at=now,
                data=data,
            )
        return [event_type for event_type, _, _ in found]

    # ------------------------------------------------------------------------------------------ saving

    def _save(self, session: Session, plans: list[ObjectivePlan]) -> None:
        rows = []
        for plan in plans:
            for window in plan.windows:
                state = self.running[(plan.objective_id, window)]
                rows.append(
                    {
                        "objective_id": plan.objective_id,
                        "window": window,
                        "start_minute": state.start,
                        "end_minute": state.end,
                        "bad": state.bad,
                        "units": state.units,
                        "events": state.events,
                        "good_events": state.good_events,
                    }
                )
        _upsert(session, WindowState, rows, ["objective_id", "window"])


# ------------------------------------------------------------------------------------------------- helpers


def classify(budget: rules.BudgetStatus, alerts: rules.AlertStatus) -> str:
    """healthy / at_risk / exhausted / no_data, as lists and colours show it."""
    if budget.no_data or budget.remaining is None:
        return "no_data"
    if budget.remaining <= 0:
        return "exhausted"
    if budget.remaining < 0.25 or alerts.page or alerts.ticket:
        return "at_risk"
    return "healthy"


def _band(remaining: float | None) -> int:
    if remaining is None:
        return 100
    for level in BUDGET_BANDS[::-1]:
        if remaining <= level / 100:
            return level
    return 100


def _burn(totals: rules.WindowTotals, budget: Any) -> float | None:
    rate, has = _rates(totals, budget)
    return float(rate) if bool(has) else None


def _rate_text(status: rules.TierStatus | None) -> str:
    if status is None or status.long_burn is None:
        return "fast"
    return f"at {status.long_burn:.1f}x (short window {status.short_burn or 0:.1f}x)"


def _tier_data(status: rules.TierStatus | None) -> dict[str, Any]:
    if status is None:
        return {}
    return {"longBurnRate": status.long_burn, "shortBurnRate": status.short_burn}


def _budget_data(budget: rules.BudgetStatus) -> dict[str, Any]:
    return {"budgetRemaining": budget.remaining, "sli": budget.sli}


def detail(plan: ObjectivePlan, result: dict[str, Any]) -> dict[str, Any]:
    """The JSON the API and pages show for an objective's current status."""
    budget: rules.BudgetStatus = result["budget"]
    alerts: rules.AlertStatus = result["alerts"]
    outlook: rules.Forecast = result["forecast"]
    return {
        "window": {
            "start": rules.minute_datetime(budget.start).isoformat(),
            "end": rules.minute_datetime(budget.end).isoformat(),
            "periodMinutes": budget.period_minutes,
            "minutesLeft": budget.minutes_left,
        },
        "sli": budget.sli,
        "errorRatio": budget.error_ratio,
        "budget": {
            "unit": budget.budget_unit,
            "total": budget.budget_total,
            "consumed": budget.budget_consumed,
            "remaining": budget.budget_remaining,
            "consumedFraction": budget.consumed,
            "remainingFraction": budget.remaining,
        },
        "events": {"good": budget.events_good, "total": budget.events_total},
        "slices": None
        if budget.slices is None
        else {
            "counted": budget.slices,
            "withData": budget.slices_with_data,
            "empty": budget.slices_empty,
            "bad": budget.slices_bad,
        },
        "burnRates": {rules.format_duration(window): rate for window, rate in sorted(result["burn_rates"].items())},
        "periodBurnRate": budget.burn_rate,
        "alerts": {
            "page": alerts.page,
            "pageTier": alerts.page_tier,
            "ticket": alerts.ticket,
            "ticketTier": alerts.ticket_tier,
            "noData": result["no_data_alert"],
            "tiers": [
                {
                    "name": tier.name,
                    "severity": str(tier.severity),
                    "firing": tier.firing,
                    "longBurnRate": tier.long_burn,
                    "shortBurnRate": tier.short_burn,
                }
                for tier in alerts.tiers
            ],
        },
        "forecast": {
            "burnRate": outlook.burn_rate,
            "minutesToExhaustion": outlook.minutes_to_exhaustion,
            "remainingAtPeriodEnd": outlook.remaining_at_period_end,
        },
    }


def _minus(lo: int, hi: int, exclusions: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """[lo, hi) without the excluded ranges, as a list of ranges."""
    pieces = [(lo, hi)] if hi > lo else []
    for ex_lo, ex_hi in exclusions:
        next_pieces = []
        for a, b in pieces:
            if ex_hi <= a or ex_lo >= b:
                next_pieces.append((a, b))
                continue
            if a < ex_lo:
                next_pieces.append((a, ex_lo))
            if ex_hi < b:
                next_pieces.append((ex_hi, b))
        pieces = next_pieces
    return pieces


def _event_sums(session: Session, objective_ids: list[int], lo: int, hi: int) -> dict[int, tuple[float, float]]:
    sums: dict[int, tuple[float, float]] = {}
    for start in range(0, len(objective_ids), 900):
        chunk = objective_ids[start : start + 900]
        for objective_id, good, total in session.execute(
            select(Rollup.objective_id, func.sum(Rollup.good), func.sum(Rollup.total))
            .where(Rollup.objective_id.in_(chunk), Rollup.minute >= lo, Rollup.minute < hi)
            .group_by(Rollup.objective_id)
        ):
            sums[objective_id] = (float(good or 0.0), float(total or 0.0))
    return sums


def _zero_totals() -> rules.WindowTotals:
    zero = np.float64(0.0)
    return rules.WindowTotals(bad=zero, units=zero, events=zero, good_events=zero, slots=np.int64(0))


def _upsert(session: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(model)
    columns = [column for column in rows[0] if column not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={column: getattr(statement.excluded, column) for column in columns}
    )
    for start in range(0, len(rows), 500):
        session.execute(statement, rows[start : start + 500])


__all__ = ["Evaluator", "ObjectivePlan", "TickReport", "classify", "detail"]
_unused = (and_, or_, replace, SourceState)


def _rates(totals: rules.WindowTotals, budget: Any) -> tuple[Any, Any]:
    return rules.burn_rates(totals.bad, totals.units, budget)
