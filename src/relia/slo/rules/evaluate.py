"""One call per evaluation: budget status, alert state and forecast from one pass over the counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from relia.slo.rules.alerting import AlertPolicy, AlertStatus, statuses_from_columns
from relia.slo.rules.budget import BudgetStatus, budget_from_totals, burn_rates
from relia.slo.rules.forecast import Forecast, forecast
from relia.slo.rules.series import exclude
from relia.slo.rules.totals import totals_ending_at
from relia.slo.rules.windows import window_span

DEFAULT_BURN_WINDOW = 60
"""Minutes over which :func:`evaluate_slos` measures the current burn rate for its forecast."""


@dataclass(frozen=True, slots=True)
class SLOEvaluation:
    """Everything the evaluator needs about one SLO at one minute."""

    budget: BudgetStatus
    alerts: AlertStatus
    forecast: Forecast


def evaluate_slos(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    now: int,
    policy: AlertPolicy,
    exclusions: Iterable[tuple[int, int]] = (),
    burn_window: int = DEFAULT_BURN_WINDOW,
) -> list[SLOEvaluation]:
    """Budget, alerts and forecast for every row of 2-D per-minute counts (one SLO per row, all sharing
    ``policy`` and ``origin``, the epoch minute of column 0) at epoch minute ``now``.

    The forecast extrapolates the burn rate over the last ``burn_window`` minutes (None without data there).
    """
    if burn_window < 1:
        raise ValueError("burn_window must be at least one minute")
    exclusions = tuple(exclusions)
    if exclusions:
        good, total = exclude(good, total, origin, exclusions)
    spec = policy.spec
    span = window_span(spec.window, now)
    lengths = sorted({*policy.windows, burn_window})
    totals = totals_ending_at(
        good,
        total,
        origin=origin,
        end=now,
        starts=[span.start, *(now - length for length in lengths)],
        budgeting=spec.budgeting,
    )
    statuses = budget_from_totals(totals.column(0), spec, span)
    alert_columns = [1 + lengths.index(length) for length in policy.windows]
    alerts = statuses_from_columns(totals.column(alert_columns), len(statuses), policy)
    burn = totals.column(1 + lengths.index(burn_window))
    rate, has = burn_rates(burn.bad, burn.units, spec.budget)
    rates = [r if h else None for r, h in zip(np.ravel(rate).tolist(), np.ravel(has).tolist(), strict=True)]
    return [
        SLOEvaluation(status, alert, forecast(status, burn))
        for status, alert, burn in zip(statuses, alerts, rates, strict=True)
    ]


def evaluate_slo(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    now: int,
    policy: AlertPolicy,
    exclusions: Iterable[tuple[int, int]] = (),
    burn_window: int = DEFAULT_BURN_WINDOW,
) -> SLOEvaluation:
    """:func:`evaluate_slos` for one SLO (1-D per-minute counts)."""
    if np.ndim(total) != 1:
        raise ValueError("evaluate_slo takes one series; use evaluate_slos for rows of series")
    return evaluate_slos(
        good, total, origin=origin, now=now, policy=policy, exclusions=exclusions, burn_window=burn_window
    )[0]
