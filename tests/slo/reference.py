"""A plain-Python reference for the SLO math: loops over minutes, exact fractions, no numpy.

Written from the definitions (docs of relia.slo.rules and ../shared/reference/slo.md), not from the
implementation, so the property tests compare two independent readings of the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

# ------------------------------------------------------------------------------------------------- calendar


def period_key(unit: str, minute: int, zone: str) -> tuple[int, ...]:
    day = datetime.fromtimestamp(minute * 60, ZoneInfo(zone)).date()
    if unit == "week":
        return tuple(day.isocalendar())[:2]  # ISO weeks start on Monday
    if unit == "month":
        return (day.year, day.month)
    if unit == "quarter":
        return (day.year, (day.month - 1) // 3)
    return (day.year,)


def calendar_period(unit: str, zone: str, at: int) -> tuple[int, int]:
    """[start, end) of the period containing minute ``at``: walk back and forward an hour at a time, then a
    minute at a time, while the local date stays in the same period."""
    key = period_key(unit, at, zone)
    start = at
    while period_key(unit, start - 60, zone) == key:
        start -= 60
    while period_key(unit, start - 1, zone) == key:
        start -= 1
    last = at
    while period_key(unit, last + 60, zone) == key:
        last += 60
    while period_key(unit, last + 1, zone) == key:
        last += 1
    return start, last + 1


# --------------------------------------------------------------------------------------------------- counts


def cleaned(good: list[float], total: list[float], origin: int, exclusions=()) -> dict[int, tuple]:
    """minute -> (good, total) for the minutes with data, after exclusions and cleaning."""
    data = {}
    for i, (g, t) in enumerate(zip(good, total, strict=True)):
        minute = origin + i
        if any(start <= minute < end for start, end in exclusions):
            continue
        if not (t > 0 and math.isfinite(t) and g >= 0 and math.isfinite(g)):
            continue
        data[minute] = (exact(min(g, t)), exact(t))
    return data


def exact(value: float) -> int | Fraction:
    """Integers stay ints (fast and exact); other values become exact fractions."""
    return int(value) if float(value).is_integer() else Fraction(value)


@dataclass
class Totals:
    bad: Fraction
    units: Fraction
    events: Fraction
    good_events: Fraction
    slots: int


def totals(data: dict, start: int, end: int, method: str, slice_minutes: int = 1, slice_target=None) -> Totals:
    """Totals over [start, end): minutes for Occurrences; complete slices ending in (start, end] otherwise."""
    if method == "Occurrences":
        g = sum((data[m][0] for m in range(start, end) if m in data), 0)
        t = sum((data[m][1] for m in range(start, end) if m in data), 0)
        return Totals(Fraction(t - g), Fraction(t), Fraction(t), Fraction(g), max(end - start, 0))
    bad = units = events = good = Fraction(0)
    first, last = start // slice_minutes, end // slice_minutes
    for k in range(first, last):
        g = sum((data[m][0] for m in range(k * slice_minutes, (k + 1) * slice_minutes) if m in data), 0)
        t = sum((data[m][1] for m in range(k * slice_minutes, (k + 1) * slice_minutes) if m in data), 0)
        events += t
        good += g
        if t == 0:
            continue
        units += 1
        if method == "Timeslices":
            bad += 0 if Fraction(g) / t >= slice_target else 1
        else:
            bad += 1 - Fraction(g) / t
    return Totals(bad, units, events, good, max(last - first, 0))


# --------------------------------------------------------------------------------------------------- budget


def budget(
    data: dict,
    *,
    start: int,
    end: int,
    period_start: int,
    period_end: int,
    target: Fraction,
    method: str,
    slice_minutes: int = 1,
    slice_target=None,
) -> dict:
    """The expected BudgetStatus values (None without data)."""
    b = 1 - target
    size = slice_minutes if method != "Occurrences" else 1
    tot = totals(data, start, end, method, size, slice_target)
    period_slices = period_end // size - period_start // size
    out = {"events_total": tot.events, "events_good": tot.good_events, "no_data": tot.units == 0}
    if method != "Occurrences":
        out["slices"] = tot.slots
        out["slices_with_data"] = int(tot.units)
        out["slices_empty"] = tot.slots - int(tot.units)
        out["budget_total"] = b * period_slices * size
    if method == "Timeslices":
        out["slices_bad"] = int(tot.bad)
    if tot.units == 0:
        return out
    error = tot.bad / tot.units
    out["error_ratio"] = error
    out["sli"] = 1 - error
    out["burn_rate"] = error / b
    if method == "Occurrences":
        out["consumed"] = tot.bad / (b * tot.units)
        out["budget_total"] = b * tot.units
        out["budget_consumed"] = tot.bad
    else:
        out["consumed"] = tot.bad / (b * period_slices)
        out["budget_consumed"] = tot.bad * size
    out["remaining"] = 1 - out["consumed"]
    out["budget_remaining"] = out["budget_total"] - out["budget_consumed"]
    return out


# ------------------------------------------------------------------------------------------------- alerting


def factor(budget_percent: Fraction, period: int, long: int) -> Fraction:
    return budget_percent / 100 * period / long


def tier_fires(
    data: dict,
    now: int,
    *,
    long: int,
    short: int,
    threshold: Fraction,
    method: str,
    slice_minutes: int = 1,
    slice_target=None,
    min_events: float = 0,
) -> bool:
    if threshold >= 1 or long == 0 or short == 0:
        return False
    for window in (long, short):
        tot = totals(data, now - window, now, method, slice_minutes, slice_target)
        if tot.units == 0 or tot.events < min_events or not tot.bad / tot.units > threshold:
            return False
    return True


def near_tie(data: dict, now: int, window: int, threshold: Fraction, slice_minutes: int) -> bool:
    """RatioTimeslices sums float ratios, so an error ratio within 1e-9 of the threshold may be decided
    either way; property tests leave such cases out."""
    tot = totals(data, now - window, now, "RatioTimeslices", slice_minutes)
    return tot.units > 0 and abs(tot.bad / tot.units - threshold) < Fraction(1, 10**9)


def burn(data: dict, now: int, window: int, b: Fraction, method: str, slice_minutes=1, slice_target=None):
    tot = totals(data, now - window, now, method, slice_minutes, slice_target)
    return None if tot.units == 0 else tot.bad / tot.units / b


# ------------------------------------------------------------------------------------------------- forecast


def time_to_exhaustion(remaining, burn_rate, period):
    if remaining is None or burn_rate is None:
        return None
    if remaining <= 0:
        return 0.0
    if burn_rate <= 0:
        return None
    return remaining * period / burn_rate
