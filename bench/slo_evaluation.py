"""SLO evaluation: one evaluator tick over 1,000 SLOs with up to 30 days of per-minute history.

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this migrates
with `relia db upgrade`, creates 4 teams, 100 services and 1,000 pushed SLOs (Occurrences, rolling 30 d,
targets from 99 % to 99.99 %, one in three with the no-data alert) through the service layer, then grows
their history in phases, newest minutes first (by default 1 d, then 7 d, then 30 d; see bench/_slo.py for
the traffic). After each phase a fresh evaluation worker (its own process, doing nothing but
`Evaluator().tick`) runs:

  first tick    recounts every objective and window from the stored minutes (what a new worker, a
                definition change or a long outage costs); grows with the history, as it should
  minute ticks  --ticks times: the simulated clock moves one minute, the minute that just ended is pushed
                for every SLO (service.add_to_rollups, one transaction, not measured), the worker ticks;
                every window, budget, burn rate, forecast and alert condition of every SLO, and the status
                rows written. Every tenth minute also saves the running totals (PERSIST_EVERY): the max.

Goals (from the issue): the minute tick under 1 s (median) with 30 days of history; its cost flat as the
history grows (the 30 d median within 25 % of the 1 d median); the worker's peak memory (VmHWM) under 500 MB.

    .venv/bin/python bench/slo_evaluation.py                        # SQLite and PostgreSQL, 1/7/30 d
    .venv/bin/python bench/slo_evaluation.py --backends sqlite --history 1,7 --ticks 5

The markdown is printed and written to bench/results/slo_evaluation.md (every tick's figures go to
slo_evaluation.json, the workers' stderr to slo-worker-*.log).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from _common import (
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    background_cpu_busy,
    facts_table,
    machine_facts,
    markdown_table,
)
from _slo import (
    DAY,
    Phase,
    Traffic,
    check_against_recount,
    load_history,
    real_start,
    run_phase,
    seed_catalog,
    status_summary,
)
from api_throughput import DEFAULT_PG_URL, Backend, PostgresBackend, SqliteBackend

GOAL_TICK_SECONDS = 1.0
GOAL_FLAT_RATIO = 1.25
GOAL_PEAK_MB = 500.0


@dataclass
class PhaseResult:
    days: int
    rows: int  # rollup rows stored after this phase's load (pushed minutes included)
    load_seconds: float
    loaded: int
    phase: Phase


@dataclass
class BackendResult:
    name: str
    catalog_seconds: float
    phases: list[PhaseResult] = field(default_factory=list)
    size: str = ""
    mismatches: list[str] = field(default_factory=list)
    checked: int = 0
    states: dict[str, int] = field(default_factory=dict)


def database_size(backend: Backend, data_dir: Path) -> str:
    if isinstance(backend, PostgresBackend):
        import psycopg

        with psycopg.connect(backend.admin_url, autocommit=True) as conn:
            size = conn.execute("SELECT pg_database_size(%s)", (backend.database,)).fetchone()[0]  # type: ignore[index]
    else:
        size = sum(path.stat().st_size for path in data_dir.glob("relia.db*"))
    return f"{size / 1e9:.1f} GB"


def bench_backend(
    backend: Backend, args: argparse.Namespace, out_dir: Path, start: datetime | None = None
) -> BackendResult:
    """Seed, grow the history in ``args.history`` steps and measure after each; ``start`` is where the
    simulated clock starts (default: now), which also places the incidents under way."""
    from sqlalchemy import delete

    from relia.core.clock import SimulatedClock
    from relia.core.db import Database
    from relia.slo import rules
    from relia.slo.models import WindowState

    slug = backend.name.lower()
    log_path = out_dir / f"slo-worker-{slug}.log"
    log_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="relia-bench-slo-") as tmp:
        data_dir = Path(tmp)
        backend.prepare(data_dir)
        db = None
        try:
            env = {
                **os.environ,
                "RELIA_DATA_DIR": str(data_dir),
                "RELIA_DATABASE_URL": backend.database_url,
                "RELIA_SECRET_KEY": "benchmark-secret-key-" + uuid.uuid4().hex,
            }
            subprocess.run(
                [str(VENV_BIN / "relia"), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
            )
            db = Database(backend.database_url)
            clock = SimulatedClock(start or real_start())
            start_minute = rules.epoch_minute(clock.now())
            traffic = Traffic(args.slos, seed=args.seed, now_minute=start_minute)
            started = time.perf_counter()
            items, _ = seed_catalog(db, clock.now(), traffic)
            result = BackendResult(backend.name, time.perf_counter() - started)
            print(f"  {args.slos} SLOs created in {result.catalog_seconds:.1f} s", flush=True)
            loaded_days, rows = 0, 0
            for days in args.history:
                started = time.perf_counter()
                loaded = load_history(
                    backend.database_url,
                    items,
                    traffic,
                    start_minute - days * DAY,
                    start_minute - loaded_days * DAY,
                )
                load_seconds = time.perf_counter() - started
                rows += loaded
                print(f"  history to {days} d: {loaded:,} rows loaded in {load_seconds:.1f} s", flush=True)
                if loaded_days:
                    # The new worker must recount: older minutes were added behind its back.
                    with db.transaction() as session:
                        session.execute(delete(WindowState))
                phase = run_phase(
                    db,
                    backend.database_url,
                    clock,
                    items,
                    traffic,
                    ticks=args.ticks,
                    log_path=log_path,
                    progress=f"{days} d: ",
                )
                rows += sum(len(items) for _ in phase.steady)  # upper bound: minutes without requests are skipped
                result.phases.append(PhaseResult(days, rows, load_seconds, loaded, phase))
                loaded_days = days
            sample = [objective_id for _, objective_id in items[:: max(1, len(items) // 20)]]
            result.mismatches = check_against_recount(db, sample)
            result.checked = len(sample)
            result.states = status_summary(db)
            result.size = database_size(backend, data_dir)
            return result
        finally:
            if db is not None:
                db.dispose()
            backend.cleanup()


# ------------------------------------------------------------------------------------------------- reports


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: list[BackendResult], args: argparse.Namespace, facts: dict[str, str], busy: float) -> str:
    rows = []
    for result in results:
        for item in result.phases:
            phase = item.phase
            rows.append(
                [
                    result.name,
                    f"{item.days} d",
                    f"~{item.rows / 1e6:.1f} M",
                    f"{phase.first['wall']:.2f}",
                    f"{_median(phase.steady_walls):.3f}",
                    f"{max(phase.steady_walls):.3f}",
                    f"{_median([t['cpu'] for t in phase.steady]):.3f}",
                    f"{phase.started['VmRSS']:.0f} / {phase.peak_mb:.0f}",
                ]
            )
    table = markdown_table(
        [
            "Database",
            "History",
            "Rollup rows",
            "First tick s (recount)",
            "Minute tick s, median",
            "max",
            "Worker CPU s/tick",
            "Worker RSS MB: start / peak",
        ],
        rows,
    )
    seeding = []
    for result in results:
        vacuum = ", VACUUM ANALYZE" if result.name == "PostgreSQL" else ""
        seeding.append([result.name, f"{args.slos:,} SLOs (service layer)", "", f"{result.catalog_seconds:.1f}"])
        for item in result.phases:
            seeding.append(
                [
                    result.name,
                    f"history to {item.days} d (bulk load, index rebuild{vacuum})",
                    f"{item.loaded:,}",
                    f"{item.load_seconds:.1f}",
                ]
            )
    seeding_table = markdown_table(["Database", "Seeding step (not measured)", "Rows", "Seconds"], seeding)

    goals, notes = [], []
    for result in results:
        if not result.phases:
            continue
        last, first = result.phases[-1], result.phases[0]
        median_last = _median(last.phase.steady_walls)
        verdict = "met" if median_last < GOAL_TICK_SECONDS else "NOT met"
        goals.append(
            f"- {result.name}: minute tick with {last.days} d of history, median {median_last:.3f} s "
            f"(max {max(last.phase.steady_walls):.3f} s) (goal < {GOAL_TICK_SECONDS:.0f} s): **{verdict}**"
        )
        if len(result.phases) > 1:
            ratio = median_last / _median(first.phase.steady_walls)
            verdict = "met" if ratio <= GOAL_FLAT_RATIO else "NOT met"
            goals.append(
                f"- {result.name}: cost flat as history grows: median at {last.days} d / at {first.days} d = "
                f"{ratio:.2f} (goal <= {GOAL_FLAT_RATIO}): **{verdict}**"
            )
        peak = max(item.phase.peak_mb for item in result.phases)
        verdict = "met" if peak < GOAL_PEAK_MB else "NOT met"
        goals.append(f"- {result.name}: peak worker memory {peak:.0f} MB (goal < {GOAL_PEAK_MB:.0f} MB): **{verdict}**")
        agreement = "agree" if not result.mismatches else f"DISAGREE: {'; '.join(result.mismatches[:3])}"
        states = ", ".join(f"{key} {value}" for key, value in sorted(result.states.items()))
        notes.append(
            f"- {result.name}: database {result.size} at the end; after the last tick the period totals carried "
            f"forward minute by minute and a SQL sum of the stored minutes {agreement} ({result.checked} objectives "
            f"checked); objectives by state: {states}."
        )
    command = " ".join([".venv/bin/python", "bench/slo_evaluation.py", *sys.argv[1:]])
    history = ", ".join(f"{days} d" for days in args.history)
    return "\n".join(
        [
            f"### SLO evaluation ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: {args.slos:,} pushed SLOs (Occurrences, rolling 30 d), per-minute history grown to "
            f"{history}; after each step a fresh worker process ticks once (recount) and then {args.ticks} times, "
            "one simulated minute apart, with one new minute pushed for every SLO before each tick. CPU busy "
            f"before the run (other processes): {busy:.0%}.",
            "",
            table,
            "",
            *goals,
            "",
            *notes,
            "",
            seeding_table,
            "",
            facts_table(facts),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both (default)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("RELIA_BENCH_PG_URL", DEFAULT_PG_URL),
        help="an existing PostgreSQL database to connect to; a temporary one is created and dropped",
    )
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--history", default="1,7,30", help="days of history at each step, ascending")
    parser.add_argument("--ticks", type=int, default=10, help="minute ticks measured after each first tick")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "slo_evaluation.md")
    args = parser.parse_args()
    args.history = [int(part) for part in args.history.split(",") if part.strip()]
    if not args.history or args.history != sorted(set(args.history)) or args.history[0] < 1 or args.history[-1] > 30:
        parser.error("--history: ascending whole days between 1 and 30, e.g. 1,7,30")

    backends: list[Backend] = []
    postgres_version = None
    for name in [name.strip() for name in args.backends.split(",") if name.strip()]:
        if name == "sqlite":
            backends.append(SqliteBackend())
        elif name in ("postgres", "postgresql"):
            pg = PostgresBackend(args.pg_url)
            postgres_version = pg.server_version()
            backends.append(pg)
        else:
            parser.error(f"unknown backend {name!r}")
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(postgres_version=postgres_version)
    busy = background_cpu_busy()
    if busy > 0.15:
        print(f"warning: the CPUs are {busy:.0%} busy before the run; figures will be high", file=sys.stderr)

    results = []
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        results.append(bench_backend(backend, args, out_dir))

    text = report(results, args, facts, busy)
    args.out.write_text(text)
    raw = {
        result.name: [
            {"days": item.days, "first": item.phase.first, "steady": item.phase.steady, "end": item.phase.finished}
            for item in result.phases
        ]
        for result in results
    }
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    print()
    print(text)
    print(f"(written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    return 1 if any(result.mismatches for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
