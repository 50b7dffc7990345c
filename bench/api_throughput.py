"""API throughput: requests per second and latency percentiles of a list, a write and the /healthz ceiling.

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this
migrates with `relia db upgrade`, seeds 4 teams, 100 services and two users with tokens through the service
layer, starts `relia serve` (uvicorn, one process, as the product runs it) on a free port, and drives it with
wrk (a separate process) for a fixed duration and connection count after a warm-up:

  healthz      GET /healthz                              no authentication: the ceiling
  list         GET /api/v1/services?limit=100            read token, all 100 services in one page
  list1        GET /api/v1/services?limit=1              read token, the same list cut to one service:
                                                         what every authenticated request costs
  get          GET /api/v1/services/{slug}               read token, one service (rotating over the 100)
  patch        PATCH /api/v1/services/{slug}             write token, a new description every request,
                                                         rotating over the 100 services

Goal: `list` at >= 50 % of the `healthz` requests per second on each database.

    .venv/bin/python bench/api_throughput.py                 # both databases, -t2 -c16 -d10s
    .venv/bin/python bench/api_throughput.py --backends sqlite --duration 5

The markdown table is printed and written to bench/results/api_throughput.md (raw wrk output and the
server logs go next to it).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
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
    wait_for_status,
)

SERVICES = 100
TEAMS = ("team-a", "team-b", "team-c", "team-d")
DEFAULT_PG_URL = "postgresql://root@127.0.0.1:5432/test"
LIST_PATH = f"/api/v1/services?limit={SERVICES}"
GOAL_SHARE = 0.50
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""

GET_LUA = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
"""

# Each wrk thread has its own Lua state; setup() numbers them so threads rotate over different services.
ROTATE_LUA = """
local next_id = 0
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
local counter = 0
local headers = {{["Authorization"] = "Bearer {token}", ["Content-Type"] = "application/json"}}
local function next_slug()
  counter = counter + 1
  return string.format("svc-%03d", (counter * {threads} + tid) % {services})
end
"""

GET_ONE_LUA = (
    ROTATE_LUA
    + """
request = function()
  return wrk.format("GET", "/api/v1/services/" .. next_slug(), headers)
end
"""
)

PATCH_LUA = (
    ROTATE_LUA
    + """
request = function()
  local body = string.format('{{"description":"benchmark write %d-%d"}}', tid, counter + 1)
  return wrk.format("PATCH", "/api/v1/services/" .. next_slug(), headers, body)
end
"""
)


@dataclass
class Scenario:
    name: str
    label: str
    path: str
    lua: str
    token: str | None = None  # "read" or "write"


SCENARIOS = [
    Scenario("healthz", "GET /healthz (ceiling)", "/healthz", ""),
    Scenario("list", f"GET /api/v1/services?limit={SERVICES}", LIST_PATH, GET_LUA, "read"),
    Scenario("list1", "GET /api/v1/services?limit=1", "/api/v1/services?limit=1", GET_LUA, "read"),
    Scenario("get", "GET /api/v1/services/{slug}", "/", GET_ONE_LUA, "read"),
    Scenario("patch", "PATCH /api/v1/services/{slug}", "/", PATCH_LUA, "write"),
]


@dataclass
class Result:
    backend: str
    scenario: Scenario
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: dict[str, int]
    raw: str
    server_statuses: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_request: float = 0.0


# ------------------------------------------------------------------------------------------------ backends


class Backend:
    name: str
    database_url: str

    def prepare(self, data_dir: Path) -> None: ...

    def cleanup(self) -> None: ...


class SqliteBackend(Backend):
    """The default: a file in RELIA_DATA_DIR (WAL)."""

    name = "SQLite"

    def prepare(self, data_dir: Path) -> None:
        self.database_url = f"sqlite:///{data_dir / 'relia.db'}"


class PostgresBackend(Backend):
    name = "PostgreSQL"

    def __init__(self, admin_url: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        self.psycopg = psycopg
        self.admin_url = admin_url
        self.database = f"relia_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=self.database)
        self.database_url = url.render_as_string(hide_password=False)

    def server_version(self) -> str:
        with self.psycopg.connect(self.admin_url, autocommit=True) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def prepare(self, data_dir: Path) -> None:
        with self.psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def cleanup(self) -> None:
        with self.psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


# ------------------------------------------------------------------------------------------------- seeding


def seed(database_url: str) -> dict[str, str]:
    """Teams, 100 services with links and dependencies, a reader and a writer; returns their tokens.

    Goes through the same service functions the API uses (as tests/factories.py does)."""
    from datetime import UTC, datetime

    from relia.catalog import identity, service
    from relia.catalog.schemas import ServiceCreate, TeamCreate, TokenCreate, UserCreate
    from relia.core.auth import Principal
    from relia.core.db import Database

    operator = Principal.system("bench-operator")
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        with db.transaction() as session:
            for username in ("reader", "writer"):
                service.create_user(
                    session,
                    actor=operator,
                    data=UserCreate.model_validate(
                        {"username": username, "name": username.title(), "email": f"{username}@example.com"}
                    ),
                    now=now,
                )
            for slug in TEAMS:
                service.create_team(
                    session,
                    actor=operator,
                    data=TeamCreate.model_validate(
                        {
                            "slug": slug,
                            "name": slug.title(),
                            "members": [{"user": "writer", "role": "member"}],
                        }
                    ),
                    now=now,
                )
        for index in range(SERVICES):
            slug = f"svc-{index:03d}"
            depends_on = sorted({f"svc-{dep:03d}" for dep in (index - 1, index // 2) if 0 <= dep < index})
            with db.transaction() as session:
                service.create_service(
                    session,
                    actor=operator,
                    data=ServiceCreate.model_validate(
                        {
                            "slug": slug,
                            "name": f"Service {index}",
                            "owner": TEAMS[index % len(TEAMS)],
                            "tier": 1 + index % 4,
                            "description": f"Benchmark service number {index}, with a sentence of text.",
                            "links": [
                                {"title": "Dashboard", "url": f"https://grafana.example/d/{slug}"},
                                {
                                    "title": "Runbook",
                                    "url": f"https://wiki.example/runbooks/{slug}",
                                    "kind": "runbook",
                                },
                            ],
                            "dependsOn": depends_on,
                        }
                    ),
                    now=now,
                )
        tokens = {}
        for username, scope in (("reader", "read"), ("writer", "write")):
            with db.transaction() as session:
                _, _, tokens[scope] = identity.create_token(
                    session,
                    actor=operator,
                    data=TokenCreate(name=f"bench-{scope}", scope=scope, user=username),
                    now=now,
                )
        return tokens
    finally:
        db.dispose()


# -------------------------------------------------------------------------------------------------- server


class Server:
    """`relia serve` in its own process; its JSON request log goes to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        self.env = env
        self.log_path = log_path
        self.base = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "relia"), "serve"],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_status(self.base + "/healthz", timeout=60)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def statuses_since(self, offset: int) -> tuple[dict[str, int], int]:
        """Counts of route+status in the request log written after ``offset``; and the new offset."""
        counts: collections.Counter[str] = collections.Counter()
        with self.log_path.open("rb") as log:
            log.seek(offset)
            data = log.read()
        for line in data.splitlines():
            if b'"http.request"' not in line:
                if b'"level": "error"' in line or b'"level":"error"' in line:
                    counts["log errors"] += 1
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            counts[f"{entry.get('status')}"] += 1
        return dict(counts), offset + len(data)


# ------------------------------------------------------------------------------------------------- running


def check_endpoints(base: str, tokens: dict[str, str]) -> None:
    """Each scenario answers as expected before it is measured."""
    status, _ = http("GET", base + "/healthz")
    assert status == 200, f"/healthz answered {status}"
    status, body = http("GET", base + LIST_PATH, headers={"Authorization": f"Bearer {tokens['read']}"})
    assert status == 200, f"list answered {status}: {body[:300]!r}"
    page = json.loads(body)
    assert len(page["items"]) == SERVICES, f"list returned {len(page['items'])} services"
    status, body = http(
        "PATCH",
        base + "/api/v1/services/svc-000",
        headers={"Authorization": f"Bearer {tokens['write']}"},
        body={"description": "checked before the run"},
    )
    assert status == 200, f"PATCH answered {status}: {body[:300]!r}"
    assert json.loads(body)["description"] == "checked before the run"


def run_wrk(
    base: str, scenario: Scenario, script: Path, *, threads: int, connections: int, seconds: int
) -> tuple[dict[str, Any], str]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        base + scenario.path,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    return json.loads(found.group(1)), " ".join(command) + "\n" + done.stdout


def bench_backend(backend: Backend, args: argparse.Namespace, out_dir: Path) -> list[Result]:
    results: list[Result] = []
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
            started = time.monotonic()
            tokens = seed(backend.database_url)
            print(f"  seeded {SERVICES} services in {time.monotonic() - started:.1f} s", flush=True)
            slug = backend.name.lower()
            server = Server(env, out_dir / f"server-{slug}.log", port)
            server.start()
            try:
                check_endpoints(server.base, tokens)
                offset = 0
                for scenario in SCENARIOS:
                    if args.only and scenario.name not in args.only:
                        continue
                    lua = scenario.lua.format(
                        token=tokens.get(scenario.token or "", ""), threads=args.threads, services=SERVICES
                    )
                    script = data_dir / f"{scenario.name}.lua"
                    script.write_text(lua + DONE_LUA)
                    if args.warmup:
                        run_wrk(
                            server.base,
                            scenario,
                            script,
                            threads=args.threads,
                            connections=args.connections,
                            seconds=args.warmup,
                        )
                    _, offset = server.statuses_since(offset)
                    cpu_before = server.cpu_seconds()
                    stats, raw = run_wrk(
                        server.base,
                        scenario,
                        script,
                        threads=args.threads,
                        connections=args.connections,
                        seconds=args.duration,
                    )
                    cpu = server.cpu_seconds() - cpu_before
                    statuses, offset = server.statuses_since(offset)
                    errors = {k: stats[k] for k in ERROR_KINDS if stats[k]}
                    result = Result(
                        backend=backend.name,
                        scenario=scenario,
                        rps=stats["requests"] / (stats["duration_us"] / 1e6),
                        p50_ms=stats["p50_us"] / 1000,
                        p90_ms=stats["p90_us"] / 1000,
                        p99_ms=stats["p99_us"] / 1000,
                        max_ms=stats["max_us"] / 1000,
                        requests=stats["requests"],
                        errors=errors,
                        raw=raw,
                        server_statuses=statuses,
                        cpu_ms_per_request=1000 * cpu / max(1, stats["requests"]),
                    )
                    results.append(result)
                    print(
                        f"  {scenario.label:<40} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                        f"  p99 {result.p99_ms:7.2f} ms  CPU {result.cpu_ms_per_request:6.2f} ms/req"
                        f"  errors {errors or 0}  server {statuses}",
                        flush=True,
                    )
            finally:
                code = server.stop()
                if code not in (0, None):
                    print(f"  warning: relia serve exited with {code}", file=sys.stderr)
        finally:
            backend.cleanup()
    return results


# ------------------------------------------------------------------------------------------------- reports


def ceiling_share(results: list[Result], result: Result) -> float | None:
    for other in results:
        if other.backend == result.backend and other.scenario.name == "healthz":
            return result.rps / other.rps
    return None


def report(results: list[Result], args: argparse.Namespace, facts: dict[str, str], busy: float) -> str:
    rows = []
    for result in results:
        share = ceiling_share(results, result)
        errors = sum(result.errors.values())
        rows.append(
            [
                result.backend,
                result.scenario.label,
                f"{result.rps:,.0f}",
                f"{result.p50_ms:.1f}",
                f"{result.p90_ms:.1f}",
                f"{result.p99_ms:.1f}",
                f"{share:.0%}" if share is not None else "",
                f"{result.cpu_ms_per_request:.2f}",
                f"{errors:,}" if errors else "0",
            ]
        )
    table = markdown_table(
        [
            "Database",
            "Request",
            "Req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "of ceiling",
            "server CPU ms/req",
            "errors",
        ],
        rows,
    )
    goals = []
    for result in results:
        if result.scenario.name != "list":
            continue
        share = ceiling_share(results, result)
        if share is None:
            continue
        verdict = "met" if share >= GOAL_SHARE else "NOT met"
        goals.append(
            f"- {result.backend}: list at {share:.0%} of the /healthz ceiling "
            f"(goal >= {GOAL_SHARE:.0%}): **{verdict}**",
        )
    command = " ".join([".venv/bin/python", "bench/api_throughput.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### API throughput ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: wrk -t{args.threads} -c{args.connections} -d{args.duration}s after a "
            f"{args.warmup} s warm-up per request, against `relia serve` (one uvicorn process) on "
            f"127.0.0.1; {SERVICES} services. CPU busy before the run (other processes): {busy:.0%}.",
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
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both (default)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("RELIA_BENCH_PG_URL", DEFAULT_PG_URL),
        help="an existing PostgreSQL database to connect to; a temporary one is created and dropped",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per request kind")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", nargs="*", choices=[s.name for s in SCENARIOS], help="a subset of requests")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "api_throughput.md")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    wanted = [name.strip() for name in args.backends.split(",") if name.strip()]
    backends: list[Backend] = []
    postgres_version = None
    for name in wanted:
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
    (out_dir / "api_throughput.wrk.txt").write_text("\n".join(r.raw for r in results))
    print()
    print(text)
    print(f"(written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    failures = [r for r in results if r.errors or set(r.server_statuses) - {"200"}]
    for r in failures:
        what = f"{r.backend} {r.scenario.name}: {r.errors}, server statuses {r.server_statuses}"
        print(f"warning: {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
