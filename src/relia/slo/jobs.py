"""The SLO domain's worker entry points: the evaluation tick step, Prometheus polling, and housekeeping
(folding old minutes into hours, forgetting old batch keys)."""

from __future__ import annotations

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.engine import tick_step
from relia.core.settings import Settings
from relia.slo import demo, housekeeping, rules
from relia.slo.evaluator import Evaluator
from relia.slo.prometheus import PrometheusSource

# One evaluator per worker process: its running totals live between ticks.
evaluator = Evaluator()


# One Prometheus poller per worker process: it keeps its round-robin position between ticks.
prometheus_source = PrometheusSource()


@tick_step("slo.prometheus", order=30)
def fetch_prometheus(db: Database, clock: Clock) -> object:
    """Read the minutes Prometheus-fed SLOs are missing, before the evaluator counts them."""
    return prometheus_source.tick(db, clock)


@tick_step("slo.evaluate", order=40)
def evaluate(db: Database, clock: Clock) -> object:
    return evaluator.tick(db, clock)


@tick_step("slo.housekeeping", order=80)
def tidy(db: Database, clock: Clock) -> object:
    return housekeeping.run(db, clock)


_demo = {"enabled": None, "last_minute": None}


@tick_step("slo.demo-traffic", order=35)
def demo_traffic(db: Database, clock: Clock) -> object:
    """With RELIA_DEMO_TRAFFIC=1 (set by `make run`), the demo SLOs get each new minute of traffic."""
    if _demo["enabled"] is None:
        _demo["enabled"] = Settings().demo_traffic
    now = clock.now()
    minute = rules.epoch_minute(now)
    if not _demo["enabled"] or _demo["last_minute"] == minute:
        return 0
    _demo["last_minute"] = minute
    return demo.feed(db, now)
