"""Replay a count series through an SLO's alert rules and report every page and ticket transition.

The series is at any step (``step_seconds``, default 60): element ``i`` counts the events of
``[origin_seconds + i x step, origin_seconds + (i + 1) x step)`` in epoch seconds (or any time axis whose
zero is aligned like the epoch: slices are aligned to time zero). The rules are evaluated at the end of
every step, ``t = origin_seconds + (i + 1) x step``, over the windows ``[t - W, t)``; windows reaching before
the series see no data there. Alert windows, slices and rolling periods must be whole numbers of steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relia.slo.rules.alerting import AlertPolicy, Severity
from relia.slo.rules.budget import burn_rates, consumed_fraction
from relia.slo.rules.series import as_counts, exclusion_mask
from relia.slo.rules.totals import Units
from relia.slo.rules.windows import RollingWindow, calendar_period


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A page or ticket (or, in ``tier_events``, a single tier) starting or stopping.

    ``time`` is in seconds; ``kind`` is ``"fired"`` or ``"reset"``. ``tier`` is the tier that fired (for a
    reset: the tier reported when it fired). The burn rates are those of that tier's long and short windows
    at ``time`` (None without data); ``budget_spent`` is the consumed fraction of the SLO window ending at
    ``time`` (the rolling period, or the calendar period so far).
    """

    time: int
    severity: Severity
    kind: str
    tier: str
    long_burn: float | None
    short_burn: float | None
    budget_spent: float | None


@dataclass(frozen=True)
class BacktestResult:
    """What a replay found: the transitions, plus per-step firing states and burn rates on demand."""

    policy: AlertPolicy
    step_seconds: int
    times: NDArray[np.int64] = field(repr=False)
    """Evaluation times (seconds): the end of every step replayed."""
    events: tuple[AlertEvent, ...]
    """Page and ticket transitions, in time order."""
    tier_events: tuple[AlertEvent, ...]
    """Transitions of each tier on its own, in time order."""
    _firing: Mapping[str, NDArray[np.bool_]] = field(repr=False)
    _units: Units = field(repr=False)

    def firing(self, key: str | Severity) -> NDArray[np.bool_]:
        """Whether a severity (``Severity.PAGE``, ``"ticket"``) or a tier (``"page-quick"``) fires at each
        of :attr:`times`."""
        return self._firing[str(key)]

    def burn_rates(self, window_minutes: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Burn rate over the window of that length at each of :attr:`times`, and where the window has
        data (the rate is 0 where it has none)."""
        window = _buckets(window_minutes * 60, self.step_seconds, f"window {window_minutes}m")
        ends = self.times // self.step_seconds
        bad, units, _ = self._units.sliding(int(ends[0]), int(ends[-1]), window)
        return burn_rates(bad, units, self.policy.spec.budget)


def _buckets(seconds: int, step: int, what: str) -> int:
    if seconds % step:
        raise ValueError(f"{what} is not a whole number of {step}-second steps")
    return seconds // step


def backtest(
    good: ArrayLike,
    total: ArrayLike,
    *,
    policy: AlertPolicy,
    step_seconds: int = 60,
    origin_seconds: int = 0,
    evaluate_from: int | None = None,
    exclusions: Iterable[tuple[int, int]] = (),
) -> BacktestResult:
    """Replay 1-D good/total counts (one element per step, element 0 starting at ``origin_seconds``)
    through ``policy``, evaluating at the end of every step from ``evaluate_from`` (seconds; default: the
    end of the first step) to the end of the series. Data before ``evaluate_from`` still fills the windows,
    so history can be given without being replayed; nothing fires before the first evaluation, so an
    alert already firing then is reported as fired at the first evaluation time.

    ``exclusions`` are ``[start, end)`` ranges in seconds; every step overlapping one becomes no data.
    """
    step = int(step_seconds)
    if step < 1:
        raise ValueError("step_seconds must be at least 1")
    if origin_seconds % step:
        raise ValueError("origin_seconds must be a multiple of step_seconds")
    good, total = np.broadcast_arrays(as_counts(good), as_counts(total))
    if total.ndim != 1 or total.size == 0:
        raise ValueError("backtest takes one non-empty series")
    count = total.shape[0]
    origin = origin_seconds // step
    spec = policy.spec
    slice_minutes = spec.budgeting.slice_minutes
    slice_buckets = _buckets(slice_minutes * 60, step, "the slice length") if spec.budgeting.sliced else 1
    windows = {m: _buckets(m * 60, step, f"window {m}m") for m in policy.windows}
    if isinstance(spec.window, RollingWindow):
        _buckets(spec.window.minutes * 60, step, "the SLO window")
    first_end = origin + 1 if evaluate_from is None else -(-evaluate_from // step)
    if not origin + 1 <= first_end <= origin + count:
        raise ValueError("evaluate_from must lie after the first step and within the series")
    last_end = origin + count

    ranges = [(start // step, -(-end // step)) for start, end in exclusions]
    if ranges:
        mask = exclusion_mask(count, origin, ranges)
        good, total = np.where(mask, 0.0, good), np.where(mask, 0.0, total)
    units = Units(
        good,
        total,
        origin=origin,
        budgeting=spec.budgeting,
        first=origin,
        last=last_end,
        slice_buckets=slice_buckets,
    )

    size = last_end - first_end + 1
    firing = {rule.name: np.full(size, rule.can_fire) for rule in policy.rules}
    # window -> threshold -> the tiers comparing that window with that threshold
    readers: dict[int, dict[Fraction, list[str]]] = {}
    for rule in policy.rules:
        if rule.can_fire:
            assert rule.threshold is not None
            for minutes in {rule.tier.long_minutes, rule.tier.short_minutes}:
                readers.setdefault(minutes, {}).setdefault(rule.threshold, []).append(rule.name)
    lhs, rhs, exceeds = np.empty(size), np.empty(size), np.empty(size, dtype=bool)
    for minutes, by_threshold in readers.items():  # one window's sums in memory at a time
        bad, units_sum, events = units.sliding(first_end, last_end, windows[minutes])
        guard = events >= policy.min_events if policy.min_events > 0 else None
        for threshold, names in by_threshold.items():
            # bad x den > units x num (exact for integer counts); a window without data never exceeds.
            np.multiply(bad, float(threshold.denominator), out=lhs)
            np.multiply(units_sum, float(threshold.numerator), out=rhs)
            np.greater(lhs, rhs, out=exceeds)
            if guard is not None:
                exceeds &= guard
            for name in names:
                firing[name] &= exceeds
        del bad, units_sum, events, guard
    del lhs, rhs, exceeds
    for severity in Severity:
        tiers = [firing[rule.name] for rule in policy.rules if rule.severity is severity]
        firing[str(severity)] = np.logical_or.reduce(tiers) if tiers else np.zeros(size, dtype=bool)

    def transitions(fires: NDArray[np.bool_]) -> list[tuple[int, str]]:
        previous = np.concatenate(([False], fires[:-1]))
        fired = [(i, "fired") for i in np.flatnonzero(fires & ~previous).tolist()]
        return sorted(fired + [(i, "reset") for i in np.flatnonzero(~fires & previous).tolist()])

    def moment(index: int, tier: str, severity: Severity, kind: str) -> AlertEvent:
        rule = next(r for r in policy.rules if r.name == tier)
        end = first_end + index
        burns: list[float | None] = []
        for minutes in (rule.tier.long_minutes, rule.tier.short_minutes):
            totals = units.totals(end - windows.get(minutes, 0), end)
            rate, has = burn_rates(totals.bad, totals.units, spec.budget)
            burns.append(float(rate) if has else None)
        return AlertEvent(
            time=end * step,
            severity=severity,
            kind=kind,
            tier=tier,
            long_burn=burns[0],
            short_burn=burns[1],
            budget_spent=_spent(units, policy, end, step, slice_buckets),
        )

    tier_events = [
        moment(index, rule.name, rule.severity, kind)
        for rule in policy.rules
        for index, kind in transitions(firing[rule.name])
    ]
    events = []
    for severity in Severity:
        names = [rule.name for rule in policy.rules if rule.severity is severity]
        for index, kind in transitions(firing[str(severity)]):
            # fired: the first tier firing now; reset: the last tier that held the alert.
            at = index if kind == "fired" else index - 1
            tier = next(name for name in names if firing[name][at])
            events.append(moment(index, tier, severity, kind))

    def order(event: AlertEvent) -> tuple[int, bool, str]:
        return (event.time, event.kind == "fired", event.tier)

    return BacktestResult(
        policy=policy,
        step_seconds=step,
        times=np.arange(first_end, last_end + 1, dtype=np.int64) * step,
        events=tuple(sorted(events, key=order)),
        tier_events=tuple(sorted(tier_events, key=order)),
        _firing=firing,
        _units=units,
    )


def _spent(units: Units, policy: AlertPolicy, end: int, step: int, slice_buckets: int) -> float | None:
    """Consumed budget fraction of the SLO window ending at bucket ``end``, or None without data."""
    spec = policy.spec
    window = spec.window
    if isinstance(window, RollingWindow):
        start = end - window.minutes * 60 // step
        period_end = end
    else:
        period = calendar_period(window.unit, window.zone, end * step // 60)
        start, period_end = -(-period.start * 60 // step), -(-period.end * 60 // step)
    totals = units.totals(start, end)
    if not float(totals.units) > 0:
        return None
    slices = period_end // slice_buckets - start // slice_buckets
    return float(consumed_fraction(totals.bad, totals.units, spec, slices))
