"""The outbox delivers each message after commit, at least once, with backoff, recording every attempt."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from relia.core import outbox
from relia.core.channels import deliver_webhook
from relia.core.models import OutboxDelivery, OutboxMessage
from relia.core.outbox import DeliveryFailed


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail_next: list[DeliveryFailed | Exception] = []
        self.lock = threading.Lock()

    def __call__(self, destination: str, payload: dict) -> str:
        with self.lock:
            self.calls.append((destination, payload))
            if self.fail_next:
                raise self.fail_next.pop(0)
        return "ok"


@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder()
    outbox.register_channel("test-recorder", recorder)
    return recorder


def enqueue(db, clock, key: str, **payload) -> None:
    with db.transaction() as session:
        outbox.enqueue(
            session,
            channel="test-recorder",
            destination="somewhere",
            payload=payload,
            idempotency_key=key,
            now=clock.now(),
        )


def message(db, key: str) -> OutboxMessage:
    with db.reader() as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()


def test_delivered_once_after_commit(db, clock, recorder):
    enqueue(db, clock, "k1", text="hello")
    report = outbox.deliver_due(db, clock)
    assert report.delivered == 1
    assert recorder.calls == [("somewhere", {"text": "hello"})]
    assert outbox.deliver_due(db, clock).delivered == 0
    row = message(db, "k1")
    assert row.status == "delivered" and row.delivered_at == clock.now()


def test_rolled_back_change_sends_nothing(db, clock, recorder):
    with pytest.raises(RuntimeError), db.transaction() as session:
        outbox.enqueue(
            session,
            channel="test-recorder",
            destination="x",
            payload={},
            idempotency_key="k",
            now=clock.now(),
        )
        raise RuntimeError("the state change failed")
    outbox.deliver_due(db, clock)
    assert recorder.calls == []


def test_idempotency_key_deduplicates(db, clock, recorder):
    enqueue(db, clock, "same", n=1)
    enqueue(db, clock, "same", n=2)
    outbox.deliver_due(db, clock)
    assert recorder.calls == [("somewhere", {"n": 1})]


def test_retries_with_backoff_and_records_attempts(db, clock, recorder):
    recorder.fail_next = [DeliveryFailed("HTTP 503"), DeliveryFailed("HTTP 503")]
    enqueue(db, clock, "retry")
    assert outbox.deliver_due(db, clock).failed == 1
    assert outbox.deliver_due(db, clock).delivered == 0, "not due again before the backoff"
    clock.advance(outbox.backoff(1))
    assert outbox.deliver_due(db, clock).failed == 1
    clock.advance(outbox.backoff(2) - timedelta(seconds=1))
    assert outbox.deliver_due(db, clock).delivered == 0
    clock.advance(timedelta(seconds=1))
    assert outbox.deliver_due(db, clock).delivered == 1
    with db.reader() as session:
        attempts = session.scalars(select(OutboxDelivery).order_by(OutboxDelivery.attempt)).all()
    assert [(a.attempt, a.ok, a.detail) for a in attempts] == [
        (1, False, "HTTP 503"),
        (2, False, "HTTP 503"),
        (3, True, "ok"),
    ]


def test_backoff_grows_and_is_capped():
    assert outbox.backoff(1) == timedelta(seconds=10)
    assert outbox.backoff(2) == timedelta(seconds=20)
    assert outbox.backoff(30) == timedelta(seconds=outbox.BACKOFF_CAP_SECONDS)


def test_permanent_failure_is_not_retried(db, clock, recorder):
    recorder.fail_next = [DeliveryFailed("HTTP 404", permanent=True)]
    enqueue(db, clock, "bad-address")
    assert outbox.deliver_due(db, clock).dead == 1
    clock.advance(timedelta(days=1))
    outbox.deliver_due(db, clock)
    assert len(recorder.calls) == 1
    assert message(db, "bad-address").status == "dead"


def test_gives_up_after_max_attempts(db, clock, recorder):
    with db.transaction() as session:
        outbox.enqueue(
            session,
            channel="test-recorder",
            destination="d",
            payload={},
            idempotency_key="flaky",
            now=clock.now(),
            max_attempts=3,
        )
    recorder.fail_next = [RuntimeError("boom")] * 5
    for _ in range(5):
        outbox.deliver_due(db, clock)
        clock.advance(timedelta(hours=2))
    assert len(recorder.calls) == 3
    row = message(db, "flaky")
    assert row.status == "dead" and "boom" in row.last_error


def test_a_crashed_delivery_is_retried_after_the_lease(db, clock, recorder):
    enqueue(db, clock, "crash")

    class WorkerDied(BaseException):
        pass

    def dying_channel(destination: str, payload: dict) -> str:
        raise WorkerDied

    outbox.register_channel("test-recorder", dying_channel)
    with pytest.raises(WorkerDied):
        outbox.deliver_due(db, clock)
    outbox.register_channel("test-recorder", recorder)
    assert outbox.deliver_due(db, clock).delivered == 0, "claimed: no one else sends it during the lease"
    clock.advance(outbox.CLAIM_LEASE)
    assert outbox.deliver_due(db, clock).delivered == 1
    assert recorder.calls == [("somewhere", {})]


def test_two_workers_never_deliver_the_same_message_twice(db, clock, recorder):
    for index in range(60):
        enqueue(db, clock, f"m{index}", index=index)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                outbox.deliver_due(db, clock, limit=7)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    delivered = sorted(payload["index"] for _, payload in recorder.calls)
    assert delivered == list(range(60))
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(OutboxDelivery)) == 60


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict, dict]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((dict(self.headers), json.loads(body)))
        self.send_response(_Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    _Receiver.status = 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_channel_posts_json_with_idempotency_key(receiver):
    assert deliver_webhook(receiver, {"idempotencyKey": "abc", "event": "x"}) == "HTTP 200"
    headers, body = _Receiver.received[0]
    assert body == {"idempotencyKey": "abc", "event": "x"}
    assert headers["Idempotency-Key"] == "abc"


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (429, False), (404, True)])
def test_webhook_channel_classifies_failures(receiver, status, permanent):
    _Receiver.status = status
    with pytest.raises(DeliveryFailed) as failure:
        deliver_webhook(receiver, {})
    assert failure.value.permanent is permanent


def test_webhook_channel_unreachable_is_retryable():
    with pytest.raises(DeliveryFailed) as failure:
        deliver_webhook("http://127.0.0.1:9/nothing-listens", {})
    assert failure.value.permanent is False
