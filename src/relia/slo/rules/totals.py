"""Window totals: the sums every budget and alert decision is made from.

Each budgeting method turns the per-minute counts into *units*: minutes for Occurrences, slices for the
two timeslice methods. A unit contributes

===============  ===========================  =======================
method           ``bad``                      ``units``
===============  ===========================  =======================
Occurrences      total - good (bad events)    total (events)
Timeslices       1 if the slice is bad        1 if the slice has data
RatioTimeslices  1 - good/total of the slice  1 if the slice has data
===============  ===========================  =======================

so that for every method a window's error ratio is ``bad / units`` and a window has no data exactly when
``units == 0``. A slice has data when its total is above zero, and is good when
``good / total >= slice_target`` (compared exactly, by cross-multiplying with the target's numerator and
denominator).

Slices are aligned to the UTC epoch (slice ``k`` of length ``s`` is ``[k s, (k + 1) s)``), and a window
``[start, end)`` counts the complete slices that end in ``(start, end]``: ``end // s - start // s`` of
them. For one-minute units this is exactly the minutes ``[start, end)``. A slice is always evaluated over
its full length, so when ``start`` is not a multiple of ``s`` the first slice reaches up to ``s - 1``
minutes before ``start``, and a window shorter than a slice may hold no complete slice.

Sums are exact for integer-valued counts whose totals stay below 2**53.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relia.slo.rules.objective import Budgeting, Method
from relia.slo.rules.series import Array, as_counts, clean_counts, exclude, prefix_sums


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Sums over windows: scalars (0-d arrays) or arrays, all fields of one shape.

    ``bad`` and ``units`` are as in the module table; ``events`` and ``good_events`` are the raw event sums
    of the minutes (or complete slices) counted; ``slots`` is how many units (minutes or slices) the window
    spans, with or without data.
    """

    bad: Array
    units: Array
    events: Array
    good_events: Array
    slots: NDArray[np.int64]

    @property
    def has_data(self) -> NDArray[np.bool_]:
        return self.units > 0

    @classmethod
    def from_events(cls, good: ArrayLike, total: ArrayLike, *, minutes: ArrayLike = 0) -> WindowTotals:
        """Occurrences totals from event sums computed elsewhere (e.g. ``SUM(good), SUM(total)`` in SQL).
        ``total`` must be exactly 0 for a window without data; good is clipped to ``[0, total]``;
        ``minutes`` is the window length (informational)."""
        total_array = np.asarray(total, dtype=np.float64)
        good_array = np.clip(np.asarray(good, dtype=np.float64), 0.0, total_array)
        slots = np.broadcast_to(np.asarray(minutes, dtype=np.int64), total_array.shape)
        return cls(total_array - good_array, total_array, total_array, good_array, slots)

    def column(self, index: int | list[int]) -> WindowTotals:
        """The totals of one window (or of a list of windows) when the last axis runs over windows."""
        return WindowTotals(
            self.bad[..., index],
            self.units[..., index],
            self.events[..., index],
            self.good_events[..., index],
            self.slots[..., index],
        )


def _unit_size(budgeting: Budgeting, slice_buckets: int) -> int:
    return 1 if budgeting.method is Method.OCCURRENCES else slice_buckets


def _unit_arrays(good: Array, total: Array, budgeting: Budgeting, size: int) -> tuple[Array, ...]:
    """Per-unit arrays whose sums :func:`_from_sums` turns into totals. ``good``/``total`` are clean and
    their last axis is a whole number of units."""
    if budgeting.method is Method.OCCURRENCES:
        return good, total
    if size > 1:
        good, total = _slice_sums(good, size), _slice_sums(total, size)
    data = total > 0
    if budgeting.method is Method.TIMESLICES:
        target = budgeting.slice_target
        assert target is not None
        bad = good * float(target.denominator) < total * float(target.numerator)  # never true without data
        return bad, data, total, good
    ratio_bad = np.divide(total - good, total, out=np.zeros_like(total), where=data)
    return ratio_bad, data, total, good


def _slice_sums(values: Array, size: int) -> Array:
    """Sums of consecutive groups of ``size`` elements along the last axis (its length is a multiple)."""
    grouped = values.reshape(*values.shape[:-1], values.shape[-1] // size, size)
    if size > 16:
        return grouped.sum(axis=-1)
    out = grouped[..., 0].copy()  # a few strided adds beat a reduction over a short inner axis
    for k in range(1, size):
        out += grouped[..., k]
    return out


def _from_sums(sums: tuple[Array, ...], slots: NDArray[np.int64]) -> WindowTotals:
    if len(sums) == 2:  # Occurrences: good, total
        good, total = sums
        return WindowTotals(total - good, total, total, good, np.broadcast_to(slots, total.shape))
    bad, units, events, good = sums
    return WindowTotals(bad, units, events, good, np.broadcast_to(slots, units.shape))


def _extract(good: Array, total: Array, origin: int, first: int, last: int) -> tuple[Array, Array]:
    """Elements for buckets ``[first, last)``: views when the series covers them, else zero-padded copies."""
    good, total = np.broadcast_arrays(good, total)
    n = total.shape[-1]
    lo, hi = first - origin, last - origin
    if lo >= 0 and hi <= n:
        return good[..., lo:hi], total[..., lo:hi]
    out_good = np.zeros((*total.shape[:-1], last - first))
    out_total = np.zeros_like(out_good)
    src_lo, src_hi = max(lo, 0), min(hi, n)
    if src_lo < src_hi:
        out_good[..., src_lo - lo : src_hi - lo] = good[..., src_lo:src_hi]
        out_total[..., src_lo - lo : src_hi - lo] = total[..., src_lo:src_hi]
    return out_good, out_total


def totals_ending_at(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    end: int,
    starts: ArrayLike,
    budgeting: Budgeting,
    slice_buckets: int | None = None,
) -> WindowTotals:
    """Totals of several windows ``[start, end)`` that share their end, in one pass over the data.

    ``origin``, ``end`` and ``starts`` are in buckets (epoch minutes for per-minute series);
    ``slice_buckets`` defaults to the slice length in minutes. The result's last axis runs over ``starts``
    (a 1-D sequence); leading axes are those of the series. This is the evaluator's hot path: the data
    between the earliest start and ``end`` is summed once, by segments between consecutive starts.
    """
    size = _unit_size(budgeting, budgeting.slice_minutes if slice_buckets is None else slice_buckets)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    if starts.size == 0:
        raise ValueError("no windows given")
    last_unit = int(end) // size
    first_units = np.minimum(starts // size, last_unit)
    first_unit = int(first_units.min())
    good, total = _extract(as_counts(good), as_counts(total), origin, first_unit * size, last_unit * size)
    offsets = np.unique(first_units) - first_unit  # ascending; the last may equal the unit count (empty)
    pick = np.searchsorted(offsets, first_units - first_unit)
    count = last_unit - first_unit
    leading = total.shape[:-1]
    rows = int(np.prod(leading))
    if rows <= 1:
        sums = _clean_suffix_sums(good, total, budgeting, size, offsets, count, pick)
    else:
        # Rows in blocks of about 2 MB keep the temporaries in cache.
        flat_good, flat_total = good.reshape(rows, -1), total.reshape(rows, -1)
        block = max(1, _BLOCK_ELEMENTS // max(flat_total.shape[1], 1))
        parts = [
            _clean_suffix_sums(
                flat_good[i : i + block], flat_total[i : i + block], budgeting, size, offsets, count, pick
            )
            for i in range(0, rows, block)
        ]
        sums = tuple(np.concatenate(columns).reshape(*leading, -1) for columns in zip(*parts, strict=True))
    return _from_sums(sums, last_unit - first_units)


_BLOCK_ELEMENTS = 1 << 18


def _clean_suffix_sums(
    good: Array,
    total: Array,
    budgeting: Budgeting,
    size: int,
    offsets: NDArray[np.int64],
    count: int,
    pick: NDArray[np.int64],
) -> tuple[Array, ...]:
    clean = good.size == 0 or (good.min() >= 0 and bool((good <= total).all()))
    if not clean:
        good, total = clean_counts(good, total)
    sums = _suffix_sums(_unit_arrays(good, total, budgeting, size), offsets, count, pick)
    if clean and not all(np.isfinite(part).all() for part in sums):  # an infinity passed the quick check
        good, total = clean_counts(good, total)
        sums = _suffix_sums(_unit_arrays(good, total, budgeting, size), offsets, count, pick)
    return sums


def _suffix_sums(
    arrays: tuple[Array, ...], offsets: NDArray[np.int64], count: int, pick: NDArray[np.int64]
) -> tuple[Array, ...]:
    """For each array, the sums from every offset to the end (picked per window), by segment sums."""
    inside = offsets[offsets < count]
    sums = []
    for array in arrays:
        suffix = np.zeros((*array.shape[:-1], offsets.size))
        if inside.size:
            segments = np.add.reduceat(array, inside, axis=-1, dtype=np.float64)
            suffix[..., : inside.size] = np.cumsum(segments[..., ::-1], axis=-1)[..., ::-1]
        sums.append(suffix[..., pick])
    return tuple(sums)


class Units:
    """Prefix sums of the unit arrays of a series, for the totals of any windows in O(1) each (used to
    evaluate every end position at once).

    ``origin`` is the absolute bucket number of element 0 (an epoch minute for minute buckets);
    ``slice_buckets`` is the slice length in buckets. Units are built for the slices ending in
    ``(first, last]`` (the minutes ``[first, last)`` for Occurrences); windows reaching outside see no
    data there.
    """

    def __init__(
        self,
        good: ArrayLike,
        total: ArrayLike,
        *,
        origin: int,
        budgeting: Budgeting,
        first: int,
        last: int,
        slice_buckets: int,
    ) -> None:
        self.size = size = _unit_size(budgeting, slice_buckets)
        self.first_unit = first // size
        last_unit = max(last // size, self.first_unit)
        good, total = _extract(as_counts(good), as_counts(total), origin, self.first_unit * size, last_unit * size)
        good, total = clean_counts(good, total)
        self._prefix = tuple(prefix_sums(array) for array in _unit_arrays(good, total, budgeting, size))
        self.count = last_unit - self.first_unit

    def _bounds(self, starts: ArrayLike, ends: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first = np.floor_divide(np.asarray(starts, dtype=np.int64), self.size)
        last = np.floor_divide(np.asarray(ends, dtype=np.int64), self.size)
        lo = np.clip(first - self.first_unit, 0, self.count)
        hi = np.clip(last - self.first_unit, 0, self.count)
        lo, hi = np.broadcast_arrays(lo, np.maximum(lo, hi))
        return lo, hi, np.maximum(last - first, 0)

    def totals(self, starts: ArrayLike, ends: ArrayLike) -> WindowTotals:
        """Totals of the windows ``[start, end)`` (absolute buckets, broadcast together). The result has the
        series' leading axes followed by the broadcast shape of the windows."""
        lo, hi, slots = self._bounds(starts, ends)
        sums = tuple(np.take(p, hi, axis=-1) - np.take(p, lo, axis=-1) for p in self._prefix)
        return _from_sums(sums, slots)

    def sliding(self, first_end: int, last_end: int, window: int) -> tuple[Array, Array, Array]:
        """``(bad, units, events)`` of the windows of ``window`` buckets ending at every bucket boundary
        ``first_end .. last_end`` (inclusive; absolute buckets)."""
        hi_first, hi_last = first_end - self.first_unit, last_end - self.first_unit
        if self.size == 1 and hi_first >= 0 and hi_last <= self.count:
            # Unit k is bucket first_unit + k: the window ending at e sums units [e - w - f, e - f).
            def diff(prefix: Array) -> Array:
                out = np.empty((*prefix.shape[:-1], hi_last - hi_first + 1))
                split = min(max(window - hi_first, 0), out.shape[-1])  # windows cut at unit 0
                out[..., :split] = prefix[..., hi_first : hi_first + split]
                np.subtract(
                    prefix[..., hi_first + split : hi_last + 1],
                    prefix[..., hi_first + split - window : hi_last + 1 - window],
                    out=out[..., split:],
                )
                return out

        else:
            ends = np.arange(first_end, last_end + 1, dtype=np.int64)
            lo, hi, _ = self._bounds(ends - window, ends)

            def diff(prefix: Array) -> Array:
                return np.take(prefix, hi, axis=-1) - np.take(prefix, lo, axis=-1)

        if len(self._prefix) == 2:  # Occurrences
            good, total = (diff(p) for p in self._prefix)
            return np.subtract(total, good, out=good), total, total
        bad, units, events = (diff(p) for p in self._prefix[:3])
        return bad, units, events


def window_totals(
    good: ArrayLike,
    total: ArrayLike,
    *,
    origin: int,
    start: ArrayLike,
    end: ArrayLike,
    budgeting: Budgeting,
    exclusions: tuple[tuple[int, int], ...] = (),
) -> WindowTotals:
    """Totals of per-minute counts over ``[start, end)`` epoch minutes (scalars or arrays of windows,
    broadcast together).

    ``good``/``total`` may be 1-D or have leading axes (one row per SLO); ``origin`` is the epoch minute of
    element 0. Excluded ``[start, end)`` minute ranges are removed first (no data).
    """
    if exclusions:
        good, total = exclude(good, total, origin, exclusions)
    starts, ends = np.broadcast_arrays(np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64))
    units = Units(
        good,
        total,
        origin=origin,
        budgeting=budgeting,
        first=int(starts.min()),
        last=int(ends.max()),
        slice_buckets=budgeting.slice_minutes,
    )
    return units.totals(starts, ends)
