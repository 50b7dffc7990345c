"""The engine tick: one pass over every domain's periodic work. The worker runs it every few seconds.

Domains add steps with ``@tick_step(name, order=...)``; each step gets the database and the clock and must be
idempotent, because several workers may tick at once and a crashed tick is simply run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from relia.core import outbox, timers
from relia.core.clock import Clock
from relia.core.db import Database

log = structlog.get_logger("relia.engine")

TickStep = Callable[[Database, Clock], object]


@dataclass(order=True)
class _Step:
    order: int
    name: str
    run: TickStep = field(compare=False)


_steps: dict[str, _Step] = {}


def tick_step(name: str, *, order: int = 50) -> Callable[[TickStep], TickStep]:
    def register(fn: TickStep) -> TickStep:
        _steps[name] = _Step(order, name, fn)
        return fn

    return register


def step_names() -> list[str]:
    return [step.name for step in sorted(_steps.values())]


@dataclass
class TickReport:
    durations: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    results: dict[str, object] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.durations.values())


def run_tick(db: Database, clock: Clock) -> TickReport:
    """Run every step once. A failing step is logged and reported; the others still run."""
    report = TickReport()
    for step in sorted(_steps.values()):
        started = time.perf_counter()
        try:
            report.results[step.name] = step.run(db, clock)
        except Exception as exc:
            report.errors[step.name] = f"{type(exc).__name__}: {exc}"
            log.exception("tick.step_failed", step=step.name)
        report.durations[step.name] = time.perf_counter() - started
    return report


tick_step("timers", order=10)(lambda db, clock: timers.run_due(db, clock))
tick_step("outbox", order=90)(lambda db, clock: outbox.deliver_due(db, clock))
