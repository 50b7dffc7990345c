"""Delivery through the apprise channel to edges started here: email to an SMTP sink, webhooks to a local HTTP
receiver. Retries with backoff, permanent failures, the per-destination throttle, bundles, test messages and the
pipeline watchdog, on the simulated clock."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from relia.catalog.models import User
from relia.core.models import OutboxMessage, TimelineEvent
from relia.notify import jobs as notify_jobs
from relia.notify import service as notify
from relia.notify.models import Notification
from relia.notify.settings import notify_settings
from tests.escalation.support import make_policy, set_contacts, tick
from tests.factories import OPERATOR

ALICE_FIRST = {"team": "payments", "default": True, "steps": [{"notify": {"users": ["alice"]}}]}


@pytest.fixture
def alice_policy(db, clock, paging_org):  # type: ignore[no-untyped-def]
    make_policy(db, clock, "payments-default", ALICE_FIRST)


def configure(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"RELIA_{name.upper()}", str(value))
    notify_settings.cache_clear()


def log_of(db, group_id: int):  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return notify.deliveries_for_group(session, group_id)


def test_email_reaches_the_smtp_server(db, clock, alice_policy, alerting, smtp_sink, monkeypatch):
    configure(
        monkeypatch, smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_security="none", smtp_from="pager@relia.test"
    )
    set_contacts(db, clock, "alice", [{"name": "work-email", "kind": "email", "address": "alice@example.com"}])
    group = alerting.open("checkout", title="Checkout error rate 12 %")
    tick(db, clock)
    smtp_sink.wait_for(1)
    sender, recipients, message = smtp_sink.messages[0]
    assert (sender, recipients) == ("pager@relia.test", ["alice@example.com"])
    assert message["Subject"] == "[Relia] Checkout error rate 12 %"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"group #{group}, escalation step 1" in body and f"/escalations/{group}" in body
    [entry] = log_of(db, group)
    assert (entry.status, entry.kind, entry.attempts[0].ok, entry.attempts[0].detail) == (
        "delivered",
        "email",
        True,
        "handed to mailto",
    )


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(db, clock, alice_policy, alerting, receiver):
    receiver.status["/u/alice"] = [500, 503]
    group = alerting.open("checkout")
    tick(db, clock)
    [entry] = log_of(db, group)
    assert entry.status == "retrying" and entry.scheduled_for == clock.now() + timedelta(seconds=10)
    assert "error=500" in entry.attempts[0].detail
    clock.advance(timedelta(seconds=9))
    tick(db, clock)
    assert len(receiver.on("/u/alice")) == 1, "not before the backoff"
    clock.advance(timedelta(seconds=1))
    tick(db, clock)
    [entry] = log_of(db, group)
    assert len(entry.attempts) == 2 and entry.scheduled_for == clock.now() + timedelta(seconds=20)
    clock.advance(timedelta(seconds=20))
    tick(db, clock)
    [entry] = log_of(db, group)
    assert entry.status == "delivered"
    assert [attempt.ok for attempt in entry.attempts] == [False, False, True]
    keys = {item.idempotency_key for item in receiver.on("/u/alice")}
    assert len(keys) == 1, "every retry carries the same Idempotency-Key"


def test_a_4xx_answer_is_not_retried_and_shows_in_the_health(db, clock, alice_policy, alerting, receiver):
    receiver.status["/u/alice"] = [404]
    group = alerting.open("checkout")
    tick(db, clock)
    clock.advance(timedelta(hours=1) - timedelta(seconds=1))
    tick(db, clock)
    [entry] = log_of(db, group)
    assert entry.status == "failed" and len(entry.attempts) == 1
    assert len(receiver.on("/u/alice")) == 1
    with db.reader() as session:
        assert notify.pipeline_health(session, now=clock.now()).failed_last_hour == 1


def test_the_throttle_holds_messages_back_and_what_waits_is_bundled(
    db, clock, alice_policy, alerting, receiver, monkeypatch
):
    configure(monkeypatch, notify_throttle_limit=2, notify_throttle_window_seconds=60)
    groups = []
    for _ in range(2):
        groups.append(alerting.open("checkout"))
        tick(db, clock)
        clock.advance(timedelta(seconds=1))
    assert len(receiver.on("/u/alice")) == 2
    for _ in range(3):
        groups.append(alerting.open("checkout"))
        tick(db, clock)
        clock.advance(timedelta(seconds=1))
    assert len(receiver.on("/u/alice")) == 2, "the third message waits for the window"
    held = log_of(db, groups[2])[0]
    assert held.status == "throttled" and held.bundled_with == 2
    clock.advance(timedelta(seconds=55))
    tick(db, clock)
    sent = receiver.on("/u/alice")
    assert len(sent) == 3
    assert sent[2].title == "[Relia] 3 alert groups need you (checkout)"
    for group in groups[2:]:
        assert f"group #{group}," in sent[2].message
    with db.reader() as session:
        per_message = session.execute(
            select(Notification.outbox_message_id, func.count()).group_by(Notification.outbox_message_id)
        ).all()
    assert sorted(count for _, count in per_message) == [1, 1, 3], "every page in exactly one message"


def test_a_burst_to_one_person_becomes_a_few_messages(db, clock, alice_policy, alerting, receiver, monkeypatch):
    configure(monkeypatch, notify_bundle_max=4)
    groups = [alerting.open("checkout") for _ in range(9)]
    tick(db, clock)
    sent = receiver.on("/u/alice")
    assert [item.title.split(" alert groups")[0] for item in sent] == [
        "[Relia] 4",
        "[Relia] 4",
        "[Relia] Alert group #" + str(groups[8]) + " on checkout",
    ]
    listed = "".join(item.message for item in sent)
    assert all(f"group #{group}," in listed for group in groups)


def test_acknowledging_takes_a_page_out_of_a_waiting_bundle(db, clock, alice_policy, alerting, receiver, monkeypatch):
    configure(monkeypatch, notify_throttle_limit=1)
    first = alerting.open("checkout")
    tick(db, clock)
    second, third = alerting.open("checkout"), alerting.open("checkout")
    tick(db, clock)
    alerting.acknowledge(second, "alice")
    clock.advance(timedelta(minutes=1))
    tick(db, clock)
    sent = receiver.on("/u/alice")
    assert len(sent) == 2
    assert f"group #{third}," in sent[1].message and f"group #{second}," not in sent[1].message
    assert [entry.status for entry in log_of(db, second)] == ["cancelled"]
    assert [entry.status for entry in log_of(db, first)] == ["delivered"]


def test_a_test_message_reaches_the_contact_method(db, clock, paging_org, receiver):
    with db.transaction() as session:
        key = notify.send_test(session, actor=OPERATOR, username="bob", contact_method="hook", now=clock.now())
    tick(db, clock)
    [received] = receiver.on("/u/bob")
    assert received.title == "[Relia] Test message to hook" and received.idempotency_key == key


def test_the_watchdog_pings_while_healthy_and_says_when_the_pipeline_stalls(
    db, clock, alice_policy, alerting, receiver, monkeypatch
):
    configure(
        monkeypatch,
        watchdog_url=receiver.url("/heartbeat"),
        watchdog_notify=receiver.url("/watchdog").replace("http://", "json://"),
        watchdog_stall_seconds=120,
    )
    tick(db, clock)
    _wait(lambda: receiver.on("/heartbeat"))
    alerting.open("checkout")
    clock.advance(timedelta(minutes=3))  # the worker was away: the first step is 3 minutes late
    pings = len(receiver.on("/heartbeat"))
    started: list[str] = []  # every heartbeat starts here: none while stalled, so the outside monitor notices
    ping = notify_jobs.pinger.ping
    monkeypatch.setattr(notify_jobs.pinger, "ping", lambda url, at: (started.append(url), ping(url, at)))
    assert notify_jobs.watchdog(db, clock) == "stalled"
    [alert] = receiver.on("/watchdog")
    assert alert.title == "[Relia] Paging pipeline stalled"
    assert "1 timers overdue since" in alert.message
    assert notify_jobs.watchdog(db, clock) == "stalled"
    assert len(receiver.on("/watchdog")) == 1, "said once, again only after the repeat interval"
    assert started == [], "no heartbeat while stalled"
    tick(db, clock)  # the worker is back: the step runs, the watchdog sees it recovered
    assert [item.title for item in receiver.on("/watchdog")][-1] == "[Relia] Paging pipeline recovered"
    assert started == [receiver.url("/heartbeat")]
    _wait(lambda: len(receiver.on("/heartbeat")) > pings)
    with db.reader() as session:
        events = session.scalars(
            select(TimelineEvent.type).where(TimelineEvent.type.like("paging.%")).order_by(TimelineEvent.id)
        ).all()
        health = notify.pipeline_health(session, now=clock.now())
    assert events == ["paging.pipeline.stalled", "paging.pipeline.recovered"]
    assert health.status == "ok" and health.last_alert_result == "json: sent"


def test_messages_of_a_deleted_user_stay_in_the_log(db, clock, alice_policy, alerting, receiver):
    group = alerting.open("checkout")
    tick(db, clock)
    with db.transaction() as session:
        from relia.catalog import service as catalog

        catalog.delete_user(session, actor=OPERATOR, username="alice", now=clock.now())
    [entry] = log_of(db, group)
    assert (entry.user, entry.status) == ("alice", "delivered")
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.username == "alice")) == 0
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def _wait(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
