"""Budget forecasts at a constant burn rate (linear extrapolation, as Nobl9 and Datadog do).

``remaining`` is a fraction of the budget (1 = untouched, 0 = exhausted, negative = overspent), ``burn_rate``
is the current burn (1 = spends exactly the budget over the period), and times are in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from relia.slo.rules.budget import BudgetStatus


def time_to_exhaustion(remaining: float | None, burn_rate: float | None, period_minutes: float) -> float | None:
    """Minutes until the budget is gone if the burn continues: ``R x P / br``.

    None without data or when nothing burns (``br <= 0``); 0 when the budget is already exhausted.
    """
    if remaining is None or burn_rate is None:
        return None
    if remaining <= 0:
        return 0.0
    if burn_rate <= 0:
        return None
    return remaining * period_minutes / burn_rate


def remaining_at_period_end(
    remaining: float | None,
    burn_rate: float | None,
    *,
    period_minutes: float,
    minutes_left: float | None = None,
) -> float | None:
    """The remaining fraction expected at the end of the period if the current burn continues.

    Calendar windows (``minutes_left`` given): ``R - br x minutes_left / P``.
    Rolling windows (``minutes_left`` None) never end, so this is the value after one more full period at
    this burn rate, which has then replaced the whole window: ``1 - br``, whatever ``R`` is now.
    None without data.
    """
    if remaining is None or burn_rate is None:
        return None
    if minutes_left is None:
        return 1.0 - burn_rate
    return remaining - burn_rate * minutes_left / period_minutes


@dataclass(frozen=True, slots=True)
class Forecast:
    """``burn_rate`` is the current burn the forecast extrapolates (None without data)."""

    burn_rate: float | None
    minutes_to_exhaustion: float | None
    remaining_at_period_end: float | None


def forecast(status: BudgetStatus, burn_rate: float | None) -> Forecast:
    """Both forecasts for a budget status and the current burn rate (e.g. over the last hour)."""
    return Forecast(
        burn_rate=burn_rate,
        minutes_to_exhaustion=time_to_exhaustion(status.remaining, burn_rate, status.period_minutes),
        remaining_at_period_end=remaining_at_period_end(
            status.remaining,
            burn_rate,
            period_minutes=status.period_minutes,
            minutes_left=status.minutes_left,
        ),
    )
