"""Shared by the SLO benchmarks: a catalog of pushed SLOs, realistic per-minute traffic, bulk loading of
history, and an evaluation worker in a process of its own.

Traffic. Every SLO has a profile drawn from the seed and its index: a base rate between 5 and 3,000 requests
a minute (log-uniform), a daily cycle, a baseline error ratio well inside its budget, incidents (one SLO-day
in fifteen has one: 5 to 60 minutes at 1 to 20 % errors), and a few SLOs (3 %) burning right now (from 40
minutes before the benchmark's start, at 5 to 20 % errors). A minute's counts depend only on the seed, the
SLO and the minute, so any range reads the same whatever order it is generated in, and the Prometheus
benchmark backfills the very same counts. Minutes without requests are not stored (a client pushes nothing
for them), as ingestion would leave them.

Bulk loading writes ``slo_rollups`` rows directly (executemany on SQLite, binary COPY on PostgreSQL) with the
minute index dropped during the load and rebuilt after it; on PostgreSQL the foreign-key triggers are skipped
for the load (``session_replication_role = replica``, superuser only; without it the load is just slower) and
``VACUUM (ANALYZE)`` runs after it, as autovacuum would. Seeding is reported, never measured as evaluation.

The worker (``python bench/_slo.py worker URL``) does only what the product's worker does for SLOs: one
``Evaluator`` whose ``tick`` runs when the benchmark says so, at the simulated time it is given; it answers
each tick with a JSON line (wall and CPU seconds, the TickReport, VmRSS/VmHWM), so its peak memory is the
evaluation's alone.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

TEAMS = ("team-a", "team-b", "team-c", "team-d")
SLOS_PER_SERVICE = 10
TARGETS = (0.99, 0.995, 0.999, 0.999, 0.999, 0.9995, 0.9999)
WINDOW = "30d"
DAY = 1440
INCIDENT_CHANCE = 1 / 15
BURNING_SHARE = 0.03


def slo_name(index: int, count: int) -> str:
    return f"s{index:0{max(3, len(str(count - 1)))}d}"


def service_slug(index: int) -> str:
    return f"svc-{index // SLOS_PER_SERVICE:03d}"


# ------------------------------------------------------------------------------------------------ traffic


@dataclass(frozen=True)
class Profile:
    rate: float  # requests per minute, before the daily cycle
    amplitude: float
    phase: float
    baseline: float  # error ratio outside incidents
    burning: float  # error ratio of the incident under way at the start (0: none)
    target: float
    no_data: bool  # the SLO has the no-data alert (one more window to keep)


class Traffic:
    """Per-minute (good, total) counts of ``count`` SLOs; ``now_minute`` places the incidents under way."""

    def __init__(self, count: int, *, seed: int, now_minute: int) -> None:
        self.count, self.seed, self.now_minute = count, seed, now_minute

    @cache  # noqa: B019 - one Traffic per run
    def profile(self, index: int) -> Profile:
        rng = np.random.default_rng([self.seed, index, 0xF11E])
        target = TARGETS[int(rng.integers(len(TARGETS)))]
        budget = 1 - target
        return Profile(
            rate=float(math.exp(rng.uniform(math.log(5), math.log(3000)))),
            amplitude=float(rng.uniform(0.2, 0.6)),
            phase=float(rng.uniform(0, 2 * math.pi)),
            baseline=float(budget * rng.uniform(0.05, 0.6)),
            burning=float(rng.uniform(0.05, 0.2)) if rng.random() < BURNING_SHARE else 0.0,
            target=target,
            no_data=index % 3 == 0,
        )

    def _day(self, index: int, day: int) -> tuple[np.ndarray, np.ndarray]:
        profile = self.profile(index)
        rng = np.random.default_rng([self.seed, index, day])
        minutes = day * DAY + np.arange(DAY)
        cycle = 1 + profile.amplitude * np.sin(2 * math.pi * (minutes % DAY) / DAY + profile.phase)
        total = rng.poisson(profile.rate * cycle)
        error = np.full(DAY, profile.baseline)
        if rng.random() < INCIDENT_CHANCE:
            start = int(rng.integers(0, DAY))
            error[start : start + int(rng.integers(5, 61))] = rng.uniform(0.01, 0.2)
        if profile.burning:
            error[(minutes >= self.now_minute - 40) & (minutes < self.now_minute + 180)] = profile.burning
        bad = rng.binomial(total, np.minimum(error, 1.0))
        return (total - bad).astype(float), total.astype(float)

    def counts(self, index: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(good, total) for minutes [lo, hi)."""
        first, last = lo // DAY, (hi - 1) // DAY
        days = [self._day(index, day) for day in range(first, last + 1)]
        good = np.concatenate([d[0] for d in days])[lo - first * DAY : hi - first * DAY]
        total = np.concatenate([d[1] for d in days])[lo - first * DAY : hi - first * DAY]
        return good, total


# ------------------------------------------------------------------------------------------------ catalog


def slo_body(index: int, count: int, profile: Profile, indicator: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Occurrences SLO over a rolling 30 days; pushed unless ``indicator`` says otherwise."""
    name = slo_name(index, count)
    return {
        "name": name,
        "service": service_slug(index),
        "indicator": indicator or {"ratio": {}},
        "budgetingMethod": "Occurrences",
        "window": {"rolling": WINDOW},
        "objectives": [{"target": profile.target}],
        "alerting": {
            "name": f"{name.upper()}HighErrorRate",  # Sloth wants one alert name per SLO
            "noData": {"enabled": profile.no_data, "after": "30m"},
        },
    }


def seed_catalog(
    db: Any, now: datetime, traffic: Traffic, *, pusher: bool = False
) -> tuple[list[tuple[int, int]], str]:
    """Four teams, one service per ten SLOs, ``traffic.count`` SLOs through the service layer (as
    tests/factories.py does), and with ``pusher`` a user in every team with a write token.
    Returns ([(SLO index, objective id)], token or "")."""
    from sqlalchemy import select

    from relia.catalog import identity
    from relia.catalog import service as catalog
    from relia.catalog.schemas import ServiceCreate, TeamCreate, TokenCreate, UserCreate
    from relia.core.auth import Principal
    from relia.slo import service
    from relia.slo.models import SLO, Objective
    from relia.slo.schemas import SLOCreate

    operator = Principal.system("bench-operator")
    count = traffic.count
    with db.transaction() as session:
        catalog.create_user(
            session,
            actor=operator,
            data=UserCreate.model_validate({"username": "pusher", "name": "Pusher", "email": "pusher@example.com"}),
            now=now,
        )
        for slug in TEAMS:
            catalog.create_team(
                session,
                actor=operator,
                data=TeamCreate.model_validate(
                    {"slug": slug, "name": slug.title(), "members": [{"user": "pusher", "role": "member"}]}
                ),
                now=now,
            )
        for number in range((count - 1) // SLOS_PER_SERVICE + 1):
            catalog.create_service(
                session,
                actor=operator,
                data=ServiceCreate.model_validate(
                    {"slug": f"svc-{number:03d}", "name": f"Service {number}", "owner": TEAMS[number % len(TEAMS)]}
                ),
                now=now,
            )
    with db.transaction() as session:
        for index in range(count):
            body = slo_body(index, count, traffic.profile(index))
            service.create_slo(session, actor=operator, data=SLOCreate.model_validate(body), now=now)
    token = ""
    if pusher:
        with db.transaction() as session:
            _, _, token = identity.create_token(
                session, actor=operator, data=TokenCreate(name="bench-push", scope="write", user="pusher"), now=now
            )
    with db.reader() as session:
        by_name = dict(
            session.execute(select(SLO.name, Objective.id).join(Objective, Objective.slo_id == SLO.id)).all()
        )
    return [(index, by_name[slo_name(index, count)]) for index in range(count)], token


# ------------------------------------------------------------------------------------------- bulk loading


_PG_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("len_id", ">i4"),
        ("objective_id", ">i8"),
        ("len_minute", ">i4"),
        ("minute", ">i4"),
        ("len_good", ">i4"),
        ("good", ">f8"),
        ("len_total", ">i4"),
        ("total", ">f8"),
    ]
)


def _rows(traffic: Traffic, index: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    good, total = traffic.counts(index, lo, hi)
    minutes = np.arange(lo, hi)
    keep = total > 0
    return minutes[keep], good[keep], total[keep]


def load_history(database_url: str, items: Iterable[tuple[int, int]], traffic: Traffic, lo: int, hi: int) -> int:
    """Rollup rows for minutes [lo, hi) of every (SLO index, objective id); returns the rows written."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _load_sqlite(str(url.database), items, traffic, lo, hi)
    return _load_postgres(
        url.set(drivername="postgresql").render_as_string(hide_password=False), items, traffic, lo, hi
    )


def _load_sqlite(path: str, items: Iterable[tuple[int, int]], traffic: Traffic, lo: int, hi: int) -> int:
    import sqlite3

    written = 0
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # seeding only; the product runs with NORMAL
        connection.execute("DROP INDEX IF EXISTS ix_slo_rollups_minute")
        connection.execute("BEGIN")
        for index, objective_id in items:
            minutes, good, total = _rows(traffic, index, lo, hi)
            connection.executemany(
                "INSERT INTO slo_rollups (objective_id, minute, good, total) VALUES (?, ?, ?, ?)",
                zip(repeat(objective_id), minutes.tolist(), good.tolist(), total.tolist(), strict=False),
            )
            written += len(minutes)
        connection.execute("COMMIT")
        connection.execute("CREATE INDEX ix_slo_rollups_minute ON slo_rollups (minute)")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return written


def _load_postgres(url: str, items: Iterable[tuple[int, int]], traffic: Traffic, lo: int, hi: int) -> int:
    import psycopg

    written = 0
    with psycopg.connect(url) as connection:
        try:
            connection.execute("SET session_replication_role = replica")  # no per-row FK trigger (superuser)
        except psycopg.Error:
            connection.rollback()
        connection.execute("DROP INDEX IF EXISTS ix_slo_rollups_minute")
        with connection.cursor().copy(
            "COPY slo_rollups (objective_id, minute, good, total) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
            for index, objective_id in items:
                minutes, good, total = _rows(traffic, index, lo, hi)
                rows = np.empty(len(minutes), dtype=_PG_ROW)
                rows["fields"], rows["len_id"], rows["len_minute"], rows["len_good"], rows["len_total"] = 4, 8, 4, 8, 8
                rows["objective_id"], rows["minute"], rows["good"], rows["total"] = objective_id, minutes, good, total
                copy.write(rows.tobytes())
                written += len(minutes)
            copy.write(b"\xff\xff")
        connection.execute("CREATE INDEX ix_slo_rollups_minute ON slo_rollups (minute)")
        connection.commit()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) slo_rollups")
    return written


def push_minute(db: Any, items: Iterable[tuple[int, int]], traffic: Traffic, minute: int, now: datetime) -> int:
    """One new minute for every SLO, added as ingestion adds it (``service.add_to_rollups``, one transaction)."""
    from relia.slo import service

    sums: dict[tuple[int, int], list[float]] = {}
    for index, objective_id in items:
        good, total = traffic.counts(index, minute, minute + 1)
        if total[0] > 0:
            sums[(objective_id, minute)] = [float(good[0]), float(total[0])]
    with db.transaction() as session:
        service.add_to_rollups(session, sums, now=now)
    return len(sums)


# ------------------------------------------------------------------------------------------------- worker


def memory_mb() -> dict[str, float]:
    """VmRSS and VmHWM (peak resident set) of this process, in MB (MiB)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    found["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return found


class _FixedClock:
    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant


def worker_main(database_url: str) -> int:
    """Read ``tick <epoch seconds>`` / ``quit`` lines; answer each with a JSON line on the original stdout."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answers
    from relia.core.db import Database
    from relia.slo.evaluator import Evaluator

    db = Database(database_url)
    evaluator = Evaluator()
    answers.write(json.dumps({"ready": True, **memory_mb()}) + "\n")
    while line := sys.stdin.readline():
        command, _, argument = line.strip().partition(" ")
        if command == "tick":
            clock = _FixedClock(datetime.fromtimestamp(float(argument), UTC))
            cpu, wall = time.process_time(), time.perf_counter()
            report = evaluator.tick(db, clock)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            answers.write(
                json.dumps(
                    {
                        "wall": wall,
                        "cpu": cpu,
                        "seconds": report.seconds,
                        "evaluated": report.evaluated,
                        "recounted": report.recounted,
                        "skipped": report.skipped,
                        "end_minute": report.end_minute,
                        "events": len(report.events),
                        **memory_mb(),
                    }
                )
                + "\n"
            )
        elif command == "quit":
            break
    answers.write(json.dumps({"quit": True, **memory_mb()}) + "\n")
    db.dispose()
    return 0


class EvaluationWorker:
    """The worker process, driven tick by tick."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "worker", database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
        )
        self.started = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the evaluation worker exited ({self.process.wait()}); see {self.log.name}")
        return json.loads(line)

    def tick(self, at: datetime) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"tick {at.timestamp()}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        last = self._answer()
        self.process.wait(timeout=30)
        self.log.close()
        return last


@dataclass
class Phase:
    """One evaluation worker's run: a first tick (recounting) and ``ticks`` minute ticks after it."""

    first: dict[str, Any]
    steady: list[dict[str, Any]]
    started: dict[str, Any]
    finished: dict[str, Any]

    @property
    def steady_walls(self) -> list[float]:
        return [tick["wall"] for tick in self.steady]

    @property
    def peak_mb(self) -> float:
        return max(self.finished["VmHWM"], *(tick["VmHWM"] for tick in [self.first, *self.steady]))


def run_phase(
    db: Any,
    database_url: str,
    clock: Any,
    items: list[tuple[int, int]],
    traffic: Traffic,
    *,
    ticks: int,
    log_path: Path,
    progress: str = "",
) -> Phase:
    """A fresh worker, so its first tick recounts everything, then ``ticks`` more; before every tick the clock
    moves a minute and the minute that just ended is pushed for every SLO."""
    from relia.slo import rules

    def next_minute() -> None:
        clock.advance(timedelta(minutes=1))
        push_minute(db, items, traffic, rules.epoch_minute(clock.now()) - 1, clock.now())

    worker = EvaluationWorker(database_url, log_path)
    try:
        next_minute()
        first = worker.tick(clock.now())
        _check(first, len(items), recount=True)
        print(f"    {progress}first tick {first['wall']:.2f} s (recounted {first['recounted']})", flush=True)
        steady = []
        for _ in range(ticks):
            next_minute()
            tick = worker.tick(clock.now())
            _check(tick, len(items), recount=False)
            steady.append(tick)
        walls = [t["wall"] for t in steady]
        print(
            f"    {progress}{ticks} minute ticks: median {statistics.median(walls):.3f} s, max {max(walls):.3f} s",
            flush=True,
        )
    finally:
        finished = worker.close()
    return Phase(first=first, steady=steady, started=worker.started, finished=finished)


def _check(tick: dict[str, Any], objectives: int, *, recount: bool) -> None:
    if tick["skipped"] or tick["evaluated"] != objectives:
        raise RuntimeError(f"the tick did not evaluate every objective: {tick}")
    if tick["recounted"] != (objectives if recount else 0):
        raise RuntimeError(f"unexpected recount: {tick}")


def check_against_recount(db: Any, sample: list[int]) -> list[str]:
    """For a few objectives, the period totals the evaluator carried forward tick by tick against a sum of the
    stored minutes over the same window. Returns the mismatches (empty: they agree)."""
    from sqlalchemy import func, select

    from relia.slo import rules
    from relia.slo.models import ObjectiveStatus, Rollup

    problems = []
    with db.reader() as session:
        for objective_id in sample:
            status = session.get(ObjectiveStatus, objective_id)
            if status is None:
                problems.append(f"objective {objective_id}: no status")
                continue
            window = status.detail["window"]
            lo = rules.epoch_minute(datetime.fromisoformat(window["start"]))
            hi = rules.epoch_minute(datetime.fromisoformat(window["end"]))
            good, total = session.execute(
                select(func.sum(Rollup.good), func.sum(Rollup.total)).where(
                    Rollup.objective_id == objective_id, Rollup.minute >= lo, Rollup.minute < hi
                )
            ).one()
            events = status.detail["events"]
            if not (
                math.isclose(events["total"], total or 0, rel_tol=1e-9)
                and math.isclose(events["good"], good or 0, rel_tol=1e-9)
            ):
                problems.append(f"objective {objective_id}: carried {events} vs recount good={good} total={total}")
    return problems


def status_summary(db: Any) -> dict[str, int]:
    """How many objectives are in each state, and how many page and ticket alerts are active."""
    from sqlalchemy import func, select

    from relia.slo.models import ObjectiveStatus

    with db.reader() as session:
        counts = dict(
            session.execute(select(ObjectiveStatus.state, func.count()).group_by(ObjectiveStatus.state)).all()
        )
        counts["page"] = session.scalar(select(func.count()).where(ObjectiveStatus.page_active.is_(True))) or 0
        counts["ticket"] = session.scalar(select(func.count()).where(ObjectiveStatus.ticket_active.is_(True))) or 0
    return counts


def real_start(seconds_into_minute: int = 5) -> datetime:
    """The current minute plus a few seconds: where the simulated clocks start."""
    now = int(time.time()) // 60 * 60
    return datetime.fromtimestamp(now + seconds_into_minute, UTC)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2]))
    print("usage: _slo.py worker DATABASE_URL", file=sys.stderr)
    sys.exit(2)
