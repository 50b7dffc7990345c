"""Paging end to end: from an accepted Alertmanager message to the page handed to the channel, with the worker
running, and a 10,000-alert burst in which every alert group must be paged exactly once.

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this migrates
with `relia db upgrade` and seeds, through the service layer, --people teams of one person each, a service per
team, a default escalation policy per team that pages its person at once (one step, no repeat), a `webhook`
contact method per person pointing at a receiver in this process (its own path per person), and an
Alertmanager integration. Then it starts `relia serve` and `relia worker` as two processes, as `relia up` does,
with the default tick interval (RELIA_TICK_INTERVAL_SECONDS, 5 s): the API wakes the worker through the queue
when an alert arrives, the tick is only the fallback.

  latency  --groups single-alert messages, each opening a new alert group, round-robin over the services,
           spaced so no person passes the per-destination throttle (10 pages a minute by default). For each
           group: from the moment its 200 came back to the moment the receiver got the page that names it.
  burst    10,000 alerts as 100 messages of 100 alerts (each message its own alert group) sent at once from
           16 connections. The receiver counts the groups each page names (several groups to one person are
           bundled into one message); every group must be named exactly once, and the database must hold
           every alert.

Goals (from the issue): accept to first notification p99 under 5 s with the worker running; in the burst every
accepted alert stored and every group notified exactly once.

    .venv/bin/python bench/paging_latency.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/paging_latency.py --backends sqlite --groups 30

The markdown is printed and written to bench/results/paging_latency.md (server and worker logs next to it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from api_throughput import DEFAULT_PG_URL, Backend, PostgresBackend, Server, SqliteBackend

GOAL_P99_S = 5.0
BURST_MESSAGES = 100
BURST_ALERTS_PER_MESSAGE = 100
GROUP_REFERENCE = re.compile(r"group #(\d+)")


# ------------------------------------------------------------------------------------------------ receiver


class Receiver:
    """The edge of the world: an HTTP server on 127.0.0.1 taking the webhook pages, noting when each arrived
    and which alert groups (``group #N``) and alert names it names."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages: list[tuple[float, str, str]] = []  # arrival (monotonic), path, body text
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                with receiver.lock:
                    receiver.pages.append((time.monotonic(), self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> list[tuple[float, str, str]]:
        with self.lock:
            return list(self.pages)

    def clear(self) -> None:
        with self.lock:
            self.pages.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def page_text(body: str) -> str:
    """The title and message of an apprise JSON page (or the raw body)."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    return f"{document.get('title', '')}\n{document.get('message', '')}" if isinstance(document, dict) else body


# ------------------------------------------------------------------------------------------------- seeding


def seed(database_url: str, people: int, receiver_port: int) -> list[str]:
    """``people`` teams of one person, a service each, a default policy paging that person, the person's
    webhook contact method, and an Alertmanager integration per service. Returns the integrations' keys."""
    from datetime import UTC, datetime

    from relia.alerting import service as alerting
    from relia.alerting.schemas import IntegrationSpec
    from relia.catalog import service
    from relia.catalog.schemas import ServiceCreate, TeamCreate, UserCreate
    from relia.core.auth import Principal
    from relia.core.db import Database
    from relia.escalation import service as escalation
    from relia.escalation.schemas import EscalationPolicySpec

    operator = Principal.system("bench-operator")
    db = Database(database_url)
    now = datetime.now(UTC)
    keys: list[str] = []
    try:
        with db.transaction() as session:
            for index in range(people):
                person, team = f"person{index:02d}", f"team{index:02d}"
                service.create_user(
                    session,
                    actor=operator,
                    data=UserCreate.model_validate(
                        {
                            "username": person,
                            "name": f"Person {index}",
                            "email": f"{person}@bench.example",
                            "contactMethods": [
                                {
                                    "name": "hook",
                                    "kind": "webhook",
                                    "address": f"http://127.0.0.1:{receiver_port}/{person}",
                                }
                            ],
                        }
                    ),
                    now=now,
                )
                service.create_team(
                    session,
                    actor=operator,
                    data=TeamCreate.model_validate(
                        {"slug": team, "name": f"Team {index}", "members": [{"user": person}]}
                    ),
                    now=now,
                )
                service.create_service(
                    session,
                    actor=operator,
                    data=ServiceCreate.model_validate(
                        {"slug": f"svc{index:02d}", "name": f"Service {index}", "owner": team}
                    ),
                    now=now,
                )
                escalation.upsert_policy(
                    session,
                    actor=operator,
                    name=f"{team}-default",
                    spec=EscalationPolicySpec.model_validate(
                        {"team": team, "default": True, "steps": [{"notify": {"users": [person]}}]}
                    ),
                    now=now,
                )
                _, _, key = alerting.upsert_integration(
                    session,
                    actor=operator,
                    name=f"prometheus-{index:02d}",
                    spec=IntegrationSpec.model_validate({"service": f"svc{index:02d}"}),
                    now=now,
                )
                assert key is not None
                keys.append(key)
        return keys
    finally:
        db.dispose()


def stored(database_url: str, run: str) -> tuple[int, int, Counter[int]]:
    """(alerts of the run, their groups, notifications per group of the run)."""
    from sqlalchemy import func, select

    from relia.alerting.models import Alert
    from relia.core.db import Database
    from relia.notify.models import Notification

    db = Database(database_url)
    try:
        with db.reader() as session:
            rows = session.execute(select(Alert.group_id).where(Alert.dedup_key.like(f"{run}%"))).all()
            groups = {group for (group,) in rows}
            notified = Counter(
                dict(
                    session.execute(
                        select(Notification.group_id, func.count())
                        .where(Notification.group_id.in_(groups))
                        .group_by(Notification.group_id)
                    ).all()
                )
            )
            return len(rows), len(groups), notified
    finally:
        db.dispose()


# ------------------------------------------------------------------------------------------------ messages


def message(run: str, number: int, service: str, alerts: int) -> dict[str, object]:
    """An Alertmanager v4 message: its own group key (so its own alert group), ``alerts`` new alerts."""
    name = f"{run}-{number:05d}"
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "relia",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "service": service, "instance": f"i{item}"},
                "annotations": {"summary": f"{name} is firing"},
                "startsAt": "2026-11-26T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.bench:9090/graph",
                "fingerprint": f"{name}-{item:03d}",
            }
            for item in range(alerts)
        ],
    }


def post(url: str, body: dict[str, object]) -> tuple[int, float]:
    """POSTs until the intake takes it (a 503 is retried after its Retry-After, as Alertmanager does)."""
    while True:
        status, _ = http("POST", url, body=body, timeout=60)
        if status != 503:
            return status, time.monotonic()
        time.sleep(1)


# ------------------------------------------------------------------------------------------------- running


@dataclass
class Result:
    backend: str
    groups: int = 0
    latencies: list[float] = field(default_factory=list)
    missing_latency: int = 0
    burst_seconds: float = 0.0
    burst_alerts_sent: int = 0
    burst_alerts_stored: int = 0
    burst_groups: int = 0
    burst_groups_named: Counter[str] = field(default_factory=Counter)
    burst_pages: int = 0
    burst_notifications: Counter[int] = field(default_factory=Counter)
    burst_drain_seconds: float = 0.0


class Worker:
    """`relia worker` in its own process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_file = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "relia"), "worker"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def bench_backend(backend: Backend, args: argparse.Namespace, out_dir: Path) -> Result:
    result = Result(backend.name)
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="relia-bench-paging-") as tmp:
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
            "RELIA_BASE_URL": f"http://127.0.0.1:{port}",
        }
        server = worker = None
        try:
            subprocess.run(
                [str(VENV_BIN / "relia"), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
            )
            keys = seed(backend.database_url, args.people, receiver.port)
            urls = [f"http://127.0.0.1:{port}/api/v1/integrations/{key}/alertmanager" for key in keys]
            server = Server(env, out_dir / f"paging-server-{backend.name.lower()}.log", port)
            server.start()
            worker = Worker(env, out_dir / f"paging-worker-{backend.name.lower()}.log")

            # Latency: one new group at a time, spaced to stay under each person's throttle.
            run = f"lat{uuid.uuid4().hex[:6]}"
            accepted: dict[str, float] = {}
            for number in range(args.groups):
                name = f"{run}-{number:05d}"
                status, at = post(urls[number % args.people], message(run, number, f"svc{number % args.people:02d}", 1))
                if status != 200:
                    raise RuntimeError(f"intake answered {status}")
                accepted[name] = at
                time.sleep(args.spacing)
            wait_until(lambda: len(receiver.snapshot()) >= args.groups, timeout=60)
            first_seen: dict[str, float] = {}
            for arrival, _, body in receiver.snapshot():
                for name in re.findall(rf"{run}-\d{{5}}", page_text(body)):
                    first_seen.setdefault(name, arrival)
            result.groups = args.groups
            result.latencies = sorted(first_seen[name] - accepted[name] for name in accepted if name in first_seen)
            result.missing_latency = args.groups - len(result.latencies)
            print(f"  latency: {len(result.latencies)} of {args.groups} groups paged", flush=True)

            # Burst: 100 messages x 100 alerts at once; every group paged exactly once.
            time.sleep(65)  # let the throttle windows of the latency run pass
            receiver.clear()
            run = f"bst{uuid.uuid4().hex[:6]}"
            sends = [
                (
                    urls[number % args.people],
                    message(run, number, f"svc{number % args.people:02d}", BURST_ALERTS_PER_MESSAGE),
                )
                for number in range(BURST_MESSAGES)
            ]
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=16) as pool:
                statuses = list(pool.map(lambda send: post(*send)[0], sends))
            result.burst_seconds = time.monotonic() - started
            result.burst_alerts_sent = sum(BURST_ALERTS_PER_MESSAGE for status in statuses if status == 200)

            def named() -> Counter[str]:
                counter: Counter[str] = Counter()
                for _, _, body in receiver.snapshot():
                    counter.update(set(re.findall(rf"{run}-\d{{5}}", page_text(body))))
                return counter

            # Throttled pages wait for their window: allow a few minutes.
            wait_until(lambda: len(named()) >= BURST_MESSAGES, timeout=args.drain_timeout)
            result.burst_drain_seconds = time.monotonic() - started
            time.sleep(10)  # a duplicate would come now, if any
            result.burst_groups_named = named()
            result.burst_pages = len(receiver.snapshot())
            alerts, groups, notified = stored(backend.database_url, run)
            result.burst_alerts_stored, result.burst_groups, result.burst_notifications = alerts, groups, notified
            print(
                f"  burst: {alerts} alerts stored in {groups} groups; {len(result.burst_groups_named)} groups named "
                f"in {result.burst_pages} pages to {len({path for _, path, _ in receiver.snapshot()})} people",
                flush=True,
            )
        finally:
            if worker is not None:
                worker.stop()
            if server is not None:
                server.stop()
            receiver.stop()
            backend.cleanup()
    return result


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(share * (len(values) - 1))))
    return values[index]


def report(results: list[Result], args: argparse.Namespace, facts: dict[str, str], busy: float) -> str:
    rows = []
    verdicts = []
    for result in results:
        p50, p99 = percentile(result.latencies, 0.5), percentile(result.latencies, 0.99)
        rows.append(
            [
                result.backend,
                f"{len(result.latencies)} / {result.groups}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"{max(result.latencies):.2f}" if result.latencies else "-",
                f"{statistics.mean(result.latencies):.2f}" if result.latencies else "-",
            ]
        )
        met = not result.missing_latency and p99 < GOAL_P99_S
        verdicts.append(
            f"- {result.backend}: accept to page p99 {p99:.2f} s (goal < {GOAL_P99_S:.0f} s): "
            + ("**met**" if met else "**NOT met**")
        )
    burst_rows = []
    for result in results:
        once = sum(1 for count in result.burst_groups_named.values() if count == 1)
        more = sum(1 for count in result.burst_groups_named.values() if count > 1)
        notifications_once = sum(1 for count in result.burst_notifications.values() if count == 1)
        burst_rows.append(
            [
                result.backend,
                f"{result.burst_alerts_sent:,}",
                f"{result.burst_alerts_stored:,}",
                str(result.burst_groups),
                f"{once} / {BURST_MESSAGES}",
                str(more),
                f"{notifications_once} / {result.burst_groups}",
                str(result.burst_pages),
                f"{result.burst_seconds:.1f}",
                f"{result.burst_drain_seconds:.1f}",
            ]
        )
        met = (
            result.burst_alerts_stored == result.burst_alerts_sent == BURST_MESSAGES * BURST_ALERTS_PER_MESSAGE
            and once == BURST_MESSAGES
            and not more
            and notifications_once == result.burst_groups == BURST_MESSAGES
        )
        verdicts.append(
            f"- {result.backend}: burst of {BURST_MESSAGES * BURST_ALERTS_PER_MESSAGE:,} alerts, every alert "
            "stored and every group paged exactly once: " + ("**met**" if met else "**NOT met**")
        )
    return "\n".join(
        [
            f"### Paging latency and burst ({args.people} people, {args.groups} groups, one every "
            f"{args.spacing:g} s; CPUs {busy:.0%} busy before the run)",
            "",
            markdown_table(
                ["Database", "groups paged", "p50 s", "p99 s", "max s", "mean s"],
                rows,
            ),
            "",
            markdown_table(
                [
                    "Database",
                    "alerts accepted",
                    "alerts stored",
                    "groups",
                    "groups named once",
                    "named twice or more",
                    "one notification per group",
                    "pages (bundled)",
                    "send s",
                    "all paged after s",
                ],
                burst_rows,
            ),
            "",
            *verdicts,
            "",
            facts_table(facts),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both (default)")
    parser.add_argument("--pg-url", default=os.environ.get("RELIA_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--people", type=int, default=10, help="teams of one person, a service each")
    parser.add_argument("--groups", type=int, default=100, help="groups opened one at a time for the latency")
    parser.add_argument("--spacing", type=float, default=0.75, help="seconds between two of those groups")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds the burst's pages may take")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "paging_latency.md")
    args = parser.parse_args()
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
    facts = machine_facts(postgres_version=postgres_version)
    busy = background_cpu_busy()
    results = []
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        results.append(bench_backend(backend, args, out_dir))
    text = report(results, args, facts, busy)
    args.out.write_text(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
