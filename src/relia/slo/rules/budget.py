"""Error-budget status of one SLO window.

Conventions (B = 1 - target, exact; P = the window's period length in minutes):

* **Occurrences.** SLI = good / total events. The budget is ``B x total`` events, so it grows with
  traffic; consumed = bad events; consumed fraction = error ratio / B (= the window's burn rate).
* **Timeslices.** SLI = good slices / slices with data (slices without data are left out and counted in
  ``slices_empty``). The budget is time: ``B x n x s`` minutes, where ``n`` is the number of slices of
  length ``s`` in the *whole* period (``P / s`` for a rolling window; for a calendar window the true
  period, not only the part elapsed). Consumed = bad slices x s minutes.
* **RatioTimeslices.** SLI = mean of good/total over slices with data. Budget as for Timeslices; each slice
  with data consumes ``(1 - its ratio) x s`` minutes.

For every method ``burn_rate = (1 - SLI) / B`` over the window and ``remaining = 1 - consumed`` (negative
when overspent). A window without any data is reported with ``no_data=True`` and ``None`` for every value
derived from data (never NaN).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from relia.slo.rules.objective import Method, SLOSpec
from relia.slo.rules.series import Array, exclude
from relia.slo.rules.totals import WindowTotals, totals_ending_at
from relia.slo.rules.windows import WindowSpan, window_span


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Budget of one SLO over ``[start, end)`` epoch minutes.

    Fractions (``sli``, ``error_ratio``, ``consumed``, ``remaining``) are ratios, not percentages.
    ``budget_*`` amounts are in ``budget_unit``: ``"events"`` (Occurrences) or ``"minutes"``.
    """

    method: Method
    start: int
    end: int
    period_minutes: int
    minutes_left: int | None
    no_data: bool
    sli: float | None
    error_ratio: float | None
    burn_rate: float | None
    consumed: float | None
    remaining: float | None
    budget_unit: str
    budget_total: float | None
    """Occurrences: B x total events (None without data). Timeslice methods: B x slices in the period x
    slice length, known even without data."""
    budget_consumed: float | None
    budget_remaining: float | None
    events_good: float
    events_total: float
    slices: int | None
    """Timeslice methods: complete slices counted in the window; None for Occurrences."""
    slices_with_data: int | None
    slices_empty: int | None
    slices_bad: int | None
    """Timeslices only: slices with data below the slice target."""


def period_slices(span: WindowSpan, slice_minutes: int) -> int:
    """How many slices the whole period holds (``P / s`` for rolling windows; for calendar windows the
    slices ending inside the full calendar period)."""
    end = span.end if span.period_end is None else span.period_end
    return end // slice_minutes - (end - span.period_minutes) // slice_minutes


def consumed_fraction(bad: ArrayLike, units: ArrayLike, spec: SLOSpec, period_slices: ArrayLike) -> Array:
    """The fraction of the budget spent (0 where there is no data): ``bad / (B x total events)`` for
    Occurrences, ``bad / (B x slices in the period)`` for the timeslice methods."""
    bad, units = np.asarray(bad, dtype=np.float64), np.asarray(units, dtype=np.float64)
    num, den = float(spec.budget.numerator), float(spec.budget.denominator)
    if spec.budgeting.method is Method.OCCURRENCES:
        out = bad * den / (np.where(units > 0, units, 1.0) * num)
    else:
        out = bad * den / (np.asarray(period_slices, dtype=np.float64) * num)
    return np.where(units > 0, out, 0.0)


def budget_from_totals(totals: WindowTotals, spec: SLOSpec, span: WindowSpan) -> list[BudgetStatus]:
    """Budget statuses from window totals, one per row (a list of one for 0-d totals).

    Use this when the sums come from elsewhere (SQL, rollups): see :meth:`WindowTotals.from_events`.
    """
    num, den = float(spec.budget.numerator), float(spec.budget.denominator)
    method = spec.budgeting.method
    sliced = spec.budgeting.sliced
    size = spec.budgeting.slice_minutes
    slots_in_period = period_slices(span, size) if sliced else 0
    known_total = num * slots_in_period * size / den if sliced else None
    fixed = {
        "method": method,
        "start": span.start,
        "end": span.end,
        "period_minutes": span.period_minutes,
        "minutes_left": span.minutes_left,
        "budget_unit": "minutes" if sliced else "events",
    }
    consumed_all = consumed_fraction(totals.bad, totals.units, spec, slots_in_period)
    columns = (totals.bad, totals.units, totals.events, totals.good_events, totals.slots, consumed_all)
    out = []
    rows = zip(*(np.ravel(c).tolist() for c in columns), strict=True)
    for bad, units, events, good, slots, consumed in rows:
        counts = {
            "events_good": good,
            "events_total": events,
            "slices": slots if sliced else None,
            "slices_with_data": int(units) if sliced else None,
            "slices_empty": slots - int(units) if sliced else None,
            "slices_bad": int(bad) if method is Method.TIMESLICES else None,
        }
        if units <= 0:
            out.append(
                BudgetStatus(
                    **fixed,
                    **counts,
                    no_data=True,
                    sli=None,
                    error_ratio=None,
                    burn_rate=None,
                    consumed=None,
                    remaining=None,
                    budget_total=known_total,
                    budget_consumed=None,
                    budget_remaining=None,
                )
            )
            continue
        error = bad / units
        if method is Method.OCCURRENCES:
            sli = good / units
            amount_total, amount_consumed = units * num / den, bad
        else:
            sli = 1.0 - error if method is Method.RATIO_TIMESLICES else (units - bad) / units
            assert known_total is not None
            amount_total, amount_consumed = known_total, bad * size
        out.append(
            BudgetStatus(
                **fixed,
                **counts,
                no_data=False,
                sli=sli,
                error_ratio=error,
                burn_rate=bad * den / (units * num),
                consumed=consumed,
                remaining=1.0 - consumed,
                budget_total=amount_total,
                budget_consumed=amount_consumed,
                budget_remaining=amount_total - amount_consumed,
            )
        )
    return out


def budget_statuses(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    spec: SLOSpec,
    now: int,
    exclusions: Iterable[tuple[int, int]] = (),
) -> list[BudgetStatus]:
    """Budget status of every row of 2-D per-minute counts (one SLO per row, all sharing ``spec`` and
    ``origin``, the epoch minute of column 0) at epoch minute ``now``. Excluded ``[start, end)`` minute
    ranges are removed first (they become no data, not good)."""
    exclusions = tuple(exclusions)
    if exclusions:
        good, total = exclude(good, total, origin, exclusions)
    span = window_span(spec.window, now)
    totals = totals_ending_at(good, total, origin=origin, end=span.end, starts=[span.start], budgeting=spec.budgeting)
    return budget_from_totals(totals.column(0), spec, span)


def budget_status(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    spec: SLOSpec,
    now: int,
    exclusions: Iterable[tuple[int, int]] = (),
) -> BudgetStatus:
    """Budget status of one SLO (1-D per-minute counts, element 0 at epoch minute ``origin``) for the
    window of ``spec`` ending at epoch minute ``now`` (exclusive)."""
    if np.ndim(total) != 1:
        raise ValueError("budget_status takes one series; use budget_statuses for rows of series")
    return budget_statuses(good, total, origin=origin, spec=spec, now=now, exclusions=exclusions)[0]


def burn_rates(bad: ArrayLike, units: ArrayLike, budget: Fraction) -> tuple[Array, np.ndarray]:
    """Burn rates ``(bad / units) / B`` (see :class:`WindowTotals`), and where there is data (the rate is
    0 where there is none)."""
    bad, units = np.asarray(bad, dtype=np.float64), np.asarray(units, dtype=np.float64)
    has = units > 0
    rate = bad * float(budget.denominator) / (np.where(has, units, 1.0) * float(budget.numerator))
    return np.where(has, rate, 0.0), has
