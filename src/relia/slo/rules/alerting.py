"""Multiwindow, multi-burn-rate alerting (SRE Workbook ch. 5, Sloth's alert window catalogs).

A *tier* spends ``budget_percent`` of the period's budget within its long window ``L``; its burn-rate
factor is ``f = budget_percent / 100 x P / L`` and its threshold on the error ratio is ``f x B``. A tier fires
when the error ratio over **both** its long and its short window is above the threshold (strictly). The
page fires when either page tier fires, the ticket when either ticket tier fires; the reported tier is the
first firing one in catalog order (quick before slow).

For the timeslice methods the "error ratio" of a window is the bad-slice fraction (Timeslices) or one minus
the mean slice ratio (RatioTimeslices), over the complete slices ending in the window (see
:mod:`relia.slo.rules.totals`). With ``min_events``, a window holding fewer events than that does not fire.
All comparisons are exact: ``bad x den > num x units`` with the threshold's numerator and denominator.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relia.slo.rules.objective import Budgeting, SLOSpec, exact
from relia.slo.rules.series import exclude
from relia.slo.rules.totals import WindowTotals, totals_ending_at
from relia.slo.rules.windows import DAY, Lint, format_duration, parse_duration


class Severity(enum.StrEnum):
    """Page (wake someone up) or ticket (look at it during working hours)."""

    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True, slots=True)
class AlertTier:
    """One (long window, short window, budget share) pair of a catalog."""

    name: str
    severity: Severity
    budget_percent: Fraction
    """Share of the period's budget the tier lets the long window spend, in percent (2 for 2 %)."""
    long_minutes: int
    short_minutes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "budget_percent", exact(self.budget_percent))
        if not 0 < self.budget_percent <= 100:
            raise ValueError(f"{self.name}: budget percent must be in (0, 100], got {self.budget_percent}")
        for minutes in (self.long_minutes, self.short_minutes):
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
                raise ValueError(f"{self.name}: windows are whole minutes, got {minutes!r}")


@dataclass(frozen=True, slots=True)
class AlertCatalog:
    """Alert tiers for one SLO period (Sloth's ``AlertWindows``)."""

    name: str
    period_minutes: int
    tiers: tuple[AlertTier, ...]

    def __post_init__(self) -> None:
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        if self.period_minutes < 1:
            raise ValueError(f"period must be at least one minute, got {self.period_minutes}")


def _catalog(name: str, period: int, rows: Iterable[tuple[str, str, str, str]]) -> AlertCatalog:
    tiers = []
    for tier_name, percent, short, long in rows:
        severity = Severity(tier_name.split("-")[0])
        tiers.append(AlertTier(tier_name, severity, exact(percent), parse_duration(long), parse_duration(short)))
    return AlertCatalog(name, period, tuple(tiers))


_GOOGLE = (
    ("page-quick", "2", "5m", "1h"),
    ("page-slow", "5", "30m", "6h"),
    ("ticket-quick", "10", "2h", "1d"),
    ("ticket-slow", "10", "6h", "3d"),
)
GOOGLE_30D = _catalog("google-30d", 30 * DAY, _GOOGLE)
"""Sloth's ``google-30d.yaml`` (factors 14.4, 6, 3, 1)."""
GOOGLE_28D = _catalog("google-28d", 28 * DAY, _GOOGLE)
"""Sloth's ``google-28d.yaml`` (factors 13.44, 5.6, 2.8, 0.9333...)."""
CUSTOM_7D = _catalog(
    "custom-7d",
    7 * DAY,
    (
        ("page-quick", "8", "5m", "1h"),
        ("page-slow", "12.5", "30m", "6h"),
        ("ticket-quick", "20", "2h", "24h"),
        ("ticket-slow", "42", "6h", "72h"),
    ),
)
"""Sloth's example ``windows/7d.yaml`` (factors 13.44, 3.5, 1.4, 0.98)."""
BUILTIN_CATALOGS = {catalog.period_minutes: catalog for catalog in (GOOGLE_30D, GOOGLE_28D, CUSTOM_7D)}


def _round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)) // 1)


def alert_catalog(period_minutes: int) -> AlertCatalog:
    """The catalog for an SLO period: the built-in one for 30d, 28d and 7d; otherwise the 30d catalog with
    every window scaled by ``P / 30d`` and rounded half up to whole minutes (the budget shares, and so the
    factors, stay those of the 30d catalog). Windows may round to zero: see :meth:`AlertPolicy.lints`."""
    if period_minutes in BUILTIN_CATALOGS:
        return BUILTIN_CATALOGS[period_minutes]
    if period_minutes < 1:
        raise ValueError(f"period must be at least one minute, got {period_minutes}")
    scale = Fraction(period_minutes, GOOGLE_30D.period_minutes)
    tiers = tuple(
        AlertTier(
            tier.name,
            tier.severity,
            tier.budget_percent,
            _round_half_up(tier.long_minutes * scale),
            _round_half_up(tier.short_minutes * scale),
        )
        for tier in GOOGLE_30D.tiers
    )
    return AlertCatalog(f"google-30d-scaled-{format_duration(period_minutes)}", period_minutes, tiers)


def alert_catalog_from_sloth(document: Mapping[str, Any]) -> AlertCatalog:
    """A catalog from a parsed Sloth ``AlertWindows`` document (``apiVersion: sloth.slok.dev/v1``)."""
    if document.get("kind") != "AlertWindows":
        raise ValueError(f"expected kind AlertWindows, got {document.get('kind')!r}")
    spec = document.get("spec") or {}
    period = parse_duration(str(spec.get("sloPeriod", "")))
    rows = []
    for severity in ("page", "ticket"):
        for speed in ("quick", "slow"):
            try:
                entry = spec[severity][speed]
                rows.append(
                    (
                        f"{severity}-{speed}",
                        str(entry["errorBudgetPercent"]),
                        str(entry["shortWindow"]),
                        str(entry["longWindow"]),
                    )
                )
            except (KeyError, TypeError):
                raise ValueError(f"spec.{severity}.{speed} needs errorBudgetPercent, shortWindow, longWindow") from None
    return _catalog(f"sloth-{format_duration(period)}", period, rows)


# ---------------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A tier applied to one SLO. ``factor`` is the burn rate both windows must exceed; ``threshold`` the
    equivalent error ratio ``factor x B``. Both are exact, and None when the long window is zero minutes."""

    tier: AlertTier
    factor: Fraction | None
    threshold: Fraction | None

    @property
    def name(self) -> str:
        return self.tier.name

    @property
    def severity(self) -> Severity:
        return self.tier.severity

    @property
    def factor_float(self) -> float | None:
        return None if self.factor is None else float(self.factor)

    @property
    def threshold_float(self) -> float | None:
        return None if self.threshold is None else float(self.threshold)

    @property
    def can_fire(self) -> bool:
        """False when a window is zero minutes or the threshold is 1 or more (the error ratio never
        exceeds 1: a 2 %-in-1h tier on a 90 % SLO)."""
        return (
            self.threshold is not None
            and self.threshold < 1
            and self.tier.short_minutes > 0
            and self.tier.long_minutes > 0
        )


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The alert rules of one SLO spec. Build with :func:`alert_policy`."""

    spec: SLOSpec
    catalog: AlertCatalog
    rules: tuple[AlertRule, ...]
    min_events: float = 0.0
    windows: tuple[int, ...] = field(init=False)
    """The distinct positive window lengths (minutes) the rules read, ascending."""

    def __post_init__(self) -> None:
        lengths = {r.tier.long_minutes for r in self.rules} | {r.tier.short_minutes for r in self.rules}
        object.__setattr__(self, "windows", tuple(sorted(m for m in lengths if m > 0)))

    def lints(self) -> list[Lint]:
        """Tiers that can never fire, windows that rounded to zero, and windows shorter than a slice."""
        found: list[Lint] = []
        budget = self.spec.budget
        slice_minutes = self.spec.budgeting.slice_minutes if self.spec.budgeting.sliced else 1
        for rule in self.rules:
            tier = rule.tier
            for label, minutes in (("long", tier.long_minutes), ("short", tier.short_minutes)):
                if minutes == 0:
                    found.append(
                        Lint(
                            "alert-window-zero",
                            "error",
                            f"{tier.name}: the {label} window rounds to 0 minutes for a "
                            f"{format_duration(self.catalog.period_minutes)} period; the tier never fires",
                        )
                    )
                elif minutes < slice_minutes:
                    found.append(
                        Lint(
                            "alert-window-below-slice",
                            "warning",
                            f"{tier.name}: the {label} window ({format_duration(minutes)}) is shorter than a "
                            f"slice ({format_duration(slice_minutes)}) and often holds no complete slice",
                        )
                    )
            if rule.threshold is not None and rule.threshold >= 1:
                found.append(
                    Lint(
                        "alert-tier-never-fires",
                        "warning",
                        f"{tier.name}: burn rate {float(rule.factor or 0):g} exceeds the maximum possible "
                        f"{float(1 / budget):g} for a {float(self.spec.target * 100):g} % target; "
                        "the tier can never fire",
                    )
                )
            if 0 < tier.long_minutes <= tier.short_minutes:
                found.append(
                    Lint(
                        "alert-short-not-shorter",
                        "warning",
                        f"{tier.name}: the short window is not shorter than the long window",
                    )
                )
        return found


def alert_policy(
    spec: SLOSpec,
    *,
    catalog: AlertCatalog | None = None,
    min_events: float = 0,
    tiers: Iterable[str] | None = None,
) -> AlertPolicy:
    """Rules for ``spec``: ``catalog`` defaults to :func:`alert_catalog` of the window's nominal length
    (7/30/90/365 days for calendar weeks/months/quarters/years). ``tiers`` keeps only the named tiers.
    ``min_events``: a window with fewer events than this does not fire."""
    catalog = catalog or alert_catalog(spec.window.nominal_minutes)
    wanted = None if tiers is None else set(tiers)
    unknown = (wanted or set()) - {tier.name for tier in catalog.tiers}
    if unknown:
        raise ValueError(f"unknown alert tiers: {sorted(unknown)}")
    rules = []
    for tier in catalog.tiers:
        if wanted is not None and tier.name not in wanted:
            continue
        factor = tier.budget_percent / 100 * catalog.period_minutes / tier.long_minutes if tier.long_minutes else None
        rules.append(AlertRule(tier, factor, None if factor is None else factor * spec.budget))
    if min_events < 0:
        raise ValueError("min_events must not be negative")
    return AlertPolicy(spec, catalog, tuple(rules), float(min_events))


# ------------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True, slots=True)
class TierStatus:
    """One tier at one moment. Burn rates are None for a window without data."""

    name: str
    severity: Severity
    firing: bool
    long_burn: float | None
    short_burn: float | None
    long_events: float
    short_events: float


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """Page and ticket state at one moment, with the first firing tier of each and every tier's detail."""

    page: bool
    page_tier: str | None
    ticket: bool
    ticket_tier: str | None
    tiers: tuple[TierStatus, ...]

    def tier(self, name: str) -> TierStatus:
        return next(t for t in self.tiers if t.name == name)


def window_exceeds(totals: WindowTotals, threshold: Fraction, min_events: float = 0) -> NDArray[np.bool_]:
    """Where a window has data, at least ``min_events`` events, and an error ratio strictly above
    ``threshold`` (compared exactly, as ``bad x den > num x units``)."""
    return (
        (totals.units > 0)
        & (totals.events >= min_events)
        & (totals.bad * float(threshold.denominator) > totals.units * float(threshold.numerator))
    )


def tier_firing(rule: AlertRule, long: WindowTotals, short: WindowTotals, min_events: float = 0) -> NDArray[np.bool_]:
    """Where a tier fires, given the totals of its long and short windows (arrays broadcast together)."""
    if not rule.can_fire:
        return np.zeros(np.broadcast_shapes(long.units.shape, short.units.shape), dtype=bool)
    assert rule.threshold is not None
    return window_exceeds(long, rule.threshold, min_events) & window_exceeds(short, rule.threshold, min_events)


def statuses_from_columns(totals: WindowTotals | None, rows: int, policy: AlertPolicy) -> list[AlertStatus]:
    """Statuses from totals whose last axis runs over ``policy.windows`` (leading axes: ``rows`` rows;
    None when the policy reads no window)."""
    width = len(policy.windows)
    position = {minutes: i for i, minutes in enumerate(policy.windows)}
    budget = policy.spec.budget
    num_b, den_b = float(budget.numerator), float(budget.denominator)
    checks = []
    for rule in policy.rules:
        threshold = rule.threshold if rule.can_fire else None
        checks.append(
            (
                rule,
                position.get(rule.tier.long_minutes),
                position.get(rule.tier.short_minutes),
                None if threshold is None else (float(threshold.numerator), float(threshold.denominator)),
            )
        )
    if totals is None or width == 0:
        table = [([], [], [])] * rows
    else:
        parts = (np.reshape(p, (rows, width)).tolist() for p in (totals.bad, totals.units, totals.events))
        table = list(zip(*parts, strict=True))
    min_events = policy.min_events
    out = []
    for bad, units, events in table:
        burns = [b * den_b / (u * num_b) if u > 0 else None for b, u in zip(bad, units, strict=True)]
        tiers = []
        page = ticket = None
        for rule, long_at, short_at, threshold in checks:
            fires = threshold is not None and all(
                at is not None
                and units[at] > 0
                and events[at] >= min_events
                and bad[at] * threshold[1] > units[at] * threshold[0]
                for at in (long_at, short_at)
            )
            tiers.append(
                TierStatus(
                    rule.name,
                    rule.severity,
                    fires,
                    None if long_at is None else burns[long_at],
                    None if short_at is None else burns[short_at],
                    0.0 if long_at is None else events[long_at],
                    0.0 if short_at is None else events[short_at],
                )
            )
            if fires and rule.severity is Severity.PAGE and page is None:
                page = rule.name
            if fires and rule.severity is Severity.TICKET and ticket is None:
                ticket = rule.name
        out.append(AlertStatus(page is not None, page, ticket is not None, ticket, tuple(tiers)))
    return out


def alert_from_totals(windows: Mapping[int, WindowTotals], policy: AlertPolicy) -> list[AlertStatus]:
    """Alert statuses from the totals of each window length (minutes -> totals, scalars or one value per
    row; every length in ``policy.windows`` must be present), one status per row. Use this when the sums
    come from elsewhere (SQL, rollups): see :meth:`WindowTotals.from_events`."""
    missing = set(policy.windows) - set(windows)
    if missing:
        raise ValueError(f"missing totals for windows (minutes): {sorted(missing)}")
    if not policy.windows:
        return statuses_from_columns(None, 1, policy)
    shape = np.broadcast_shapes(*(np.shape(windows[m].units) for m in policy.windows))

    def stack(name: str) -> np.ndarray:
        return np.stack([np.broadcast_to(getattr(windows[m], name), shape) for m in policy.windows], axis=-1)

    totals = WindowTotals(*(stack(name) for name in ("bad", "units", "events", "good_events", "slots")))
    return statuses_from_columns(totals, int(np.prod(shape)), policy)


def totals_by_window(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    now: int,
    windows: Iterable[int],
    budgeting: Budgeting,
) -> dict[int, WindowTotals]:
    """Totals of the windows ``[now - minutes, now)`` for several lengths at once (one pass over the
    data), keyed by length."""
    lengths = sorted(set(windows))
    totals = totals_ending_at(
        good, total, origin=origin, end=now, starts=[now - m for m in lengths], budgeting=budgeting
    )
    return {length: totals.column(i) for i, length in enumerate(lengths)}


def alert_statuses(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    now: int,
    policy: AlertPolicy,
    exclusions: Iterable[tuple[int, int]] = (),
) -> list[AlertStatus]:
    """Alert state of every row of 2-D per-minute counts (rows share ``policy`` and ``origin``, the epoch
    minute of column 0) for the windows ending at epoch minute ``now`` (exclusive)."""
    exclusions = tuple(exclusions)
    if exclusions:
        good, total = exclude(good, total, origin, exclusions)
    rows = int(np.prod(np.shape(total)[:-1]))
    if not policy.windows:
        return statuses_from_columns(None, rows, policy)
    totals = totals_ending_at(
        good,
        total,
        origin=origin,
        end=now,
        starts=[now - m for m in policy.windows],
        budgeting=policy.spec.budgeting,
    )
    return statuses_from_columns(totals, rows, policy)


def alert_status(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    now: int,
    policy: AlertPolicy,
    exclusions: Iterable[tuple[int, int]] = (),
) -> AlertStatus:
    """Alert state of one SLO (1-D per-minute counts) at epoch minute ``now``."""
    if np.ndim(total) != 1:
        raise ValueError("alert_status takes one series; use alert_statuses for rows of series")
    return alert_statuses(good, total, origin=origin, now=now, policy=policy, exclusions=exclusions)[0]
