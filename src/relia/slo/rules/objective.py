"""What an SLO promises: the target, its error budget, and how the budget is counted.

Targets are kept as exact fractions (``Fraction``): ``"99.9%"`` gives a target of exactly 999/1000 and a
budget of exactly 1/1000. Floats are derived from the fractions and are correctly rounded, so
``budget_float`` prints as ``0.001`` (not ``0.0009999999999999432``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relia.slo.rules.windows import CalendarWindow, RollingWindow

Number = str | Decimal | float | int | Fraction


class Method(enum.StrEnum):
    """Budgeting method, named as in OpenSLO."""

    OCCURRENCES = "Occurrences"
    """Good events / total events over the window."""
    TIMESLICES = "Timeslices"
    """Good slices / slices with data; a slice is good when its good/total reaches the slice target."""
    RATIO_TIMESLICES = "RatioTimeslices"
    """Mean of the slice ratios good/total over the slices with data."""


def exact(value: Number) -> Fraction:
    """``value`` as an exact fraction, read from its decimal spelling.

    Strings and Decimals are read exactly; a float is read from its shortest repr (``0.999`` -> 999/1000,
    not the binary value 0.99899999999999999911...). Raises ``ValueError`` for anything not finite.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Fraction | int):
        return Fraction(value)
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        decimal = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not decimal.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return Fraction(decimal)


def parse_target(value: Number, *, percent: bool = False) -> Fraction:
    """An SLO target as an exact ratio in [0, 1).

    ``"99.9%"`` and ``parse_target("99.9", percent=True)`` are percentages; otherwise the value is a ratio
    (``"0.999"``, ``Decimal("0.999")``, ``0.999``). A bare number above 1 without ``percent`` is refused
    as ambiguous, as is a target of 100 % (no budget) or below 0.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        value, percent = value.strip()[:-1], True
    ratio = exact(value)
    if percent:
        ratio /= 100
    elif ratio > 1:
        raise ValueError(f"target {value!r} is above 1: write it as a percentage ({value}%) or a ratio")
    if not 0 <= ratio < 1:
        raise ValueError(f"target must be at least 0 and below 100 %, got {value!r}{'%' if percent else ''}")
    return ratio


@dataclass(frozen=True, slots=True)
class Budgeting:
    """How the budget is counted. Build it with :meth:`occurrences`, :meth:`timeslices` or
    :meth:`ratio_timeslices`.

    Slices are ``slice_minutes`` long and aligned to the UTC epoch (slice ``k`` covers epoch minutes
    ``[k * slice_minutes, (k + 1) * slice_minutes)``). A window ``[start, end)`` counts the complete slices
    that *end* inside it (slice end in ``(start, end]``); see :mod:`relia.slo.rules.totals`.
    """

    method: Method
    slice_minutes: int = 1
    slice_target: Fraction | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", Method(self.method))
        if isinstance(self.slice_minutes, bool) or not isinstance(self.slice_minutes, int):
            raise ValueError(f"slice length must be a whole number of minutes, got {self.slice_minutes!r}")
        if not 1 <= self.slice_minutes <= 24 * 60:
            raise ValueError(f"slice length must be 1 minute to 1 day, got {self.slice_minutes} minutes")
        if self.method is Method.OCCURRENCES and (self.slice_minutes != 1 or self.slice_target is not None):
            raise ValueError("Occurrences has no slices")
        if self.method is Method.TIMESLICES:
            if self.slice_target is None:
                raise ValueError("Timeslices needs a slice target")
            object.__setattr__(self, "slice_target", exact(self.slice_target))
            if not 0 < self.slice_target <= 1:
                raise ValueError(f"slice target must be in (0, 1], got {self.slice_target}")
        if self.method is Method.RATIO_TIMESLICES and self.slice_target is not None:
            raise ValueError("RatioTimeslices has no slice target")

    @classmethod
    def occurrences(cls) -> Budgeting:
        return cls(Method.OCCURRENCES)

    @classmethod
    def timeslices(cls, slice_minutes: int, slice_target: Number) -> Budgeting:
        """Slices of ``slice_minutes``; a slice is good when good/total >= ``slice_target`` (a ratio)."""
        return cls(Method.TIMESLICES, slice_minutes, exact(slice_target))

    @classmethod
    def ratio_timeslices(cls, slice_minutes: int) -> Budgeting:
        return cls(Method.RATIO_TIMESLICES, slice_minutes)

    @property
    def sliced(self) -> bool:
        """True for the two timeslice methods (the budget is counted in minutes, not events)."""
        return self.method is not Method.OCCURRENCES


@dataclass(frozen=True, slots=True)
class SLOSpec:
    """One SLO objective: target, budgeting method and window.

    ``target`` accepts what :func:`parse_target` accepts (a ratio, or a percentage as ``"99.9%"``) and is
    stored as an exact ``Fraction``. The spec is hashable, so callers can group SLOs by spec for the batch
    entry points.
    """

    target: Fraction
    budgeting: Budgeting
    window: RollingWindow | CalendarWindow
    budget: Fraction = field(init=False, repr=False, compare=False)
    """Error budget B = 1 - target, exact (1/1000 for 99.9 %)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", parse_target(self.target))
        object.__setattr__(self, "budget", 1 - self.target)
        if self.budgeting.slice_minutes > self.window.nominal_minutes:
            raise ValueError("the SLO window is shorter than one slice")

    @property
    def budget_float(self) -> float:
        """B as the nearest float (``0.001`` for 99.9 %)."""
        return float(self.budget)

    @property
    def target_float(self) -> float:
        return float(self.target)
