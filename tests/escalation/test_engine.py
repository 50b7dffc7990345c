"""The escalation state machine on the simulated clock: steps and waits, repeats, acknowledgement and its
timeout, snooze, resolve, reopen, snapshots, personal rules, idempotent steps, and how a service finds its
policy (its own, its team's default, a pager handoff, the fallback)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from relia.core import timers
from relia.core.models import OutboxMessage, TimelineEvent, Timer
from relia.escalation import service
from relia.escalation.models import Escalation, EscalationStep
from relia.notify import service as notify
from relia.notify.models import Notification
from tests.escalation.support import make_policy, set_contacts, set_rules, tick

MINUTE = timedelta(minutes=1)

TWO_STEPS = {
    "team": "payments",
    "default": True,
    "repeat": 1,
    "ackTimeout": "30m",
    "steps": [
        {"notify": {"users": ["alice"]}},
        {"wait": "5m"},
        {"notify": {"users": ["bob"]}},
        {"wait": "10m"},
    ],
}


@pytest.fixture
def payments_policy(db, clock, paging_org):  # type: ignore[no-untyped-def]
    make_policy(db, clock, "payments-default", TWO_STEPS)


def paths(receiver) -> list[str]:  # type: ignore[no-untyped-def]
    return [item.path for item in receiver.received]


def advance(db, clock, minutes: float) -> None:  # type: ignore[no-untyped-def]
    clock.advance(timedelta(minutes=minutes))
    tick(db, clock)


def escalation(db, group_id: int) -> Escalation:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return session.get(Escalation, group_id)


def test_steps_run_in_order_then_repeat_then_stop(db, clock, payments_policy, alerting, receiver):
    group = alerting.open("checkout", title="Checkout is down")
    tick(db, clock)
    assert paths(receiver) == ["/u/alice"]
    assert receiver.received[0].title == "[Relia] Checkout is down"
    advance(db, clock, 4)
    assert paths(receiver) == ["/u/alice"], "the wait holds step 3 back"
    advance(db, clock, 1)
    assert paths(receiver) == ["/u/alice", "/u/bob"]
    advance(db, clock, 10)  # the trailing wait, then the repeat starts from step 1
    assert paths(receiver) == ["/u/alice", "/u/bob", "/u/alice"]
    advance(db, clock, 5)
    advance(db, clock, 120)
    assert paths(receiver) == ["/u/alice", "/u/bob", "/u/alice", "/u/bob"]
    state = escalation(db, group)
    assert state.status == "exhausted" and state.next_step_at is None
    with db.reader() as session:
        ran = session.execute(
            select(EscalationStep.step_index, EscalationStep.repeat).order_by(EscalationStep.ran_at)
        ).all()
        assert [tuple(row) for row in ran] == [(0, 0), (2, 0), (0, 1), (2, 1)]
        assert session.scalar(select(func.count()).select_from(Timer)) == 0, "nothing is left to fire"
        events = session.scalars(select(TimelineEvent.type).order_by(TimelineEvent.id)).all()
    assert "escalation.started" in events and "escalation.exhausted" in events


def test_acknowledging_stops_the_escalation_and_an_ack_timeout_pages_again(
    db, clock, payments_policy, alerting, receiver
):
    group = alerting.open("checkout")
    tick(db, clock)
    advance(db, clock, 2)
    alerting.acknowledge(group, "alice")
    advance(db, clock, 10)
    assert paths(receiver) == ["/u/alice"], "bob is not paged after the acknowledgement"
    state = escalation(db, group)
    assert state.status == "acknowledged" and state.acknowledged_by is not None
    advance(db, clock, 20)  # 30 minutes after the acknowledgement, not resolved: page again from step 1
    assert paths(receiver) == ["/u/alice", "/u/alice"]
    state = escalation(db, group)
    assert (state.status, state.round) == ("active", 1)
    with db.reader() as session:
        assert "escalation.repaged" in session.scalars(select(TimelineEvent.type)).all()
    alerting.resolve(group)
    advance(db, clock, 60)
    assert paths(receiver) == ["/u/alice", "/u/alice"]
    assert escalation(db, group).status == "resolved"


def test_resolving_cancels_pages_that_have_not_left(db, clock, payments_policy, alerting, receiver):
    group = alerting.open("checkout")
    timers.run_due(db, clock)  # the step ran: its page waits in the outbox for the next delivery pass
    alerting.resolve(group)
    tick(db, clock)
    assert receiver.received == []
    with db.reader() as session:
        log = notify.deliveries_for_group(session, group)
        message = session.scalars(select(OutboxMessage)).one()
    assert [(item.user, item.status) for item in log] == [("alice", "cancelled")]
    assert log[0].note == "the alert group was resolved before this left"
    assert message.status == "cancelled"


def test_snooze_pauses_then_the_escalation_starts_again(db, clock, payments_policy, alerting, receiver):
    group = alerting.open("checkout")
    tick(db, clock)
    alerting.snooze(group, clock.now() + timedelta(minutes=20))
    advance(db, clock, 19)
    assert paths(receiver) == ["/u/alice"]
    advance(db, clock, 1)
    assert paths(receiver) == ["/u/alice", "/u/alice"]
    assert (escalation(db, group).status, escalation(db, group).round) == ("active", 1)
    # The alerting domain announces the end of the snooze too: the escalation is already running, so nothing
    # more is paged.
    alerting.reopen(group)
    tick(db, clock)
    assert paths(receiver) == ["/u/alice", "/u/alice"]
    assert escalation(db, group).round == 1


def test_editing_a_policy_never_changes_a_live_group(db, clock, payments_policy, alerting, receiver):
    live = alerting.open("checkout")
    tick(db, clock)
    edited = {**TWO_STEPS, "repeat": 0, "steps": [{"notify": {"users": ["carol"]}}, {"wait": "1m"}]}
    make_policy(db, clock, "payments-default", edited)
    advance(db, clock, 5)
    assert paths(receiver) == ["/u/alice", "/u/bob"], "the live group keeps the policy it opened with"
    fresh = alerting.open("checkout")
    tick(db, clock)
    assert paths(receiver)[-1] == "/u/carol"
    assert escalation(db, live).policy_version == 1
    assert escalation(db, fresh).policy_version == 2
    # Deleting it strands nothing either.
    with db.transaction() as session:
        from tests.factories import OPERATOR

        service.delete_policy(session, actor=OPERATOR, name="payments-default", now=clock.now())
    advance(db, clock, 15)
    assert paths(receiver).count("/u/alice") == 2, "the repeat of the live group still ran"


def test_reopening_escalates_again_on_the_policy_in_force_now(db, clock, payments_policy, alerting, receiver):
    group = alerting.open("checkout")
    tick(db, clock)
    alerting.resolve(group)
    make_policy(db, clock, "payments-default", {**TWO_STEPS, "steps": [{"notify": {"users": ["bob"]}}, {"wait": "5m"}]})
    alerting.reopen(group)
    tick(db, clock)
    assert paths(receiver) == ["/u/alice", "/u/bob"]
    state = escalation(db, group)
    assert (state.round, state.policy_version) == (1, 2)


def test_a_redelivered_or_repeated_step_pages_once(db, clock, payments_policy, alerting, receiver):
    group = alerting.open("checkout")
    with db.reader() as session:
        timer = session.scalars(select(Timer).where(Timer.kind == service.STEP_TIMER)).one()
        payload = dict(timer.payload)
    tick(db, clock)
    # The same step again, as a redelivered timer would: the step run's key (group, round, step, repeat) exists.
    with db.transaction() as session:
        service.run_step(session, payload, clock.now())
    with db.transaction() as session:
        timers.schedule(
            session, kind=service.STEP_TIMER, key="replayed", due_at=clock.now(), payload=payload, now=clock.now()
        )
    tick(db, clock)
    assert paths(receiver) == ["/u/alice"]
    with db.reader() as session:
        assert session.scalar(select(func.count()).select_from(EscalationStep)) == 1
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
    assert escalation(db, group).status == "active"


def test_the_same_group_opened_twice_escalates_once(db, clock, payments_policy, alerting, receiver):
    group = alerting.open("checkout")
    alerting.open("checkout", group_id=group)
    tick(db, clock)
    assert paths(receiver) == ["/u/alice"]


def test_personal_rules_page_a_second_channel_later_unless_acknowledged(db, clock, payments_policy, alerting, receiver):
    set_contacts(
        db,
        clock,
        "alice",
        [
            {"name": "hook", "kind": "webhook", "address": receiver.url("/u/alice")},
            {"name": "phone", "kind": "webhook", "address": receiver.url("/u/alice/phone")},
        ],
    )
    set_rules(db, clock, "alice", [{"contactMethod": "hook", "after": "0m"}, {"contactMethod": "phone", "after": "2m"}])
    first = alerting.open("checkout")
    tick(db, clock)
    assert paths(receiver) == ["/u/alice"]
    advance(db, clock, 2)
    assert paths(receiver) == ["/u/alice", "/u/alice/phone"]
    alerting.acknowledge(first, "alice")
    second = alerting.open("checkout")
    tick(db, clock)
    advance(db, clock, 1)
    alerting.acknowledge(second, "alice")
    advance(db, clock, 5)
    assert paths(receiver) == ["/u/alice", "/u/alice/phone", "/u/alice"], "the acknowledged group's rule is skipped"
    with db.reader() as session:
        log = notify.deliveries_for_group(session, first)
    assert [(item.contact_method, item.after_seconds, item.status) for item in log] == [
        ("hook", 0, "delivered"),
        ("phone", 120, "delivered"),
    ]


def test_a_step_reaches_each_person_once_and_notes_who_it_could_not_reach(
    db, clock, paging_org, alerting, receiver, monkeypatch
):
    monkeypatch.setattr(service, "_on_call", lambda session, schedule, at: [])  # nobody on call in "nights"
    set_contacts(db, clock, "carol", [])
    make_policy(
        db,
        clock,
        "search-default",
        {
            "team": "search",
            "default": True,
            "steps": [{"notify": {"users": ["alice", "carol"], "teams": ["payments"], "schedules": ["nights"]}}],
        },
    )
    group = alerting.open("ranker")
    tick(db, clock)
    assert sorted(paths(receiver)) == ["/u/alice", "/u/bob"], "alice is named twice (user, team) and paged once"
    with db.reader() as session:
        step = session.scalars(select(EscalationStep)).one()
        log = notify.deliveries_for_group(session, group)
    assert [(t["username"], t["via"]) for t in step.targets] == [
        ("alice", "user"),
        ("carol", "user"),
        ("bob", "team payments"),
    ]
    assert "carol has no contact methods" in step.notes
    assert "schedule nights: nobody is on call" in step.notes
    assert ("carol", "unreachable") in [(item.user, item.status) for item in log]


def test_a_schedule_step_pages_whoever_is_on_call_then(db, clock, paging_org, alerting, receiver, monkeypatch):
    on_call = {"nights": ["bob"]}

    class Shift:
        def __init__(self, user_id: int, username: str) -> None:
            self.user_id, self.username = user_id, username

    def fake_on_call(session, schedule, at):  # type: ignore[no-untyped-def]
        from relia.catalog.models import User

        return [Shift(session.scalar(select(User.id).where(User.username == name)), name) for name in on_call[schedule]]

    monkeypatch.setattr(service, "_on_call", fake_on_call)
    make_policy(
        db,
        clock,
        "payments-default",
        {"team": "payments", "default": True, "steps": [{"notify": {"schedules": ["nights"]}}]},
    )
    alerting.open("checkout")
    tick(db, clock)
    on_call["nights"] = ["alice"]
    alerting.open("checkout")
    tick(db, clock)
    assert paths(receiver) == ["/u/bob", "/u/alice"], "resolved when the step runs, not when the policy was written"


def test_a_service_uses_its_own_policy_then_its_team_default_then_everyone_in_the_team(
    db, clock, paging_org, alerting, receiver
):
    alerting.open("checkout")
    tick(db, clock)
    assert sorted(paths(receiver)) == ["/u/alice", "/u/bob"], "no policy: every member of payments"
    make_policy(
        db, clock, "payments-default", {"team": "payments", "default": True, "steps": [{"notify": {"users": ["bob"]}}]}
    )
    make_policy(
        db,
        clock,
        "checkout-only",
        {"team": "payments", "services": ["checkout"], "steps": [{"notify": {"users": ["alice"]}}]},
    )
    group = alerting.open("checkout")
    tick(db, clock)
    assert paths(receiver)[-1] == "/u/alice"
    state = escalation(db, group)
    assert (state.policy_name, state.source) == ("checkout-only", "service")
    with db.reader() as session:
        assert service.service_escalation(session, "checkout").policy == "checkout-only"


def test_a_handed_pager_pages_the_receiving_team(db, clock, paging_org, alerting, receiver):
    policy_models = pytest.importorskip("relia.policy.models")
    from relia.catalog.models import Service, Team

    make_policy(
        db, clock, "payments-default", {"team": "payments", "default": True, "steps": [{"notify": {"users": ["bob"]}}]}
    )
    make_policy(
        db, clock, "search-default", {"team": "search", "default": True, "steps": [{"notify": {"users": ["carol"]}}]}
    )
    with db.transaction() as session:
        service_id = session.scalar(select(Service.id).where(Service.slug == "checkout"))
        team_ids = dict(session.execute(select(Team.slug, Team.id)).all())
        session.add(
            policy_models.PagerHandoff(
                service_id=service_id,
                policy_name="budget-burn",
                from_team_id=team_ids["payments"],
                to_team_id=team_ids["search"],
                reason="budget exhausted",
                started_at=clock.now(),
            )
        )
    group = alerting.open("checkout")
    tick(db, clock)
    assert paths(receiver) == ["/u/carol"]
    state = escalation(db, group)
    assert (state.source, state.policy_name) == ("handoff", "search-default")
    assert "handed from payments to search" in state.source_detail


def test_a_group_without_a_service_pages_nobody_and_says_so(db, clock, paging_org, alerting, receiver):
    from relia.core import hooks

    with db.transaction() as session:
        hooks.emit(session, "alert.group.opened", group_id=77, service_id=None, at=clock.now())
    tick(db, clock)
    assert receiver.received == []
    assert escalation(db, 77).status == "none"
    with db.reader() as session:
        assert "escalation.nobody" in session.scalars(select(TimelineEvent.type)).all()


def test_pages_by_user_counts_each_page_once(db, clock, paging_org, alerting, receiver):
    set_contacts(
        db,
        clock,
        "alice",
        [
            {"name": "hook", "kind": "webhook", "address": receiver.url("/u/alice")},
            {"name": "phone", "kind": "webhook", "address": receiver.url("/u/alice/phone")},
        ],
    )
    make_policy(db, clock, "payments-default", TWO_STEPS)
    start = clock.now()
    first = alerting.open("checkout")
    tick(db, clock)
    advance(db, clock, 5)
    alerting.acknowledge(first, "alice")
    advance(db, clock, 1)
    alerting.open("checkout")
    tick(db, clock)
    with db.reader() as session:
        from relia.catalog.models import User

        ids = dict(session.execute(select(User.username, User.id)).all())
        pages = notify.pages_by_user(
            session, user_ids=[ids["alice"], ids["bob"], ids["carol"]], start=start, end=clock.now() + MINUTE
        )
    assert pages[ids["alice"]] == [start, start + timedelta(minutes=6)], "two contact methods, one page each time"
    assert pages[ids["bob"]] == [start + timedelta(minutes=5)]
    assert pages[ids["carol"]] == []


def test_a_supporting_team_holds_the_pager_until_a_budget_policy_hands_it_back(
    db, clock, paging_org, alerting, receiver
):
    policy_models = pytest.importorskip("relia.policy.models")
    from relia.catalog.models import Service, Team

    make_policy(
        db, clock, "payments-default", {"team": "payments", "default": True, "steps": [{"notify": {"users": ["bob"]}}]}
    )
    # search's policy lists checkout, a payments service: search holds its pager.
    make_policy(
        db,
        clock,
        "search-supports-checkout",
        {"team": "search", "services": ["checkout"], "steps": [{"notify": {"users": ["carol"]}}]},
    )
    first = alerting.open("checkout")
    tick(db, clock)
    assert paths(receiver) == ["/u/carol"]
    assert (escalation(db, first).source, escalation(db, first).policy_name) == ("service", "search-supports-checkout")
    alerting.resolve(first)

    with db.transaction() as session:
        service_id = session.scalar(select(Service.id).where(Service.slug == "checkout"))
        team_ids = dict(session.execute(select(Team.slug, Team.id)).all())
        session.add(
            policy_models.PagerHandoff(
                service_id=service_id,
                policy_name="budget-burn",
                from_team_id=team_ids["search"],
                to_team_id=team_ids["payments"],
                reason="budget exhausted",
                started_at=clock.now(),
            )
        )
    with db.reader() as session:
        resolution = service.resolve_policy(session, service_id)
    assert (resolution.source, resolution.policy.name if resolution.policy else None) == ("handoff", "payments-default")
    assert "handed from search to payments" in resolution.detail
