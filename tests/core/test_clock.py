from datetime import UTC, datetime, timedelta

import pytest

from relia.core.clock import SimulatedClock, SystemClock, utc


def test_simulated_clock_moves_only_forward():
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(minutes=5)) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert clock.advance(30) == datetime(2026, 1, 1, 0, 5, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.set(datetime(2025, 1, 1, tzinfo=UTC))


def test_simulated_clock_needs_aware_start():
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc():
    assert SystemClock().now().tzinfo is UTC


def test_utc_normalises():
    assert utc(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
