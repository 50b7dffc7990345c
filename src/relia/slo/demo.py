"""Realistic traffic for the demo organisation's pushed SLOs: 30 days of history (daily traffic cycles, a
few incidents, one slow burn) and, while `relia up --demo` runs, one more minute every minute.

Deterministic per SLO name, so two demo instances look alike. Only SLOs named in PROFILES are fed, and
only when they are pushed SLOs (never one reading Prometheus)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from relia.core.db import Database
from relia.slo import rules, service
from relia.slo.models import SLO, Rollup
from relia.slo.schemas import SLOSpec

HISTORY_DAYS = 30


@dataclass(frozen=True)
class Incident:
    days_ago: float
    minutes: int
    bad_ratio: float


@dataclass(frozen=True)
class Profile:
    """Events per minute at the daily peak, the normal share of bad events, and incidents."""

    peak_per_minute: float
    bad_ratio: float
    incidents: tuple[Incident, ...] = field(default_factory=tuple)


PROFILES: dict[str, Profile] = {
    "checkout-availability": Profile(1200, 0.0002, (Incident(3.2, 25, 0.06), Incident(12.5, 8, 0.3))),
    "checkout-latency": Profile(1200, 0.004, (Incident(3.2, 40, 0.2),)),
    "payments-authorisations": Profile(600, 0.0001, (Incident(1.4, 30, 0.02),)),
    "storefront-availability": Profile(3000, 0.004),  # a slow burn: most of the month's budget goes
    "search-latency-slices": Profile(800, 0.01, (Incident(0.8, 90, 0.12), Incident(4.5, 45, 0.3))),
    "identity-sign-in": Profile(900, 0.00002, (Incident(0.3, 20, 0.5),)),  # exhausted after this morning
    "edge-probe": Profile(12, 0.0, (Incident(5.1, 10, 1.0), Incident(18.0, 4, 1.0))),
    "notifications-delivered": Profile(150, 0.002),
}


def _rng(name: str, minute: int) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(f"{name}:{minute}".encode()).digest()[:8], "big")
    return np.random.default_rng(seed)


def generate(name: str, profile: Profile, spec: SLOSpec, first: int, last: int, now: int) -> dict[str, np.ndarray]:
    """Per-minute (good, total) for each objective over [first, last), as {objective: array (2, n)}."""
    minutes = np.arange(first, last)
    rng = _rng(name, first)
    daily = 0.6 + 0.4 * np.sin(2 * math.pi * ((minutes % 1440) / 1440 - 0.3))
    total = rng.poisson(profile.peak_per_minute * daily).astype(float)
    bad_ratio = np.full(minutes.shape, profile.bad_ratio)
    for incident in profile.incidents:
        start = now - int(incident.days_ago * 1440)
        bad_ratio[(minutes >= start) & (minutes < start + incident.minutes)] = incident.bad_ratio
    out: dict[str, np.ndarray] = {}
    for index, objective in enumerate(spec.objectives):
        # Looser thresholds see fewer bad events: each further objective keeps a fifth of the bad ones.
        share = np.clip(bad_ratio * (0.2**index), 0.0, 1.0)
        bad = rng.binomial(total.astype(np.int64), share).astype(float)
        out[objective.name] = np.stack([total - bad, total])
    return out


def _feed(db: Database, now: datetime, *, backfill: bool) -> int:
    """Add minutes up to the last complete one for every demo SLO; returns how many SLOs were fed."""
    end = rules.epoch_minute(now)
    fed = 0
    with db.transaction() as session:
        slos = session.scalars(
            select(SLO)
            .where(SLO.name.in_(list(PROFILES)))
            .options(selectinload(SLO.objectives), selectinload(SLO.data_source))
        ).all()
        for slo in slos:
            if slo.data_source is not None and slo.data_source.type == "prometheus":
                continue
            ids = [objective.id for objective in slo.objectives]
            newest = session.scalar(select(func.max(Rollup.minute)).where(Rollup.objective_id.in_(ids)))
            if newest is None and not backfill:
                continue
            first = end - HISTORY_DAYS * 1440 if newest is None else newest + 1
            first = max(first, end - HISTORY_DAYS * 1440)
            if first >= end:
                continue
            spec = SLOSpec.model_validate(slo.spec)
            series = generate(slo.name, PROFILES[slo.name], spec, first, end, end)
            sums: dict[tuple[int, int], list[float]] = {}
            for objective in slo.objectives:
                good, total = series[objective.key]
                for offset in np.flatnonzero(total):
                    sums[(objective.id, first + int(offset))] = [float(good[offset]), float(total[offset])]
            service.add_to_rollups(session, sums, now=now, replace=True)
            fed += 1
    return fed


def seed(db: Database, now: datetime) -> int:
    """History for demo SLOs that have none yet (and the minutes missed since, for those that have)."""
    return _feed(db, now, backfill=True)


def feed(db: Database, now: datetime) -> int:
    """The minutes since the last feed, for demo SLOs that already have history."""
    return _feed(db, now, backfill=False)
