"""SLO ingest: pre-counted points per second pushed through the API (`POST /api/v1/slos/{name}/events`).

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this migrates
with `relia db upgrade`, creates 100 pushed SLOs (as bench/slo_evaluation.py does) with 30 days of per-minute
history already stored, and a user in every owning team with a write token; starts `relia serve` (uvicorn,
one process, as the product runs it) on a free port and drives it with wrk (-t2 -c4 by default): a Lua script
sends pre-built bodies, each with its own idempotency key, rotating over the SLOs. Four kinds of batch:

  1,000 / 10,000 points over the last hour     several points per minute (sources reporting the same
                                                minutes): 60 per-minute rollup rows upserted per batch
  1,000 / 10,000 points, one minute each        a catch-up: every point its own minute (the last 17 hours,
                                                or the last 7 days), as many rollup rows as points

Each point is `{"timestamp": "...Z", "good": g, "total": t}`. Points per second are the points of the
batches wrk saw answered 200 within its measured duration, over that duration; the database is then checked
to hold at least those batches, each with every point accepted (the idempotency keys are the run's, so a
refused or duplicate batch would show). The server log's status counts and its CPU time (`/proc/<pid>/stat`)
are shown as well.

Goal (from the issue): at least 20,000 points/s on SQLite, and more on PostgreSQL.

    .venv/bin/python bench/slo_ingest.py                      # both databases, 3 s warm-up + 10 s per batch kind
    .venv/bin/python bench/slo_ingest.py --backends sqlite --duration 5 --only hour-1000

The markdown is printed and written to bench/results/slo_ingest.md (raw wrk output and server logs next to it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import (
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    background_cpu_busy,
    facts_table,
    free_port,
    http,
    machine_facts,
    markdown_table,
    sigint_reaches_children,
)
from _slo import DAY, Traffic, load_history, real_start, seed_catalog, slo_name
from api_throughput import DEFAULT_PG_URL, DONE_LUA, Backend, PostgresBackend, Server, SqliteBackend, run_wrk

GOAL_SQLITE = 20_000


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    points: int
    spread: str  # "hour": over the last 60 minutes; "minutes": one minute per point


KINDS = [
    Kind("hour-1000", "1,000 points over the last hour", 1000, "hour"),
    Kind("hour-10000", "10,000 points over the last hour", 10000, "hour"),
    Kind("minutes-1000", "1,000 points, one minute each", 1000, "minutes"),
    Kind("minutes-10000", "10,000 points, one minute each", 10000, "minutes"),
]

PUSH_LUA = r"""
local next_id = 0
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
local bodies = {}
local names = {NAMES}
local counter = 0
local headers = {["Authorization"] = "Bearer @TOKEN@", ["Content-Type"] = "application/json"}
init = function(args)
  for i, path in ipairs({PATHS}) do
    local f = assert(io.open(path, "rb"))
    bodies[i] = f:read("*a")
    f:close()
  end
end
request = function()
  counter = counter + 1
  local name = names[(counter * @THREADS@ + tid) % #names + 1]
  local body = '{"idempotencyKey":"@RUN@-' .. tid .. '-' .. counter .. '",' .. bodies[counter % #bodies + 1]
  return wrk.format("POST", "/api/v1/slos/" .. name .. "/events", headers, body)
end
"""


@dataclass
class Result:
    backend: str
    kind: Kind
    points_per_second: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    accepted: int
    requests: int
    errors: dict[str, int]
    statuses: dict[str, int]
    cpu_ms_per_1000: float
    raw: str = ""
    notes: list[str] = field(default_factory=list)


def build_bodies(kind: Kind, folder: Path, variants: int = 4) -> list[Path]:
    """Bodies without their idempotency key (the Lua script puts one in front), timestamps just behind now."""
    rng = random.Random(kind.name)
    now_minute = int(time.time()) // 60
    paths = []
    for variant in range(variants):
        points = []
        for number in range(kind.points):
            back = 1 + (number % 60 if kind.spread == "hour" else number)
            second = rng.randrange(60) if kind.spread == "hour" else 0
            stamp = datetime.fromtimestamp((now_minute - back) * 60 + second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            total = rng.randint(1, 5000)
            good = total - (min(total, rng.randint(0, 10)) if rng.random() < 0.2 else 0)
            points.append(f'{{"timestamp":"{stamp}","good":{good},"total":{total}}}')
        path = folder / f"{kind.name}-{variant}.json"
        path.write_text('"points":[' + ",".join(points) + "]}")
        paths.append(path)
    return paths


def accepted_points(db: object, run: str) -> tuple[int, int]:
    """(batches, points) stored for the run's idempotency keys."""
    from sqlalchemy import func, select

    from relia.slo.models import IngestBatch

    with db.reader() as session:  # type: ignore[attr-defined]
        batches, points = session.execute(
            select(func.count(), func.coalesce(func.sum(IngestBatch.accepted), 0)).where(
                IngestBatch.key.like(f"{run}-%")
            )
        ).one()
    return int(batches), int(points)


def bench_backend(backend: Backend, args: argparse.Namespace, out_dir: Path) -> list[Result]:
    from relia.core.db import Database

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="relia-bench-ingest-") as tmp:
        data_dir = Path(tmp)
        backend.prepare(data_dir)
        db = None
        port = free_port()
        env = {
            **os.environ,
            "RELIA_DATA_DIR": str(data_dir),
            "RELIA_DATABASE_URL": backend.database_url,
            "RELIA_SECRET_KEY": "benchmark-secret-key-" + uuid.uuid4().hex,
            "RELIA_HOST": "127.0.0.1",
            "RELIA_PORT": str(port),
        }
        try:
            subprocess.run(
                [str(VENV_BIN / "relia"), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
            )
            db = Database(backend.database_url)
            start = real_start()
            traffic = Traffic(args.slos, seed=args.seed, now_minute=int(start.timestamp()) // 60)
            started = time.perf_counter()
            items, token = seed_catalog(db, start, traffic, pusher=True)
            minute = int(start.timestamp()) // 60
            rows = load_history(backend.database_url, items, traffic, minute - args.history_days * DAY, minute)
            print(
                f"  {args.slos} SLOs and {rows:,} rollup rows ({args.history_days} d) "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            names = [slo_name(index, args.slos) for index in range(args.slos)]
            server = Server(env, out_dir / f"server-ingest-{backend.name.lower()}.log", port)
            server.start()
            try:
                offset = 0
                for kind in KINDS:
                    if args.only and kind.name not in args.only:
                        continue
                    bodies = build_bodies(kind, data_dir)
                    check = json.loads('{"idempotencyKey":"check-' + kind.name + '",' + bodies[0].read_text())
                    status, answer = http(
                        "POST",
                        f"{server.base}/api/v1/slos/{names[0]}/events",
                        headers={"Authorization": f"Bearer {token}"},
                        body=check,
                        timeout=60,
                    )
                    assert status == 200, f"{kind.name}: the check push answered {status}: {answer[:300]!r}"
                    assert json.loads(answer)["accepted"] == kind.points, answer[:300]

                    def script(run: str, kind: Kind = kind, bodies: list[Path] = bodies) -> Path:
                        lua = (
                            PUSH_LUA.replace("{NAMES}", "{" + ", ".join(f'"{name}"' for name in names) + "}")
                            .replace("{PATHS}", "{" + ", ".join(f'"{path}"' for path in bodies) + "}")
                            .replace("@TOKEN@", token)
                            .replace("@THREADS@", str(args.threads))
                            .replace("@RUN@", run)
                        )
                        path = data_dir / f"{run}.lua"
                        path.write_text(lua + DONE_LUA)
                        return path

                    scenario = _Scenario(kind.name, f"/api/v1/slos/{names[0]}/events")
                    if args.warmup:
                        run_wrk(
                            server.base,
                            scenario,  # type: ignore[arg-type]
                            script(f"warm-{kind.name}"),
                            threads=args.threads,
                            connections=args.connections,
                            seconds=args.warmup,
                        )
                    _, offset = server.statuses_since(offset)
                    run = f"bench-{kind.name}"
                    cpu_before = server.cpu_seconds()
                    stats, raw = run_wrk(
                        server.base,
                        scenario,  # type: ignore[arg-type]
                        script(run),
                        threads=args.threads,
                        connections=args.connections,
                        seconds=args.duration,
                    )
                    cpu = server.cpu_seconds() - cpu_before
                    statuses, offset = server.statuses_since(offset)
                    batches, stored = accepted_points(db, run)
                    seconds = stats["duration_us"] / 1e6
                    errors = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout") if stats[k]}
                    # Points of the batches wrk saw answered 200 within its duration; the database must hold at
                    # least those (a few more land after wrk stops: the server finishes what was in flight).
                    points = (stats["requests"] - stats["status"]) * kind.points
                    result = Result(
                        backend=backend.name,
                        kind=kind,
                        points_per_second=points / seconds,
                        requests_per_second=stats["requests"] / seconds,
                        p50_ms=stats["p50_us"] / 1000,
                        p99_ms=stats["p99_us"] / 1000,
                        accepted=points,
                        requests=stats["requests"],
                        errors=errors,
                        statuses=statuses,
                        cpu_ms_per_1000=1000 * cpu / max(1, points / 1000),
                        raw=raw,
                    )
                    if stored < points or stored != batches * kind.points:
                        result.notes.append(
                            f"MISMATCH: {batches} batches, {stored:,} points stored for {points:,} answered"
                        )
                    elif batches != stats["requests"]:
                        result.notes.append(f"{batches} batches stored, {stats['requests']} answered within wrk's run")
                    results.append(result)
                    print(
                        f"  {kind.label:<34} {result.points_per_second:9,.0f} points/s"
                        f"  {result.requests_per_second:6.1f} req/s"
                        f"  p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms"
                        f"  CPU {result.cpu_ms_per_1000:5.1f} ms/1000 points  errors {errors or 0}  server {statuses}"
                        + (f"  ({'; '.join(result.notes)})" if result.notes else ""),
                        flush=True,
                    )
            finally:
                code = server.stop()
                if code not in (0, None):
                    print(f"  warning: relia serve exited with {code}", file=sys.stderr)
        finally:
            if db is not None:
                db.dispose()
            backend.cleanup()
    return results


@dataclass
class _Scenario:
    """What api_throughput.run_wrk reads of a scenario."""

    name: str
    path: str


def report(results: list[Result], args: argparse.Namespace, facts: dict[str, str], busy: float) -> str:
    rows = []
    for result in results:
        errors = sum(result.errors.values())
        rows.append(
            [
                result.backend,
                result.kind.label,
                f"{result.points_per_second:,.0f}",
                f"{result.requests_per_second:.1f}",
                f"{result.p50_ms:.0f}",
                f"{result.p99_ms:.0f}",
                f"{result.cpu_ms_per_1000:.1f}",
                f"{result.accepted:,}",
                f"{errors:,}" if errors else "0",
            ]
        )
    table = markdown_table(
        [
            "Database",
            "Batch",
            "Points/s",
            "Req/s",
            "p50 ms",
            "p99 ms",
            "server CPU ms per 1,000 points",
            "points accepted",
            "errors",
        ],
        rows,
    )
    goals = []
    by = {(r.backend, r.kind.name): r for r in results}
    for result in results:
        if result.backend == "SQLite":
            verdict = "met" if result.points_per_second >= GOAL_SQLITE else "NOT met"
            goals.append(
                f"- SQLite, {result.kind.label}: {result.points_per_second:,.0f} points/s "
                f"(goal >= {GOAL_SQLITE:,}): **{verdict}**"
            )
    for result in results:
        if result.backend == "PostgreSQL" and ("SQLite", result.kind.name) in by:
            sqlite = by[("SQLite", result.kind.name)]
            verdict = "met" if result.points_per_second > sqlite.points_per_second else "NOT met"
            goals.append(
                f"- PostgreSQL, {result.kind.label}: {result.points_per_second:,.0f} points/s, "
                f"{result.points_per_second / sqlite.points_per_second:.2f}x SQLite "
                f"(goal: more than SQLite): **{verdict}**"
            )
    command = " ".join([".venv/bin/python", "bench/slo_ingest.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### SLO ingest ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: wrk -t{args.threads} -c{args.connections} -d{args.duration}s after a {args.warmup} s "
            f"warm-up per batch kind, POSTing pre-built batches (a new idempotency key each) to "
            f"`relia serve` (one uvicorn process) on 127.0.0.1, rotating over {args.slos} SLOs with "
            f"{args.history_days} d of stored history. CPU busy before the run (other processes): {busy:.0%}.",
            "",
            table,
            "",
            *goals,
            "",
            facts_table(facts),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both (default)")
    parser.add_argument("--pg-url", default=os.environ.get("RELIA_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--slos", type=int, default=100)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per batch kind")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=[kind.name for kind in KINDS])
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "slo_ingest.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
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
    sigint_reaches_children()
    facts = machine_facts(postgres_version=postgres_version, wrk=True)
    busy = background_cpu_busy()
    if busy > 0.15:
        print(f"warning: the CPUs are {busy:.0%} busy before the run; figures will be low", file=sys.stderr)

    results: list[Result] = []
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        results += bench_backend(backend, args, out_dir)
    text = report(results, args, facts, busy)
    args.out.write_text(text)
    (out_dir / "slo_ingest.wrk.txt").write_text("\n".join(r.raw for r in results))
    print()
    print(text)
    print(f"(written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    for result in results:
        if result.errors or set(result.statuses) - {"200"}:
            print(
                f"warning: {result.backend} {result.kind.name}: {result.errors} server {result.statuses}",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
