"""Alert intake: Alertmanager webhooks per second and their latency, next to the /healthz ceiling, and a burst
of 10,000 alerts of which every accepted one must be stored.

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this migrates
with `relia db upgrade`, creates a team, a service and an Alertmanager integration (with its key) through the
service layer, starts `relia serve` (uvicorn, one process, as the product runs it) on a free port and drives
it with wrk (-t2 -c16 by default) for a fixed time after a warm-up:

  healthz      GET /healthz                                         the ceiling on the same server
  am-1         an Alertmanager message with 1 new alert             every request new fingerprints, in one of 50
  am-10        ... with 10 new alerts                               Alertmanager groups (so groups open and fill)
  am-100       ... with 100 new alerts
  am-1-repeat  the same 1-alert message again and again             the dedup path (a repeat counts an occurrence)

Alerts per second are those of the messages wrk saw answered 200 within its measured run; the database is then
checked to hold at least that many alerts of the run (the fingerprints carry the run's name).

The burst: 10,000 alerts as fast as the client can send them, first as 10,000 one-alert messages from 64
concurrent connections (more than the intake takes at once: it answers 503 with Retry-After, which the client
honours as Alertmanager does), then as 100 messages of 100 alerts from 16 connections. Every alert answered
2xx must be stored, exactly once.

Goal (from the issue): single-alert intake at >= 30 % of the ceiling's requests per second, with p99 under
100 ms at that rate; the burst loses nothing.

    .venv/bin/python bench/alert_intake.py                      # both databases, 3 s warm-up + 10 s per kind
    .venv/bin/python bench/alert_intake.py --backends sqlite --duration 5 --only healthz am-1

The markdown is printed and written to bench/results/alert_intake.md (raw wrk output and server logs next to it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
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
from api_throughput import DEFAULT_PG_URL, DONE_LUA, Backend, PostgresBackend, Server, SqliteBackend, run_wrk

GOAL_SHARE = 0.30
GOAL_P99_MS = 100.0
GROUPS = 50
BURST_ALERTS = 10_000


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    alerts: int  # per message; 0 for the ceiling
    repeat: bool = False


KINDS = [
    Kind("healthz", "GET /healthz (ceiling)", 0),
    Kind("am-1", "Alertmanager, 1 new alert", 1),
    Kind("am-10", "Alertmanager, 10 new alerts", 10),
    Kind("am-100", "Alertmanager, 100 new alerts", 100),
    Kind("am-1-repeat", "Alertmanager, 1 alert repeated", 1, repeat=True),
]

# Each wrk thread has its own Lua state: setup() numbers the threads, so fingerprints never collide.
POST_LUA = r"""
local next_id = 0
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
local template
local counter = 0
local headers = {["Content-Type"] = "application/json"}
init = function(args)
  local f = assert(io.open("@BODY@", "rb"))
  template = f:read("*a")
  f:close()
end
request = function()
  counter = counter + 1
  local n = tostring(tid) .. "-" .. tostring(counter)
  local body = template:gsub("@N@", n):gsub("@G@", tostring(counter % @GROUPS@))
  return wrk.format("POST", "@PATH@", headers, body)
end
"""
REPEAT_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("@BODY@", "rb"))
wrk.body = f:read("*a")
f:close()
"""


def message(run: str, alerts: int, *, number: str = "@N@", group: str = "@G@") -> str:
    """An Alertmanager webhook message whose fingerprints hold the run's name and ``number`` (wrk's Lua
    replaces @N@ and @G@ per request)."""
    items = [
        {
            "status": "firing",
            "labels": {
                "alertname": "BenchLatency",
                "instance": f"web-{number}-{index}",
                "job": "bench",
                "severity": "critical",
            },
            "annotations": {"summary": f"p99 latency above 500 ms on web-{number}-{index}"},
            "startsAt": "2026-11-26T08:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.bench:9090/graph?g0.expr=latency",
            "fingerprint": f"{run}-{number}-{index}",
        }
        for index in range(alerts)
    ]
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="BenchLatency",shard="{group}"}}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "relia",
            "groupLabels": {"alertname": "BenchLatency"},
            "commonLabels": {"alertname": "BenchLatency", "job": "bench"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.bench:9093",
            "notification_reason": "new alerts added",
            "routeLabels": {},
            "alerts": items,
        }
    )


def seed(database_url: str) -> str:
    """A team, a service and an Alertmanager integration; returns the integration's key."""
    from datetime import UTC, datetime

    from relia.alerting import service as alerting
    from relia.alerting.schemas import IntegrationSpec
    from relia.catalog import service
    from relia.catalog.schemas import ServiceCreate, TeamCreate
    from relia.core.auth import Principal
    from relia.core.db import Database

    operator = Principal.system("bench-operator")
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        with db.transaction() as session:
            service.create_team(
                session, actor=operator, data=TeamCreate.model_validate({"slug": "web", "name": "Web"}), now=now
            )
            service.create_service(
                session,
                actor=operator,
                data=ServiceCreate.model_validate({"slug": "storefront", "name": "Storefront", "owner": "web"}),
                now=now,
            )
            _, _, key = alerting.upsert_integration(
                session,
                actor=operator,
                name="prometheus",
                spec=IntegrationSpec.model_validate({"service": "storefront"}),
                now=now,
            )
        assert key is not None
        return key
    finally:
        db.dispose()


def stored_alerts(database_url: str, prefix: str) -> tuple[int, int]:
    """(alerts whose dedup key starts with ``prefix``, distinct such keys)."""
    from sqlalchemy import func, select

    from relia.alerting.models import Alert
    from relia.core.db import Database

    db = Database(database_url)
    try:
        with db.reader() as session:
            count, distinct = session.execute(
                select(func.count(), func.count(func.distinct(Alert.dedup_key))).where(
                    Alert.dedup_key.like(f"{prefix}%")
                )
            ).one()
        return int(count), int(distinct)
    finally:
        db.dispose()


@dataclass
class Result:
    backend: str
    kind: Kind
    rps: float
    alerts_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int]
    statuses: dict[str, int]
    cpu_ms_per_request: float
    raw: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Burst:
    backend: str
    label: str
    alerts: int
    seconds: float
    accepted: int
    stored: int
    distinct: int
    retried_503: int
    failed: int

    @property
    def lost(self) -> int:
        return self.accepted - self.distinct


def burst(base: str, key: str, database_url: str, *, run: str, per_message: int, connections: int) -> Burst:
    """Send ``BURST_ALERTS`` alerts in messages of ``per_message`` from ``connections`` threads; retry a 503
    after its Retry-After, as Alertmanager retries a 5xx."""
    import httpx2

    messages = BURST_ALERTS // per_message
    work = iter(range(messages))
    lock = threading.Lock()
    counts = {"accepted": 0, "retried": 0, "failed": 0}
    url = f"{base}/api/v1/integrations/{key}/alertmanager"

    def sender() -> None:
        with httpx2.Client(timeout=60) as client:
            while True:
                with lock:
                    number = next(work, None)
                if number is None:
                    return
                body = message(run, per_message, number=str(number), group=str(number % GROUPS))
                for _attempt in range(100):
                    response = client.post(url, content=body, headers={"Content-Type": "application/json"})
                    if response.status_code == 503:
                        with lock:
                            counts["retried"] += 1
                        time.sleep(float(response.headers.get("retry-after", "1")))
                        continue
                    with lock:
                        if response.status_code == 200:
                            counts["accepted"] += per_message
                        else:
                            counts["failed"] += 1
                    break

    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    stored, distinct = stored_alerts(database_url, f"{run}-")
    return Burst(
        backend="",
        label=f"{messages:,} messages of {per_message} alert{'s' if per_message > 1 else ''}, "
        f"{connections} connections",
        alerts=BURST_ALERTS,
        seconds=seconds,
        accepted=counts["accepted"],
        stored=stored,
        distinct=distinct,
        retried_503=counts["retried"],
        failed=counts["failed"],
    )


@dataclass
class _Scenario:
    """What api_throughput.run_wrk reads of a scenario."""

    name: str
    path: str


def bench_backend(backend: Backend, args: argparse.Namespace, out_dir: Path) -> tuple[list[Result], list[Burst]]:
    results: list[Result] = []
    bursts: list[Burst] = []
    with tempfile.TemporaryDirectory(prefix="relia-bench-alerts-") as tmp:
        data_dir = Path(tmp)
        backend.prepare(data_dir)
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
            key = seed(backend.database_url)
            path = f"/api/v1/integrations/{key}/alertmanager"
            server = Server(env, out_dir / f"server-alerts-{backend.name.lower()}.log", port)
            server.start()
            try:
                status, answer = http(
                    "POST", server.base + path, body=json.loads(message("check", 2, number="0", group="0"))
                )
                assert status == 200, f"the check message answered {status}: {answer[:300]!r}"
                assert json.loads(answer)["counts"] == {"created": 2}, answer[:300]
                offset = 0
                for kind in KINDS:
                    if args.only and kind.name not in args.only:
                        continue
                    run = f"bench{uuid.uuid4().hex[:6]}{kind.name.replace('-', '')}"
                    if kind.alerts == 0:
                        script_text, scenario = "", _Scenario(kind.name, "/healthz")
                    else:
                        body = data_dir / f"{run}.json"
                        if kind.repeat:
                            body.write_text(message(run, kind.alerts, number="0", group="0"))
                            script_text = REPEAT_LUA.replace("@BODY@", str(body))
                        else:
                            body.write_text(message(run, kind.alerts))
                            script_text = (
                                POST_LUA.replace("@BODY@", str(body))
                                .replace("@PATH@", path)
                                .replace("@GROUPS@", str(GROUPS))
                            )
                        scenario = _Scenario(kind.name, path)
                    script = data_dir / f"{run}.lua"
                    script.write_text(script_text + DONE_LUA)
                    if args.warmup:
                        run_wrk(
                            server.base,
                            scenario,  # type: ignore[arg-type]
                            script,
                            threads=args.threads,
                            connections=args.connections,
                            seconds=args.warmup,
                        )
                    _, offset = server.statuses_since(offset)
                    cpu_before = server.cpu_seconds()
                    stats, raw = run_wrk(
                        server.base,
                        scenario,  # type: ignore[arg-type]
                        script,
                        threads=args.threads,
                        connections=args.connections,
                        seconds=args.duration,
                    )
                    cpu = server.cpu_seconds() - cpu_before
                    statuses, offset = server.statuses_since(offset)
                    seconds = stats["duration_us"] / 1e6
                    errors = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout") if stats[k]}
                    answered = stats["requests"] - stats["status"]
                    result = Result(
                        backend=backend.name,
                        kind=kind,
                        rps=stats["requests"] / seconds,
                        alerts_per_second=answered * kind.alerts / seconds,
                        p50_ms=stats["p50_us"] / 1000,
                        p99_ms=stats["p99_us"] / 1000,
                        requests=stats["requests"],
                        errors=errors,
                        statuses=statuses,
                        cpu_ms_per_request=1000 * cpu / max(1, stats["requests"]),
                        raw=raw,
                    )
                    if kind.alerts and not kind.repeat:
                        stored, distinct = stored_alerts(backend.database_url, f"{run}-")
                        if distinct < answered * kind.alerts or stored != distinct:
                            result.notes.append(
                                f"MISMATCH: {stored:,} alerts ({distinct:,} keys) stored for "
                                f"{answered * kind.alerts:,} answered"
                            )
                    results.append(result)
                    print(
                        f"  {kind.label:<34} {result.rps:7.0f} req/s {result.alerts_per_second:8.0f} alerts/s"
                        f"  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms"
                        f"  CPU {result.cpu_ms_per_request:5.2f} ms/req  errors {errors or 0}  server {statuses}"
                        + (f"  ({'; '.join(result.notes)})" if result.notes else ""),
                        flush=True,
                    )
                if not args.no_burst:
                    for per_message, connections in ((1, 64), (100, 16)):
                        outcome = burst(
                            server.base,
                            key,
                            backend.database_url,
                            run=f"burst{uuid.uuid4().hex[:6]}x{per_message}",
                            per_message=per_message,
                            connections=connections,
                        )
                        outcome.backend = backend.name
                        bursts.append(outcome)
                        print(
                            f"  burst: {outcome.label}: {outcome.seconds:.1f} s, {outcome.accepted:,} accepted, "
                            f"{outcome.distinct:,} stored, {outcome.retried_503:,} retried after 503, "
                            f"{outcome.failed} failed",
                            flush=True,
                        )
            finally:
                code = server.stop()
                if code not in (0, None):
                    print(f"  warning: relia serve exited with {code}", file=sys.stderr)
        finally:
            backend.cleanup()
    return results, bursts


def ceiling(results: list[Result], result: Result) -> float | None:
    for other in results:
        if other.backend == result.backend and other.kind.name == "healthz":
            return result.rps / other.rps
    return None


def report(
    results: list[Result], bursts: list[Burst], args: argparse.Namespace, facts: dict[str, str], busy: float
) -> str:
    rows = []
    for result in results:
        share = ceiling(results, result)
        rows.append(
            [
                result.backend,
                result.kind.label,
                f"{result.rps:,.0f}",
                f"{result.alerts_per_second:,.0f}" if result.kind.alerts else "",
                f"{result.p50_ms:.1f}",
                f"{result.p99_ms:.1f}",
                f"{share:.0%}" if share is not None else "",
                f"{result.cpu_ms_per_request:.2f}",
                f"{sum(result.errors.values()):,}",
            ]
        )
    table = markdown_table(
        ["Database", "Request", "Req/s", "Alerts/s", "p50 ms", "p99 ms", "of ceiling", "server CPU ms/req", "errors"],
        rows,
    )
    burst_table = markdown_table(
        ["Database", "Burst of 10,000 alerts", "Seconds", "Accepted", "Stored", "Lost", "503 retried", "Failed"],
        [
            [
                item.backend,
                item.label,
                f"{item.seconds:.1f}",
                f"{item.accepted:,}",
                f"{item.distinct:,}",
                f"{item.lost:,}",
                f"{item.retried_503:,}",
                f"{item.failed:,}",
            ]
            for item in bursts
        ],
    )
    goals = []
    for result in results:
        if result.kind.name != "am-1":
            continue
        share = ceiling(results, result)
        if share is None:
            continue
        verdict = "met" if share >= GOAL_SHARE and result.p99_ms < GOAL_P99_MS else "NOT met"
        goals.append(
            f"- {result.backend}: single-alert intake at {share:.0%} of the /healthz ceiling with p99 "
            f"{result.p99_ms:.0f} ms (goal >= {GOAL_SHARE:.0%}, p99 < {GOAL_P99_MS:.0f} ms): **{verdict}**"
        )
    for item in bursts:
        verdict = "met" if item.lost == 0 and item.stored == item.distinct and item.failed == 0 else "NOT met"
        goals.append(f"- {item.backend}, burst of {item.label}: every accepted alert stored: **{verdict}**")
    command = " ".join([".venv/bin/python", "bench/alert_intake.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### Alert intake ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: wrk -t{args.threads} -c{args.connections} -d{args.duration}s after a {args.warmup} s "
            "warm-up per request kind, against `relia serve` (one uvicorn process) on 127.0.0.1; Alertmanager "
            f"webhook messages with new fingerprints every request, in {GROUPS} Alertmanager groups. "
            f"CPU busy before the run (other processes): {busy:.0%}.",
            "",
            table,
            "",
            burst_table,
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
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per request kind")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", nargs="*", choices=[kind.name for kind in KINDS])
    parser.add_argument("--no-burst", action="store_true", help="skip the 10,000-alert bursts")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "alert_intake.md")
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
    bursts: list[Burst] = []
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        found, burst_results = bench_backend(backend, args, out_dir)
        results += found
        bursts += burst_results
    text = report(results, bursts, args, facts, busy)
    args.out.write_text(text)
    (out_dir / "alert_intake.wrk.txt").write_text("\n".join(r.raw for r in results))
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
