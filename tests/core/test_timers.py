"""Durable timers fire when due, once, in order; a failing handler's work is rolled back and retried."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from relia.core import timeline, timers
from relia.core.models import TimelineEvent, Timer

fired: list[tuple[str, dict]] = []
_lock = threading.Lock()


@timers.timer_handler("test.record")
def _record(session, payload, now):
    with _lock:
        fired.append((now.isoformat(), payload))
    timeline.append(session, type="test.fired", at=now, summary=str(payload.get("n")))
    return None


@timers.timer_handler("test.every-minute")
def _every_minute(session, payload, now):
    with _lock:
        fired.append((now.isoformat(), payload))
    return now + timedelta(minutes=1) if payload.get("n", 0) < 100 else None


@timers.timer_handler("test.fails-then-works")
def _fails_once(session, payload, now):
    timeline.append(session, type="test.partial", at=now, summary="written before the failure")
    if not payload.get("ok"):
        raise ValueError("not yet")
    return None


@pytest.fixture(autouse=True)
def _clean():
    fired.clear()


def schedule(db, clock, kind, key, due_in, **payload):
    with db.transaction() as session:
        timers.schedule(session, kind=kind, key=key, due_at=clock.now() + due_in, payload=payload, now=clock.now())


def count(db, model, *where):
    with db.reader() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_fires_only_when_due_and_in_order(db, clock):
    schedule(db, clock, "test.record", "b", timedelta(minutes=2), n=2)
    schedule(db, clock, "test.record", "a", timedelta(minutes=1), n=1)
    assert timers.run_due(db, clock) == 0
    clock.advance(timedelta(minutes=2))
    assert timers.run_due(db, clock) == 2
    assert [payload["n"] for _, payload in fired] == [1, 2]
    assert count(db, Timer) == 0
    assert count(db, TimelineEvent, TimelineEvent.type == "test.fired") == 2


def test_scheduling_the_same_key_moves_the_timer(db, clock):
    schedule(db, clock, "test.record", "k", timedelta(minutes=1), n=1)
    schedule(db, clock, "test.record", "k", timedelta(minutes=5), n=2)
    clock.advance(timedelta(minutes=1))
    assert timers.run_due(db, clock) == 0
    clock.advance(timedelta(minutes=4))
    assert timers.run_due(db, clock) == 1
    assert [payload["n"] for _, payload in fired] == [2]


def test_cancel(db, clock):
    schedule(db, clock, "test.record", "k", timedelta(seconds=1))
    with db.transaction() as session:
        timers.cancel(session, kind="test.record", key="k")
    clock.advance(timedelta(minutes=1))
    assert timers.run_due(db, clock) == 0


def test_handler_can_reschedule(db, clock):
    schedule(db, clock, "test.every-minute", "k", timedelta(0), n=0)
    for _ in range(3):
        assert timers.run_due(db, clock) == 1
        clock.advance(timedelta(minutes=1))
    assert len(fired) == 3
    assert count(db, Timer) == 1


def test_failing_handler_rolls_back_its_work_and_retries_with_backoff(db, clock):
    schedule(db, clock, "test.fails-then-works", "k", timedelta(0))
    assert timers.run_due(db, clock) == 0
    assert count(db, TimelineEvent, TimelineEvent.type == "test.partial") == 0
    with db.reader() as session:
        timer = session.scalars(select(Timer)).one()
    assert timer.attempts == 1 and "not yet" in timer.last_error
    assert timer.due_at == clock.now() + timers.RETRY_BASE
    with db.transaction() as session:
        session.scalars(select(Timer)).one().payload = {"ok": True}
    clock.advance(timers.RETRY_BASE)
    assert timers.run_due(db, clock) == 1
    assert count(db, TimelineEvent, TimelineEvent.type == "test.partial") == 1
    assert count(db, Timer) == 0


def test_unknown_kind_is_kept_and_retried_not_lost(db, clock):
    schedule(db, clock, "test.nobody-handles-this", "k", timedelta(0))
    assert timers.run_due(db, clock) == 0
    with db.reader() as session:
        timer = session.scalars(select(Timer)).one()
    assert "no handler" in timer.last_error


def test_two_workers_fire_each_timer_once(db, clock):
    for index in range(40):
        schedule(db, clock, "test.record", f"t{index}", timedelta(0), n=index)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            timers.run_due(db, clock)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(payload["n"] for _, payload in fired) == list(range(40))
    assert count(db, TimelineEvent, TimelineEvent.type == "test.fired") == 40
