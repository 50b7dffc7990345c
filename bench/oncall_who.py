"""Who is on call: the final rotation of 100 schedules over the next 4 weeks, and who is on call now in each.

For each database (SQLite in a temporary RELIA_DATA_DIR, and a throw-away PostgreSQL database) this migrates
with `relia db upgrade`, creates 40 people in 10 time zones, 10 teams and 100 schedules through the service
layer, in four shapes (see `schedule_spec`):

  follow-the-sun   three regional layers restricted to 08:00-16:00 weekdays on their own clocks, and a
                   weekly backstop underneath
  business hours   a weekly rotation for 09:00-18:00 weekdays (covered-slots) over a weekly 24/7 rotation
  daily            a daily weekday rotation (covered-slots) over a weekly weekend rotation
  twelve-hour      12-hour turns among four people, with an additive shadow layer

each with up to three overrides in the coming weeks, and one schedule in ten with a taken swap. Then it
measures, in this process, on a fresh read session each time:

  shifts, 4 weeks   service.shifts_many over every schedule for [now, now + 4 weeks): three queries, then
                    the layers, restrictions, swaps and overrides of each schedule resolved into shifts
  who is on call    service.on_call_many over every schedule at now, with each person's whole stretch
  HTTP              GET /api/v1/oncall/shifts?start=now&end=now+4w (the same question through the API, with a
                    read token: authentication, the query, the JSON of every shift) in an in-process client

"cold" clears the rules' caches (wall-clock conversions, coverage patterns) before each round, as a fresh
worker would start; "warm" keeps them. Goal (from the issue): under 1 s.

    .venv/bin/python bench/oncall_who.py                      # SQLite and PostgreSQL, 20 rounds each
    .venv/bin/python bench/oncall_who.py --backends sqlite --schedules 500 --rounds 5

The markdown is printed and written to bench/results/oncall_who.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, ROOT, VENV_BIN, background_cpu_busy, facts_table, machine_facts, markdown_table
from api_throughput import DEFAULT_PG_URL, Backend, PostgresBackend, SqliteBackend

GOAL_SECONDS = 1.0
ZONES = [
    "America/Los_Angeles",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Lagos",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
]
REGIONS = [("apac", "Asia/Singapore"), ("emea", "Europe/Berlin"), ("americas", "America/New_York")]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
SHAPES = ("follow-the-sun", "business-hours", "daily", "twelve-hour")


def _layer(name: str, people: list[str], turn: str, handoff: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "rotation": {"participants": people, "turn": turn, "handoff": handoff}, **extra}


def schedule_spec(index: int, team: str, people: list[str], now: datetime, rng: random.Random) -> dict[str, Any]:
    """One of four realistic shapes, by index, with overrides in the coming weeks."""
    shape = SHAPES[index % len(SHAPES)]
    office = {"days": WEEKDAYS, "start": "09:00", "end": "18:00"}
    if shape == "follow-the-sun":
        layers = [
            _layer(
                region,
                people[slot::3] or people,
                "1w",
                "2026-01-05T08:00",
                timeZone=zone,
                restrictions=[{"days": WEEKDAYS, "start": "08:00", "end": "16:00"}],
            )
            for slot, (region, zone) in enumerate(REGIONS)
        ] + [_layer("backstop", people, "1w", "2026-01-05T00:00")]
        zone = "UTC"
    elif shape == "business-hours":
        layers = [
            _layer("business-hours", people[:3], "1w", "2026-01-05T09:00", restrictions=[office]),
            _layer("around-the-clock", people, "1w", "2026-01-05T09:00"),
        ]
        layers[0]["rotation"]["advance"] = "covered-slots"
        zone = ZONES[index % len(ZONES)]
    elif shape == "daily":
        weekdays = {"days": WEEKDAYS, "start": "09:00", "end": "09:00"}
        layers = [
            _layer("weekdays", people, "1d", "2026-01-05T09:00", restrictions=[weekdays]),
            _layer("weekends", list(reversed(people)), "1w", "2026-01-03T09:00"),
        ]
        layers[0]["rotation"]["advance"] = "covered-slots"
        zone = ZONES[(index + 3) % len(ZONES)]
    else:
        layers = [
            _layer("shadow", people[-1:], "1w", "2026-01-05T09:00", mode="additive", restrictions=[office]),
            _layer("halves", people[:4], "12h", "2026-01-05T08:00"),
        ]
        zone = ZONES[(index + 5) % len(ZONES)]
    overrides = []
    for _ in range(rng.randint(0, 3)):
        start = now + timedelta(hours=rng.randint(1, 24 * 25))
        overrides.append(
            {
                "start": start.isoformat(),
                "end": (start + timedelta(hours=rng.choice([4, 12, 24, 72]))).isoformat(),
                "user": rng.choice(people),
                "reason": "cover",
            }
        )
    return {
        "name": f"{team}-{shape}-{index:03d}",
        "displayName": f"{team} {shape} {index}",
        "team": team,
        "timeZone": zone,
        "layers": layers,
        "overrides": overrides,
    }


def seed(db: Any, now: datetime, schedules: int, seed_value: int) -> tuple[int, str]:
    """People, teams, schedules and a few taken swaps, through the service layer; returns (swaps, a read token)."""
    from relia.catalog import identity
    from relia.catalog import service as catalog
    from relia.catalog.schemas import TeamCreate, TokenCreate, UserCreate
    from relia.core.auth import Principal
    from relia.oncall import service, swaps
    from relia.oncall.schemas import ScheduleCreate, SwapCreate, SwapTake

    rng = random.Random(seed_value)
    operator = Principal.system("bench")
    people = [f"person-{index:02d}" for index in range(40)]
    with db.transaction() as session:
        for index, username in enumerate(people):
            catalog.create_user(
                session,
                actor=operator,
                data=UserCreate.model_validate(
                    {
                        "username": username,
                        "name": f"Person {index}",
                        "email": f"{username}@bench.example",
                        "timeZone": ZONES[index % len(ZONES)],
                    }
                ),
                now=now,
            )
        catalog.create_user(
            session,
            actor=operator,
            data=UserCreate.model_validate({"username": "reader", "name": "Reader", "email": "r@bench.example"}),
            now=now,
        )
        teams = [f"team-{index}" for index in range(10)]
        for index, team in enumerate(teams):
            members = [{"user": username} for username in people[index * 4 : index * 4 + 4]]
            catalog.create_team(
                session,
                actor=operator,
                data=TeamCreate.model_validate({"slug": team, "name": team, "members": members}),
                now=now,
            )
        for index in range(schedules):
            team_index = index % len(teams)
            members = [*people[team_index * 4 : team_index * 4 + 4], people[(team_index * 4 + 17) % 40]]
            body = schedule_spec(index, teams[team_index], members, now, rng)
            service.create_schedule(session, actor=operator, data=ScheduleCreate.model_validate(body), now=now)
        _, _, token = identity.create_token(
            session, actor=operator, data=TokenCreate(name="bench", scope="read", user="reader"), now=now
        )
    taken = 0
    shifts = None
    with db.reader() as session:
        shifts = service.shifts_many(session, start=now + timedelta(days=1), end=now + timedelta(days=8))
    with db.transaction() as session:
        for name, found in list(shifts.items())[::10]:
            layer_shifts = [shift for shift in found if shift.source == "layer"]
            if not layer_shifts:
                continue
            shift = layer_shifts[0]
            others = [user for user in people if user != shift.username]
            swap = swaps.request_swap(
                session,
                actor=operator,
                schedule=name,
                data=SwapCreate.model_validate({"start": shift.start, "end": shift.end, "requester": shift.username}),
                now=now,
            )
            swaps.take_swap(
                session,
                actor=operator,
                schedule=name,
                swap_id=swap.id,
                data=SwapTake.model_validate({"taker": rng.choice(others)}),
                now=now,
            )
            taken += 1
    return taken, token


@dataclass
class Measured:
    question: str
    caches: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # this process's CPU (the database server's is not in it)
    answers: int = 0

    @property
    def first(self) -> float:
        return self.seconds[0]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def clear_caches() -> None:
    from relia.oncall import rules

    rules._to_utc.cache_clear()
    rules._coverage.cache_clear()
    rules.zone_info.cache_clear()


def measure(name: str, caches: str, rounds: int, run: Callable[[], int]) -> Measured:
    result = Measured(name, caches)
    for _ in range(rounds):
        if caches == "cold":
            clear_caches()
        started, cpu_started = time.perf_counter(), time.process_time()
        result.answers = run()
        result.seconds.append(time.perf_counter() - started)
        result.cpu_seconds.append(time.process_time() - cpu_started)
    return result


@dataclass
class BackendResult:
    name: str
    seed_seconds: float
    swaps: int
    measured: list[Measured]


def bench_backend(backend: Backend, args: argparse.Namespace) -> BackendResult:
    from starlette.testclient import TestClient

    from relia.api.app import create_app
    from relia.core.clock import SimulatedClock
    from relia.core.db import Database
    from relia.core.settings import Settings
    from relia.oncall import service

    with tempfile.TemporaryDirectory(prefix="relia-bench-oncall-") as tmp:
        data_dir = Path(tmp)
        backend.prepare(data_dir)
        db = None
        try:
            env = {**os.environ, "RELIA_DATA_DIR": str(data_dir), "RELIA_DATABASE_URL": backend.database_url}
            subprocess.run(
                [str(VENV_BIN / "relia"), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
            )
            db = Database(backend.database_url)
            now = datetime.now(UTC).replace(microsecond=0)
            started = time.perf_counter()
            swaps, token = seed(db, now, args.schedules, args.seed)
            seed_seconds = time.perf_counter() - started
            print(f"  {args.schedules} schedules, {swaps} taken swaps seeded in {seed_seconds:.1f} s", flush=True)
            end = now + timedelta(weeks=args.weeks)

            def shifts() -> int:
                with db.reader() as session:
                    found = service.shifts_many(session, start=now, end=end)
                assert len(found) == args.schedules
                return sum(len(items) for items in found.values())

            def who() -> int:
                with db.reader() as session:
                    found = service.on_call_many(session, at=now)
                assert len(found) == args.schedules
                return sum(len(items) for items in found.values())

            settings = Settings(
                data_dir=data_dir, database_url=backend.database_url, secret_key="bench-" + uuid.uuid4().hex
            )
            client = TestClient(create_app(settings, db=db, clock=SimulatedClock(now)))
            headers = {"Authorization": f"Bearer {token}"}
            params = {"start": now.isoformat(), "end": end.isoformat()}

            def http() -> int:
                response = client.get("/api/v1/oncall/shifts", params=params, headers=headers)
                assert response.status_code == 200, response.text
                return len(response.json())

            http()  # the app's first request pays for its start-up; not part of the question
            measured = [
                measure(f"shifts, {args.weeks} weeks", "cold", args.rounds, shifts),
                measure(f"shifts, {args.weeks} weeks", "warm", args.rounds, shifts),
                measure("who is on call now", "cold", args.rounds, who),
                measure("who is on call now", "warm", args.rounds, who),
                measure(f"HTTP GET /oncall/shifts, {args.weeks} weeks", "warm", args.rounds, http),
            ]
            for item in measured:
                print(f"  {item.question} ({item.caches}): median {item.median * 1000:.0f} ms", flush=True)
            client.close()
            return BackendResult(backend.name, seed_seconds, swaps, measured)
        finally:
            if db is not None:
                db.dispose()
            backend.cleanup()


def report(results: list[BackendResult], args: argparse.Namespace, facts: dict[str, str], busy: float) -> str:
    rows = [
        [
            result.name,
            item.question,
            item.caches,
            f"{item.answers:,}",
            f"{item.first * 1000:.0f}",
            f"{item.median * 1000:.0f}",
            f"{item.p90 * 1000:.0f}",
            f"{max(item.seconds) * 1000:.0f}",
            f"{statistics.median(item.cpu_seconds) * 1000:.0f}",
        ]
        for result in results
        for item in result.measured
    ]
    table = markdown_table(
        [
            "Database",
            f"Question ({args.schedules} schedules)",
            "Caches",
            "Answers",
            "First ms",
            "Median ms",
            "p90 ms",
            "Max ms",
            "CPU ms, median",
        ],
        rows,
    )
    goals = []
    for result in results:
        worst = max(max(item.seconds) for item in result.measured)
        verdict = "met" if worst < GOAL_SECONDS else "NOT met"
        goals.append(
            f"- {result.name}: the slowest of every round of every question took {worst * 1000:.0f} ms "
            f"(goal < {GOAL_SECONDS:.0f} s): **{verdict}**"
        )
    command = " ".join([".venv/bin/python", "bench/oncall_who.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### Who is on call ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: {args.schedules} schedules (four shapes, see the script), {args.rounds} rounds per "
            f'question, in one process; "Answers" counts shifts (or people on call); times are wall-clock, and '
            f"\"CPU\" is this process's CPU time (not the database server's). CPU busy before the run (other "
            f"processes): {busy:.0%}.",
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
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("RELIA_BENCH_PG_URL", DEFAULT_PG_URL),
        help="an existing PostgreSQL database to connect to; a temporary one is created and dropped",
    )
    parser.add_argument("--schedules", type=int, default=100)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "oncall_who.md")
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(postgres_version=postgres_version)
    busy = background_cpu_busy()
    if busy > 0.15:
        print(f"warning: the CPUs are {busy:.0%} busy before the run; figures will be high", file=sys.stderr)

    results = []
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        results.append(bench_backend(backend, args))

    text = report(results, args, facts, busy)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
