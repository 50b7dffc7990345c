"""Sliding and range sums, cleaning and exclusions, against plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relia.slo.rules import clean_counts, exclude, exclusion_mask, prefix_sums, range_sums, window_sums

COUNTS = st.lists(st.integers(0, 1000), min_size=1, max_size=200)


@given(COUNTS, st.integers(1, 250))
@settings(max_examples=60, deadline=None)
def test_window_sums_match_loops(values: list[int], window: int) -> None:
    expected = [sum(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]
    assert window_sums(values, window).tolist() == expected


@given(st.lists(COUNTS, min_size=1, max_size=4).filter(lambda rows: len({len(r) for r in rows}) == 1))
@settings(max_examples=30, deadline=None)
def test_window_sums_run_row_by_row(rows: list[list[int]]) -> None:
    out = window_sums(np.array(rows, dtype=float), 7)
    assert out.tolist() == [window_sums(row, 7).tolist() for row in rows]


def test_window_sums_refuse_an_empty_window() -> None:
    with pytest.raises(ValueError):
        window_sums([1, 2], 0)


@given(
    COUNTS,
    st.integers(-50, 50),
    st.lists(st.tuples(st.integers(-100, 300), st.integers(-100, 300)), max_size=6),
)
@settings(max_examples=60, deadline=None)
def test_range_sums_match_loops(values: list[int], origin: int, ranges: list[tuple[int, int]]) -> None:
    starts = [start for start, _ in ranges] or [0]
    ends = [end for _, end in ranges] or [0]
    expected = [
        sum(v for i, v in enumerate(values) if start <= origin + i < end)
        for start, end in zip(starts, ends, strict=True)
    ]
    assert range_sums(values, origin, starts, ends).tolist() == expected


def test_prefix_sums() -> None:
    assert prefix_sums([1, 2, 3]).tolist() == [0, 1, 3, 6]
    assert prefix_sums([[1, 2], [3, 4]]).tolist() == [[0, 1, 3], [0, 3, 7]]


SAMPLES = st.sampled_from([0.0, 1.0, 5.0, 10.0, -1.0, math.nan, math.inf, 12.0])


@given(st.lists(st.tuples(SAMPLES, SAMPLES), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_clean_counts_turns_bad_samples_into_no_data(pairs: list[tuple[float, float]]) -> None:
    good, total = clean_counts([g for g, _ in pairs], [t for _, t in pairs])
    for (g, t), g_clean, t_clean in zip(pairs, good.tolist(), total.tolist(), strict=True):
        valid = t > 0 and math.isfinite(t) and g >= 0 and math.isfinite(g)
        assert (g_clean, t_clean) == ((min(g, t), t) if valid else (0.0, 0.0))


def test_clean_counts_returns_clean_input_untouched() -> None:
    good, total = np.array([1.0, 0.0, 3.0]), np.array([1.0, 0.0, 4.0])
    out_good, out_total = clean_counts(good, total)
    assert out_good is good and out_total is total


@given(
    st.integers(1, 100),
    st.integers(-20, 20),
    st.lists(st.tuples(st.integers(-30, 130), st.integers(-30, 130)), max_size=5),
)
@settings(max_examples=60, deadline=None)
def test_exclusions_remove_minutes(length: int, origin: int, ranges: list[tuple[int, int]]) -> None:
    mask = exclusion_mask(length, origin, ranges)
    expected = [any(s <= origin + i < e for s, e in ranges) for i in range(length)]
    assert mask.tolist() == expected
    good, total = exclude(np.ones(length), np.full(length, 2.0), origin, ranges)
    assert total.tolist() == [0.0 if gone else 2.0 for gone in expected]
    assert good.tolist() == [0.0 if gone else 1.0 for gone in expected]
