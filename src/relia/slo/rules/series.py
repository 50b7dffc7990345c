"""Per-minute count series: sliding and range sums, cleaning, and excluded periods.

A series is a float64 array of counts indexed by minute along its last axis; element ``i`` is epoch minute
``origin + i``. Arrays may have leading axes (one row per SLO) and every function works row-wise. Sums are
cumulative-sum differences, exact for integer counts whose totals stay below 2**53.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def as_counts(values: ArrayLike) -> Array:
    """``values`` as a float64 array with at least one axis (no copy when it already is one)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError("a count series needs at least one axis")
    return array


def prefix_sums(values: ArrayLike) -> Array:
    """Cumulative sums with a leading zero: ``out[..., k]`` is the sum of the first ``k`` elements."""
    array = as_counts(values)
    out = np.zeros((*array.shape[:-1], array.shape[-1] + 1))
    np.cumsum(array, axis=-1, out=out[..., 1:])
    return out


def window_sums(values: ArrayLike, window: int) -> Array:
    """Sums over a sliding window, for every end position at once.

    ``out[..., i]`` is the sum of elements ``i - window + 1 .. i`` (the window that ends with element
    ``i``); at the start of the series the window is cut at element 0.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    prefix = prefix_sums(values)
    out = prefix[..., 1:].copy()
    if window < out.shape[-1]:
        out[..., window:] -= prefix[..., 1 : out.shape[-1] - window + 1]
    return out


def range_sums(values: ArrayLike, origin: int, starts: ArrayLike, ends: ArrayLike) -> Array:
    """Sums over ``[start, end)`` epoch-minute ranges (any number, broadcast together).

    Minutes outside the series count as zero; an empty or reversed range sums to zero. The result has the
    series' leading axes followed by the broadcast shape of ``starts`` and ``ends``.
    """
    array = as_counts(values)
    n = array.shape[-1]
    lo = np.clip(np.asarray(starts, dtype=np.int64) - origin, 0, n)
    hi = np.clip(np.asarray(ends, dtype=np.int64) - origin, 0, n)
    lo, hi = np.broadcast_arrays(lo, np.maximum(lo, hi))
    prefix = prefix_sums(array)
    return np.take(prefix, hi, axis=-1) - np.take(prefix, lo, axis=-1)


def clean_counts(good: ArrayLike, total: ArrayLike) -> tuple[Array, Array]:
    """Counts with bad samples turned into "no data", so one bad sample never poisons a window.

    A minute whose total is not a positive finite number, or whose good is negative or not finite, gets
    ``good = total = 0`` (no data). Good above total is clipped to total. Clean input is returned as is.
    """
    good, total = np.broadcast_arrays(as_counts(good), as_counts(total))
    if total.size == 0 or (
        np.isfinite(total.sum()) and np.isfinite(good.sum()) and good.min() >= 0 and bool((good <= total).all())
    ):
        return good, total  # total >= good >= 0, all finite: nothing to clean
    with np.errstate(invalid="ignore"):
        valid = (total > 0) & (total < np.inf) & (good >= 0) & (good < np.inf)
    return np.where(valid, np.minimum(good, total), 0.0), np.where(valid, total, 0.0)


def exclusion_mask(length: int, origin: int, ranges: Iterable[tuple[int, int]]) -> NDArray[np.bool_]:
    """True for the elements ``origin .. origin + length - 1`` inside any ``[start, end)`` range."""
    marks = np.zeros(length + 1, dtype=np.int64)
    pairs = np.asarray(list(ranges), dtype=np.int64).reshape(-1, 2)
    lo = np.clip(pairs[:, 0] - origin, 0, length)
    hi = np.clip(pairs[:, 1] - origin, 0, length)
    keep = lo < hi
    np.add.at(marks, lo[keep], 1)
    np.add.at(marks, hi[keep], -1)
    return np.cumsum(marks[:-1]) > 0


def exclude(good: ArrayLike, total: ArrayLike, origin: int, ranges: Iterable[tuple[int, int]]) -> tuple[Array, Array]:
    """Budget adjustments: the minutes inside any ``[start, end)`` range become no data (not good).

    Returns new arrays when something is excluded, the inputs (as float64) otherwise.
    """
    good, total = as_counts(good), as_counts(total)
    mask = exclusion_mask(total.shape[-1], origin, ranges)
    if not mask.any():
        return good, total
    return np.where(mask, 0.0, good), np.where(mask, 0.0, total)
