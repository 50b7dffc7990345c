"""Release gate latency at a fixed request rate, and the policy evaluation of one worker tick.

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this migrates with
`relia db upgrade`, seeds through the service layer 5 teams (one of them `sre`), 200 services (each depending on
one or two earlier ones), 1,000 pushed SLOs (5 per service, rolling 1 d, 99 %) with two hours of per-minute
history (one SLO in ten exhausted, one in ten burning at 3 %), and 200 budget policies (150 service-scoped, 40
team-scoped, 9 organisation-wide, and the built-in default) mixing every condition (budget below a fraction, burn
rate over 1 h and over 30 min (a window the SLO evaluator does not keep, so read from the minutes), exhausted in
the last 28 days, page alert) and every action (freeze with dependents, required approval, warning, pager
handoff, webhook, action item). The SLO evaluator runs once.

  evaluation   the `policy.evaluate` tick step (its own transaction, as the worker runs it) on the simulated
               clock: the first tick, which starts every freeze, handoff, notification and action item, then
               --ticks steady ticks a minute apart (nothing changes: the common case)
  gate         `relia serve` (uvicorn, one process) on 127.0.0.1, and POST /api/v1/gates/check (read token)
               rotating over the 200 services and the change types (mostly feature, some security, p0-fix,
               rollback); every answer is recorded by the server. A third into the fixed-rate load, another
               process runs a worker tick (SLO evaluator, then policy evaluation), which moves the generations
               the server's gate cache is keyed by and, on SQLite, holds the one write lock while it
               writes. That load runs --tick-duration s (a minute: production ticks once a minute, so
               its p99 is a minute's); the quiet load --duration s. The server's CPU per
               request is read from /proc.
               fixed rate:  an open-loop generator in this process sends --rate requests/s for --duration s on
                            keep-alive connections (opened as needed) and measures each latency from the
                            moment the request was due, so a slow answer delays the measure of the ones queued
                            behind it (no coordinated omission). wrk's -R needs wrk2, which Debian lacks.
               wrk:         wrk -t2 -c{--connections} at a fixed concurrency, the most the server sustains and
                            its latency there.

Goals (from the issue): gate p99 under 20 ms at 200 requests/s on each database, with 200 services and 1,000 SLOs;
policy evaluation of 1,000 SLOs and 200 policies inside one tick under 1 s.

    .venv/bin/python bench/policy_gate.py                         # SQLite and PostgreSQL
    .venv/bin/python bench/policy_gate.py --backends sqlite --duration 10

The markdown is printed and written to bench/results/policy_gate.md (the server logs and wrk's output next to it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from api_throughput import DEFAULT_PG_URL, Backend, PostgresBackend, Server, SqliteBackend

SERVICES = 200
SLOS_PER_SERVICE = 5
TEAMS = ("team-a", "team-b", "team-c", "team-d")
HISTORY_MINUTES = 120
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOAL_P99_MS = 20.0
GOAL_RATE = 200.0
GOAL_TICK_SECONDS = 1.0
KEEPALIVE_SECONDS = 4.0
CHANGE_TYPES = ["feature"] * 7 + ["security", "p0-fix", "rollback"]

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

GATE_LUA = """
local next_id = 0
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
local counter = 0
local kinds = {{"feature", "feature", "feature", "feature", "feature", "feature", "feature", "security", "p0-fix",
  "rollback"}}
local headers = {{["Authorization"] = "Bearer {token}", ["Content-Type"] = "application/json"}}
request = function()
  counter = counter + 1
  local body = string.format('{{"service":"svc-%03d","version":"v%d-%d","changeType":"%s"}}',
    (counter * 7 + tid * 13) % {services}, tid, counter, kinds[counter % 10 + 1])
  return wrk.format("POST", "/api/v1/gates/check", headers, body)
end
"""


def service_slug(index: int) -> str:
    return f"svc-{index:03d}"


# ------------------------------------------------------------------------------------------------ seeding


def seed(database_url: str) -> dict[str, Any]:
    """The catalog, SLOs with history, policies; the SLO evaluator once. Returns the read token and counts."""
    from sqlalchemy import select

    from relia.catalog import identity
    from relia.catalog import service as catalog
    from relia.catalog.schemas import ServiceCreate, TeamCreate, TokenCreate, UserCreate
    from relia.core.auth import Principal
    from relia.core.clock import SimulatedClock
    from relia.core.db import Database
    from relia.policy import service as policy_service
    from relia.policy.schemas import BudgetPolicySpec
    from relia.slo import service as slo_service
    from relia.slo.evaluator import Evaluator
    from relia.slo.models import SLO
    from relia.slo.rules import epoch_minute
    from relia.slo.schemas import SLOCreate

    operator = Principal.system("bench-operator")
    db = Database(database_url)
    started = time.monotonic()
    try:
        with db.transaction() as session:
            catalog.create_user(
                session,
                actor=operator,
                data=UserCreate.model_validate({"username": "reader", "name": "Reader", "email": "reader@example.com"}),
                now=NOW,
            )
            for slug in (*TEAMS, "sre"):
                catalog.create_team(
                    session, actor=operator, data=TeamCreate.model_validate({"slug": slug, "name": slug}), now=NOW
                )
        for index in range(SERVICES):
            depends_on = sorted({service_slug(dep) for dep in (index - 1, index // 3) if 0 <= dep < index})
            with db.transaction() as session:
                catalog.create_service(
                    session,
                    actor=operator,
                    data=ServiceCreate.model_validate(
                        {
                            "slug": service_slug(index),
                            "name": f"Service {index}",
                            "owner": TEAMS[index % len(TEAMS)],
                            "dependsOn": depends_on,
                        }
                    ),
                    now=NOW,
                )
        with db.transaction() as session:
            for index in range(SERVICES * SLOS_PER_SERVICE):
                body = {
                    "name": f"slo-{index:04d}",
                    "service": service_slug(index // SLOS_PER_SERVICE),
                    "indicator": {"ratio": {}},
                    "window": {"rolling": "1d"},
                    "objectives": [{"target": 0.99}],
                }
                slo_service.create_slo(session, actor=operator, data=SLOCreate.model_validate(body), now=NOW)
        with db.reader() as session:
            objectives = {slo.name: slo.objectives[0].id for slo in session.scalars(select(SLO)).all()}
        first = epoch_minute(NOW) - HISTORY_MINUTES
        sums: dict[tuple[int, int], list[float]] = {}
        for name, objective_id in objectives.items():
            index = int(name.split("-")[1])
            for minute in range(first, first + HISTORY_MINUTES):
                late = minute >= first + HISTORY_MINUTES - 30
                if index % 10 == 0 and late:
                    bad = 5.0  # exhausted: 150 bad of 12,000 events against a budget of 120
                elif index % 10 == 1 and minute >= first + HISTORY_MINUTES - 60:
                    bad = 3.0  # burning at 3x, most of the budget gone
                else:
                    bad = 0.0 if index % 3 else 0.1
                sums[(objective_id, minute)] = [100.0 - bad, 100.0]
        with db.transaction() as session:
            slo_service.add_to_rollups(session, sums, now=NOW)
        with db.transaction() as session:
            specs = policy_specs()
            for spec in specs:
                policy_service.upsert_policy(
                    session, actor=operator, name=spec.pop("name"), spec=BudgetPolicySpec.model_validate(spec), now=NOW
                )
        with db.transaction() as session:
            _, _, token = identity.create_token(
                session, actor=operator, data=TokenCreate(name="bench", scope="read", user="reader"), now=NOW
            )
        report = Evaluator().tick(db, SimulatedClock(NOW))
        return {
            "token": token,
            "slos": len(objectives),
            "policies": len(specs) + 1,  # and the built-in default
            "seconds": time.monotonic() - started,
            "slo_tick_seconds": report.seconds,
        }
    finally:
        db.dispose()


def policy_specs() -> list[dict[str, Any]]:
    """150 service-scoped, 40 team-scoped and 9 organisation-wide policies over every condition and action."""
    conditions = [
        [{"budgetRemaining": {"below": 0.25}}],
        [{"burnRate": {"window": "1h", "above": 2}}],
        [{"burnRate": {"window": "30m", "above": 4}}],
        [{"budgetExhausted": {"within": "28d"}}],
        [{"pageAlert": {}}, {"budgetRemaining": {"below": 0.1}}],
    ]
    actions = [
        {"freeze": {"dependents": "direct"}},
        {"requireApproval": {}, "actionItem": {}},
        {"warn": {}},
        {"handPager": {"fromTeam": "sre"}, "notify": [{"webhook": "http://127.0.0.1:9/hook"}]},
        {"freeze": {"dependents": "transitive"}, "notify": [{"webhook": "http://127.0.0.1:9/hook"}]},
    ]
    specs = []
    for index in range(150):
        specs.append(
            {
                "name": f"svc-policy-{index:03d}",
                "scope": {"service": service_slug(index)},
                "conditions": conditions[index % 5],
                "actions": actions[index % 5],
            }
        )
    for index in range(40):
        specs.append(
            {
                "name": f"team-policy-{index:02d}",
                "scope": {"team": TEAMS[index % len(TEAMS)]},
                "conditions": conditions[(index + 1) % 5],
                "actions": {"warn": {}},
                "match": "all" if index % 2 else "any",
            }
        )
    for index in range(9):
        specs.append(
            {
                "name": f"org-policy-{index}",
                "scope": {"organisation": True},
                "conditions": conditions[index % 5],
                "actions": actions[(index + 2) % 5],
                "cooldown": "30m",
            }
        )
    return specs


# --------------------------------------------------------------------------------------------- evaluation


def bench_evaluation(database_url: str, ticks: int) -> dict[str, Any]:
    """The policy tick step as the worker runs it: first tick (every effect starts), then steady ticks."""
    from relia.core.clock import SimulatedClock
    from relia.core.db import Database
    from relia.policy import jobs

    db = Database(database_url)
    clock = SimulatedClock(NOW)
    try:
        started = time.perf_counter()
        first = jobs.evaluate(db, clock)
        first_seconds = time.perf_counter() - started
        steady = []
        for _ in range(ticks):
            clock.advance(timedelta(minutes=1))
            started = time.perf_counter()
            report = jobs.evaluate(db, clock)
            steady.append(time.perf_counter() - started)
            assert report is not None and not report.transitions, report
        return {
            "first": first_seconds,
            "first_report": first,
            "steady_median": statistics.median(steady),
            "steady_max": max(steady),
        }
    finally:
        db.dispose()


def worker_tick(database_url: str, minute: int) -> dict[str, float]:
    """One worker tick's two steps that change what the gate answers from, as the worker runs them: the SLO
    evaluator (budgets move) and the policy evaluation, ``minute`` minutes after the seeded history ends."""
    from relia.core.clock import SimulatedClock
    from relia.core.db import Database
    from relia.policy import jobs
    from relia.slo.evaluator import Evaluator

    db = Database(database_url)
    clock = SimulatedClock(NOW + timedelta(minutes=minute))
    try:
        started = time.perf_counter()
        Evaluator().tick(db, clock)
        slo_seconds = time.perf_counter() - started
        started = time.perf_counter()
        jobs.evaluate(db, clock)
        return {"slo": slo_seconds, "policy": time.perf_counter() - started}
    finally:
        db.dispose()


class TickDuringLoad:
    """A worker tick in another process, ``delay`` seconds into the measured load: the gate's caches see
    their generations move, as they do once a minute in production."""

    def __init__(self, database_url: str, minute: int, delay: float) -> None:
        self.command = [sys.executable, __file__, "--tick-only", database_url, "--tick-minute", str(minute)]
        self.delay = delay
        self.result: dict[str, float] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        time.sleep(self.delay)  # wall-clock: it lands inside a load that runs on the wall clock
        self.started = time.perf_counter()
        done = subprocess.run(self.command, capture_output=True, text=True, cwd=ROOT, timeout=300)
        found = re.search(r"^TICK_JSON (\{.*\})$", done.stdout, re.M)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"the worker tick failed: {done.stdout}\n{done.stderr}")
        self.result = json.loads(found.group(1))

    def join(self) -> dict[str, float]:
        self._thread.join()
        assert self.result is not None, "the worker tick did not run"
        return self.result


# ------------------------------------------------------------------------------------------- fixed rate


@dataclass
class RateResult:
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0
    connections: int = 0
    server_cpu_ms: float = 0.0  # the server's CPU per request
    seconds: int = 0  # how long the load ran
    tick: dict[str, float] = field(default_factory=dict)  # the worker tick during the load: seconds per step


def _body(index: int) -> bytes:
    return json.dumps(
        {
            "service": service_slug((index * 7) % SERVICES),
            "version": f"v{index}",
            "changeType": CHANGE_TYPES[index % len(CHANGE_TYPES)],
        }
    ).encode()


async def fixed_rate(port: int, token: str, rate: float, seconds: float, max_connections: int = 64) -> RateResult:
    """Send ``rate`` requests a second, each when it is due whatever the answers before it: open loop."""
    result = RateResult()
    # (reader, writer, when it was last used): a connection idle for longer than the server's keep-alive (5 s
    # for uvicorn) may be closed under us, so it is dropped first, as HTTP clients do.
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    opened = 0
    slots = asyncio.Semaphore(max_connections)

    async def one(index: int, due: float) -> None:
        nonlocal opened
        async with slots:
            while idle and time.perf_counter() - idle[-1][2] > KEEPALIVE_SECONDS:
                idle.pop()[1].close()
            if idle:
                reader, writer, _ = idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                opened += 1
            body = _body(index)
            head = (
                "POST /api/v1/gates/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            try:
                writer.write(head + body)
                await writer.drain()
                header = await reader.readuntil(b"\r\n\r\n")
                status = int(header.split(b" ", 2)[1])
                length = int(re.search(rb"(?i)content-length: *(\d+)", header).group(1))  # type: ignore[union-attr]
                payload = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError, AttributeError):
                result.errors += 1
                writer.close()
                return
            result.latencies_ms.append((time.perf_counter() - due) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == 200:
                decision = json.loads(payload)["decision"]
                result.decisions[decision] = result.decisions.get(decision, 0) + 1
            idle.append((reader, writer, time.perf_counter()))

    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    result.sent = total
    result.connections = opened
    for _, writer, _ in idle:
        writer.close()
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_wrk(base: str, script: Path, connections: int, seconds: int) -> tuple[dict[str, Any], str]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base + "/"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    return json.loads(found.group(1)), " ".join(command) + "\n" + done.stdout


# ------------------------------------------------------------------------------------------------ running


@dataclass
class BackendResult:
    name: str
    seeded: dict[str, Any]
    evaluation: dict[str, Any]
    rates: list[RateResult]  # the open-loop runs: without, then with a worker tick during it
    wrk: dict[str, Any] | None
    wrk_raw: str = ""


def bench_backend(backend: Backend, args: argparse.Namespace, out_dir: Path) -> BackendResult:
    with tempfile.TemporaryDirectory(prefix="relia-bench-") as tmp:
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
            seeded = seed(backend.database_url)
            print(
                f"  seeded {SERVICES} services, {seeded['slos']} SLOs, {seeded['policies']} policies in "
                f"{seeded['seconds']:.0f} s (SLO evaluator: {seeded['slo_tick_seconds']:.2f} s)",
                flush=True,
            )
            evaluation = bench_evaluation(backend.database_url, args.ticks)
            first = evaluation["first_report"]
            print(
                f"  policy tick: first {evaluation['first']:.3f} s ({len(first.transitions)} transitions, "
                f"{first.restrictions_started} restrictions, {first.handoffs_started} handoffs), steady median "
                f"{evaluation['steady_median']:.3f} s, max {evaluation['steady_max']:.3f} s",
                flush=True,
            )
            server = Server(env, out_dir / f"policy-gate-server-{backend.name.lower()}.log", port)
            server.start()
            try:
                token = seeded["token"]
                status, body = http(
                    "POST",
                    server.base + "/api/v1/gates/check",
                    headers={"Authorization": f"Bearer {token}"},
                    body={"service": "svc-000", "version": "check", "changeType": "feature"},
                )
                assert status == 200 and json.loads(body)["decision"] == "block", (status, body[:300])
                asyncio.run(fixed_rate(port, token, args.rate, args.warmup))  # warm-up, not measured
                runs = []
                for with_tick in (False, True):
                    tick = (
                        TickDuringLoad(backend.database_url, args.ticks + 1, args.tick_duration / 3)
                        if with_tick
                        else None
                    )
                    cpu_before = server.cpu_seconds()
                    if tick is not None:
                        tick.start()
                    seconds = args.tick_duration if with_tick else args.duration
                    rate = asyncio.run(fixed_rate(port, token, args.rate, seconds))
                    rate.seconds = seconds
                    used = server.cpu_seconds() - cpu_before
                    rate.server_cpu_ms = used * 1000 / max(1, len(rate.latencies_ms))
                    rate.tick = tick.join() if tick is not None else {}
                    runs.append(rate)
                    lat = rate.latencies_ms
                    during = (
                        f"; worker tick during it: SLO {rate.tick['slo']:.2f} s, policy {rate.tick['policy']:.2f} s"
                        if rate.tick
                        else ""
                    )
                    print(
                        f"  fixed rate {args.rate:.0f}/s: achieved {len(lat) / rate.elapsed:.0f}/s, p50 "
                        f"{percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, max {max(lat):.1f} ms, "
                        f"statuses {rate.statuses}, errors {rate.errors}, decisions {rate.decisions}, server CPU "
                        f"{rate.server_cpu_ms:.2f} ms/request{during}",
                        flush=True,
                    )
                wrk_stats, wrk_raw = None, ""
                if shutil.which("wrk") and args.connections:
                    script = data_dir / "gate.lua"
                    script.write_text(GATE_LUA.format(token=token, services=SERVICES) + DONE_LUA)
                    run_wrk(server.base, script, args.connections, args.warmup)
                    wrk_stats, wrk_raw = run_wrk(server.base, script, args.connections, args.duration)
                    wrk_stats["rps"] = wrk_stats["requests"] / (wrk_stats["duration_us"] / 1e6)
                    print(
                        f"  wrk -c{args.connections}: {wrk_stats['rps']:.0f}/s, p50 {wrk_stats['p50_us'] / 1000:.1f} "
                        f"ms, p99 {wrk_stats['p99_us'] / 1000:.1f} ms",
                        flush=True,
                    )
            finally:
                server.stop()
            return BackendResult(backend.name, seeded, evaluation, runs, wrk_stats, wrk_raw)
        finally:
            backend.cleanup()


def report(results: list[BackendResult], args: argparse.Namespace, facts: dict[str, str], busy: float) -> str:
    gate_rows, tick_rows, goals = [], [], []
    for result in results:
        for rate in result.rates:
            lat = rate.latencies_ms
            achieved = len(lat) / rate.elapsed if rate.elapsed else 0.0
            p99 = percentile(lat, 0.99)
            bad = rate.errors + sum(count for status, count in rate.statuses.items() if status != 200)
            tick = (
                f", a worker tick (SLO {rate.tick['slo']:.1f} s, policy {rate.tick['policy']:.1f} s) in another "
                f"process a third into it"
                if rate.tick
                else ", no worker tick"
            )
            gate_rows.append(
                [
                    result.name,
                    f"open loop, {args.rate:.0f}/s for {rate.seconds} s ({rate.connections} connections){tick}; "
                    f"server CPU {rate.server_cpu_ms:.2f} ms/request",
                    f"{achieved:.0f}",
                    f"{percentile(lat, 0.5):.1f}",
                    f"{percentile(lat, 0.9):.1f}",
                    f"{p99:.1f}",
                    f"{max(lat):.1f}",
                    str(bad),
                ]
            )
            met = p99 < GOAL_P99_MS and achieved >= GOAL_RATE * 0.98 and bad == 0
            when = "with a worker tick during the load" if rate.tick else "between worker ticks"
            goals.append(
                f"- {result.name}, {when}: gate p99 {p99:.1f} ms at {achieved:.0f} requests/s (goal < "
                f"{GOAL_P99_MS:.0f} ms at {GOAL_RATE:.0f}/s): **{'met' if met else 'NOT met'}**"
            )
        if result.wrk:
            stats = result.wrk
            errors = sum(stats[key] for key in ("connect", "read", "write", "status", "timeout"))
            gate_rows.append(
                [
                    result.name,
                    f"wrk -t2 -c{args.connections}, {args.duration} s (closed loop)",
                    f"{stats['rps']:.0f}",
                    f"{stats['p50_us'] / 1000:.1f}",
                    f"{stats['p90_us'] / 1000:.1f}",
                    f"{stats['p99_us'] / 1000:.1f}",
                    f"{stats['max_us'] / 1000:.1f}",
                    str(errors),
                ]
            )
        evaluation = result.evaluation
        first = evaluation["first_report"]
        tick_rows.append(
            [
                result.name,
                f"{evaluation['first']:.3f}",
                f"{len(first.transitions)} transitions, {first.restrictions_started} restrictions, "
                f"{first.handoffs_started} pager handoffs",
                f"{evaluation['steady_median']:.3f}",
                f"{evaluation['steady_max']:.3f}",
            ]
        )
        steady, first_tick = evaluation["steady_max"], evaluation["first"]
        goals.append(
            f"- {result.name}: steady policy tick {steady:.3f} s at worst (goal < {GOAL_TICK_SECONDS:.0f} s): "
            f"**{'met' if steady < GOAL_TICK_SECONDS else 'NOT met'}**"
        )
        goals.append(
            f"- {result.name}: the tick where every policy engages at once ({len(first.transitions)} transitions) "
            f"{first_tick:.3f} s (goal < {GOAL_TICK_SECONDS:.0f} s): "
            f"**{'met' if first_tick < GOAL_TICK_SECONDS else 'NOT met'}**"
        )
    command = " ".join([".venv/bin/python", "bench/policy_gate.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### Release gate and policy evaluation ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: {SERVICES} services, {SERVICES * SLOS_PER_SERVICE} SLOs, 200 policies (199 stored and the "
            f"built-in default). CPU busy before the run (other processes): {busy:.0%}.",
            "",
            "Gate: `POST /api/v1/gates/check` against `relia serve` (one uvicorn process), latency in ms.",
            "",
            markdown_table(["Database", "Load", "Req/s", "p50", "p90", "p99", "max", "errors"], gate_rows),
            "",
            "Policy evaluation: the `policy.evaluate` tick step, seconds.",
            "",
            markdown_table(
                ["Database", "First tick", "What the first tick started", "Steady tick (median)", "Steady (max)"],
                tick_rows,
            ),
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
    parser.add_argument("--rate", type=float, default=GOAL_RATE, help="requests a second for the open-loop run")
    parser.add_argument("--duration", type=int, default=20, help="seconds measured per load")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    parser.add_argument(
        "--tick-duration",
        type=int,
        default=60,
        help="seconds of the load with a worker tick in it (default: a minute, as the worker ticks once a minute)",
    )
    parser.add_argument("--connections", type=int, default=4, help="wrk's connections (0 skips wrk)")
    parser.add_argument("--ticks", type=int, default=10, help="steady policy ticks measured")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "policy_gate.md")
    parser.add_argument("--tick-only", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--tick-minute", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tick_only:
        print("TICK_JSON " + json.dumps(worker_tick(args.tick_only, args.tick_minute)), flush=True)
        return 0

    backends: list[Backend] = []
    postgres_version = None
    for name in [item.strip() for item in args.backends.split(",") if item.strip()]:
        if name == "sqlite":
            backends.append(SqliteBackend())
        elif name in ("postgres", "postgresql"):
            pg = PostgresBackend(args.pg_url)
            postgres_version = pg.server_version()
            backends.append(pg)
        else:
            parser.error(f"unknown backend {name!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sigint_reaches_children()
    facts = machine_facts(postgres_version=postgres_version, wrk=shutil.which("wrk") is not None)
    busy = background_cpu_busy()
    if busy > 0.15:
        print(f"warning: the CPUs are {busy:.0%} busy before the run; figures will be low", file=sys.stderr)
    results = []
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        results.append(bench_backend(backend, args, args.out.parent))
    text = report(results, args, facts, busy)
    args.out.write_text(text)
    (args.out.parent / "policy_gate.wrk.txt").write_text("\n".join(result.wrk_raw for result in results))
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
