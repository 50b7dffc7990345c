"""Durability of the paging pipeline, on SQLite and PostgreSQL, with real worker processes.

The worker is the real thing: ``python -m relia worker`` (huey consumer, engine loop, every registered tick step)
against the test database. Its clock is simulated: ``RELIA_TEST_CLOCK_FILE`` makes it read the time from a file
this test rewrites (``relia.core.clock.FileClock``, test-only), so escalation waits of minutes pass in
milliseconds while the process, its transactions and its HTTP deliveries are real. The pages go to a local HTTP
receiver through the apprise channel.

What is proved:

- SIGKILL at any moment (while a delivery is in flight, and at random points of many ticks) and a restart lose no
  page: every step of every group runs exactly once and every notification is delivered.
- Pages repeat only as the documented at-least-once allows: a message whose sending was interrupted after it
  left but before its result was recorded is sent again (with the same Idempotency-Key) when its two-minute
  lease runs out. At most one such message per kill, since a worker delivers one message at a time.
- Two workers running at once (PostgreSQL: processes, and threads on both databases) never double-page: each
  (group, step, repeat) runs once and each message reaches the receiver once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from relia.core import engine
from relia.core.clock import SimulatedClock
from relia.core.models import OutboxDelivery, OutboxMessage, Timer, WorkerHeartbeat
from relia.escalation.models import EscalationStep
from relia.notify.models import Notification
from relia.notify.settings import notify_settings
from tests.escalation.support import make_policy

pytestmark = pytest.mark.slow

POLICY = {
    "team": "payments",
    "default": True,
    "repeat": 1,
    "steps": [{"notify": {"users": ["alice"]}}, {"wait": "5m"}, {"notify": {"users": ["bob"]}}, {"wait": "5m"}],
}
# (step index, repeat) of every step each group must run exactly once, and the users each one pages.
EXPECTED_STEPS = {(0, 0): "alice", (2, 0): "bob", (0, 1): "alice", (2, 1): "bob"}
END = timedelta(minutes=25)
# How far the clock moves at a time: past the outbox lease (2 minutes), so what a killed worker had claimed is
# claimable again at the next move.
STEP = timedelta(minutes=2, seconds=30)


class ClockFile:
    """The simulated time a worker process reads (FileClock), moved forward by the test."""

    def __init__(self, path: Path, start: datetime) -> None:
        self.path = path
        self.set(start)

    def set(self, instant: datetime) -> None:
        self.now = instant
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(instant.isoformat())
        os.replace(scratch, self.path)  # atomic: the worker never reads half a timestamp

    def advance(self, delta: timedelta) -> datetime:
        self.set(self.now + delta)
        return self.now


class Worker:
    """``python -m relia worker`` in its own process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts}\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "relia", "worker"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def worker_env(tmp_path: Path, database_url: str, clock_file: Path, name: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELIA_")}
    env.update(
        RELIA_DATABASE_URL=database_url,
        RELIA_DATA_DIR=str(tmp_path / f"data-{name}"),
        RELIA_SECRET_KEY="durability-test-secret",
        RELIA_TICK_INTERVAL_SECONDS="0.05",
        RELIA_LOG_LEVEL="warning",
        RELIA_TEST_CLOCK_FILE=str(clock_file),
        # One message per page and no throttle: every page is then its own message, the most kill points.
        RELIA_NOTIFY_BUNDLE_MAX="1",
        RELIA_NOTIFY_THROTTLE_LIMIT="10000",
    )
    return env


def settle(db, now: datetime, workers: list[Worker], *, in_flight: bool = False, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until nothing is due at ``now``: no timer, no deliverable message; with ``in_flight``, also no
    message claimed and still being sent. Without kills the simulated clock must not leap past a claim's
    two-minute lease while a sub-second delivery is still under way, which no real clock could do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.process is not None and worker.process.poll() is None, f"worker exited: {worker.log}"
        with db.reader() as session:
            timers = session.scalar(select(func.count()).select_from(Timer).where(Timer.due_at <= now))
            waiting = OutboxMessage.next_attempt_at <= now
            if in_flight:
                waiting = waiting | (OutboxMessage.attempts > 0)
            messages = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending", waiting)
            )
        if not timers and not messages:
            return
        time.sleep(0.05)
    raise AssertionError(f"still due after {timeout} s: {timers} timers, {messages} messages (log: {workers[0].log})")


def open_groups(alerting, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    return [alerting.open("checkout") for _ in range(count)]


def check_exactly_once(db, groups: list[int]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every group ran each expected step once and paged its user once per step; everything was delivered."""
    with db.reader() as session:
        ran = Counter(
            (row.group_id, row.step_index, row.repeat, row.round)
            for row in session.scalars(select(EscalationStep)).all()
        )
        pages = Counter(
            (row.group_id, row.step_index, row.repeat, row.username)
            for row in session.scalars(select(Notification)).all()
        )
        statuses = Counter(session.scalars(select(OutboxMessage.status)).all())
        paged_in = set(session.scalars(select(Notification.outbox_message_id)).all())
        left = session.scalar(select(func.count()).select_from(Timer))
        messages = {
            row.idempotency_key: (row.attempts, row.status) for row in session.scalars(select(OutboxMessage)).all()
        }
        recorded = Counter(
            session.scalars(
                select(OutboxMessage.idempotency_key).join(
                    OutboxDelivery, OutboxDelivery.message_id == OutboxMessage.id
                )
            ).all()
        )
    expected_runs = {(g, step, repeat, 0): 1 for g in groups for (step, repeat) in EXPECTED_STEPS}
    expected_pages = {(g, step, repeat, user): 1 for g in groups for (step, repeat), user in EXPECTED_STEPS.items()}
    assert dict(ran) == expected_runs, "each (group, step, repeat) ran exactly once"
    assert dict(pages) == expected_pages, "each step paged its user exactly once"
    assert set(statuses) == {"delivered"} and sum(statuses.values()) == len(paged_in), statuses
    assert left == 0
    return {"messages": messages, "recorded": recorded}


@pytest.fixture
def policy(db, clock, paging_org):  # type: ignore[no-untyped-def]
    make_policy(db, clock, "payments-default", POLICY)


def test_a_killed_worker_loses_no_page_and_repeats_only_what_was_in_flight(
    db, database_url, clock, policy, alerting, receiver, tmp_path
):
    rng = random.Random(20261126)
    clock_file = ClockFile(tmp_path / "clock.txt", clock.now())
    groups = open_groups(alerting, 30)
    worker = Worker(worker_env(tmp_path, database_url, clock_file.path, "a"), tmp_path / "worker.log")
    kills = 0
    try:
        # 1. Killed with a delivery in flight: the receiver holds alice's first request until the worker is dead.
        held = receiver.hold("/u/alice")
        worker.start()
        assert receiver.arrived.wait(60), f"no delivery started (log: {worker.log})"
        first_key = receiver.received[0].idempotency_key
        worker.kill()
        kills += 1
        held.set()
        receiver.held.clear()
        # 2. Killed at random moments while the escalation runs its steps: each run of the worker sees the clock
        #    move on a few times, then dies while it works on the new time or just after.
        while clock_file.now < clock.now() + END:
            worker.start()
            for _ in range(rng.randint(1, 3)):
                settle(db, clock_file.now, [worker])
                clock_file.advance(STEP)
            time.sleep(rng.uniform(0.0, 0.6))
            worker.kill()
            kills += 1
        # 3. Left alone to finish: leases of messages claimed by a killed worker run out, nothing is left.
        worker.start()
        clock_file.advance(timedelta(hours=1))
        settle(db, clock_file.now, [worker])
    finally:
        worker.stop()
    found = check_exactly_once(db, groups)
    received = Counter(receiver.keys())
    assert set(received) == set(found["messages"]), "every message reached the receiver"
    repeated = {key: count for key, count in received.items() if count > 1}
    # Sent again with the same key; a later kill may cut its resend short too (each repeat is checked below
    # against the attempts recorded as cut short).
    assert received[first_key] >= 2, "the message in flight at the first kill was sent again, with the same key"
    for key, count in repeated.items():
        attempts, _ = found["messages"][key]
        unrecorded = attempts - found["recorded"][key]
        assert count - 1 <= unrecorded, f"{key}: sent {count} times, only {unrecorded} sends were cut short"
    assert sum(count - 1 for count in repeated.values()) <= kills, "at most one repeat per kill"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_worker_processes_never_double_page(db, database_url, clock, policy, alerting, receiver, tmp_path):
    clock_file = ClockFile(tmp_path / "clock.txt", clock.now())
    groups = open_groups(alerting, 60)
    workers = [
        Worker(worker_env(tmp_path, database_url, clock_file.path, name), tmp_path / f"worker-{name}.log")
        for name in ("a", "b")
    ]
    try:
        for worker in workers:
            worker.start()
        while clock_file.now <= clock.now() + END:
            settle(db, clock_file.now, workers, in_flight=True)
            clock_file.advance(timedelta(minutes=1))
    finally:
        for worker in workers:
            worker.stop()
    check_exactly_once(db, groups)
    received = Counter(receiver.keys())
    assert max(received.values()) == 1, "no message reached the receiver twice"
    assert len(received) == len(groups) * len(EXPECTED_STEPS)
    with db.reader() as session:
        ticked = session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.last_tick_at.is_not(None))).all()
    assert len(ticked) == 2, "both workers ticked"


def test_concurrent_ticks_never_double_page(db, clock, policy, alerting, receiver, monkeypatch):
    """Four threads tick the same database as fast as they can while the simulated clock moves: on PostgreSQL they
    really run at once (row locks, SKIP LOCKED), on SQLite their writes take turns."""
    monkeypatch.setenv("RELIA_NOTIFY_BUNDLE_MAX", "1")
    notify_settings.cache_clear()
    groups = open_groups(alerting, 40)
    shared = SimulatedClock(clock.now())
    stop = threading.Event()
    errors: list[BaseException] = []

    def ticking() -> None:
        while not stop.is_set():
            try:
                report = engine.run_tick(db, shared)
                if report.errors:
                    raise AssertionError(report.errors)
            except BaseException as exc:  # collected: a thread's failure must fail the test
                errors.append(exc)
                return

    threads = [threading.Thread(target=ticking, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        while shared.now() <= clock.now() + END:
            settle(db, shared.now(), [], in_flight=True, timeout=120)
            shared.advance(timedelta(minutes=1))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    check_exactly_once(db, groups)
    assert max(Counter(receiver.keys()).values()) == 1
