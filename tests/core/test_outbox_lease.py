"""A batch of claimed outbox messages that outlasts its lease (slow endpoints) is not sent twice by a second
worker: the first renews the lease of what it has still to send, and drops what another worker claimed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from relia.core import outbox
from relia.core.models import OutboxMessage


def test_a_slow_batch_renews_its_lease_so_another_worker_sends_nothing_twice(db, clock):
    sent: list[str] = []
    second_worker: list[outbox.DeliveryReport] = []

    def slow_channel(destination: str, payload: dict) -> str:
        sent.append(payload["n"])
        clock.advance(timedelta(seconds=70))  # each send takes 70 s: five of them outlast the 2-minute lease
        # Meanwhile another worker looks for due messages, as it would at its own tick.
        second_worker.append(outbox.deliver_due(db, clock))
        return "ok"

    outbox.register_channel("test-slow", slow_channel)
    with db.transaction() as session:
        for n in range(5):
            outbox.enqueue(
                session,
                channel="test-slow",
                destination="x",
                payload={"n": str(n)},
                idempotency_key=f"k{n}",
                now=clock.now(),
            )
    report = outbox.deliver_due(db, clock)
    assert Counter(sent) == Counter({str(n): 1 for n in range(5)}), sent
    assert report.delivered == 5 and sum(r.delivered for r in second_worker) == 0
    with db.reader() as session:
        assert set(session.scalars(select(OutboxMessage.attempts))) == {1}


def test_what_another_worker_claimed_after_the_lease_ran_out_is_dropped(db, clock):
    sent: list[str] = []
    stalled = []

    def stalled_channel(destination: str, payload: dict) -> str:
        sent.append(payload["n"])
        if payload["n"] == "0" and not stalled:
            stalled.append(True)
            # The first send hangs past the whole lease: another worker claims and sends the rest meanwhile.
            clock.advance(timedelta(minutes=3))
            outbox.deliver_due(db, clock)
        return "ok"

    outbox.register_channel("test-stalled", stalled_channel)
    with db.transaction() as session:
        for n in range(3):
            outbox.enqueue(
                session,
                channel="test-stalled",
                destination="x",
                payload={"n": str(n)},
                idempotency_key=f"s{n}",
                now=clock.now(),
            )
    outbox.deliver_due(db, clock)
    # Message 0 was in flight when its lease ran out, so the other worker sent it again (at-least-once); the two
    # the first worker had not started are sent once, by the worker that holds them now.
    assert Counter(sent) == Counter({"0": 2, "1": 1, "2": 1})
