"""The injected clock. Production code asks a Clock for the time; tests drive a SimulatedClock."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that only moves when told to. Thread-safe, so API threads and the worker share it."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            if instant.astimezone(UTC) < self._now:
                raise ValueError("time does not run backwards")
            self._now = instant.astimezone(UTC)


class FileClock:
    """Test-only: the instant written (ISO 8601) in a file, read on every call. It lets a test drive the clock of
    a worker running in another process (``RELIA_TEST_CLOCK_FILE``, see ``clock_from_environment``), e.g. to kill
    ``relia worker`` in the middle of an escalation and start it again on the same simulated time. The test
    replaces the file atomically (write elsewhere, rename), so a reader never sees half a timestamp."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def now(self) -> datetime:
        return utc(datetime.fromisoformat(self.path.read_text().strip()))


TEST_CLOCK_VARIABLE = "RELIA_TEST_CLOCK_FILE"


def clock_from_environment() -> Clock:
    """The system clock, unless ``RELIA_TEST_CLOCK_FILE`` names a FileClock's file (tests only: never set it in
    production, where time must be the machine's)."""
    path = os.environ.get(TEST_CLOCK_VARIABLE)
    return FileClock(path) if path else SystemClock()


def utc(instant: datetime) -> datetime:
    """Normalise to aware UTC; naive values are taken to be UTC already."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)
