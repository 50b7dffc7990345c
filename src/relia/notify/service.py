"""Notification use cases: personal notification rules, sending a page to a user's contact methods through the
outbox (throttled and bundled per destination), cancelling what has not left yet, the delivery log, when users
were paged, and the pipeline's health.

Keyword-only functions taking a session; the caller owns the transaction. ``send`` is called by the escalation
domain inside the transaction of the escalation step, so a page and its outbox message commit together or not at
all.

How a page becomes a message: each contact attempt is a ``Notification`` row with a unique idempotency key. Its
destination's row is locked (``notification_destinations``, so concurrent steps to one person take turns); if
that destination already has a message waiting that has not been claimed by a worker, the page joins it (the
bundle: one message listing several alert groups); otherwise a new outbox message is written, due at once or,
when the destination has had its fill of messages in the throttle window, as soon as the window allows. Nothing
is dropped: later pages join the held-back message until it leaves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from relia.catalog.models import ContactMethod, User
from relia.catalog.service import check_version, get_user
from relia.core import audit, outbox, timeline
from relia.core.auth import Principal
from relia.core.clock import utc
from relia.core.errors import FieldError, Forbidden, InvalidInput, NotFound
from relia.core.models import OutboxDelivery, OutboxMessage, Timer
from relia.notify import rules
from relia.notify.models import Notification, NotificationDestination, NotificationRuleSet, PagingWatchdog
from relia.notify.schemas import (
    DeliveryAttemptOut,
    EffectiveContactOut,
    NotificationOut,
    NotificationRulesOut,
    NotificationRuleSpec,
    NotificationRulesSpec,
    PipelineHealthOut,
)
from relia.notify.settings import NotifySettings, notify_settings

CHANNEL = "apprise"
# The outbox status of a message whose every page was cancelled before it left (the outbox only sends "pending").
CANCELLED = "cancelled"
WATCHDOG_ROW = "pipeline"
PAGE_MAX_ATTEMPTS = 8  # with the outbox's backoff (10 s doubling): about 21 minutes of retries before giving up

# ------------------------------------------------------------------------------------------------- rules


def get_rule_set(session: Session, user_id: int, *, for_update: bool = False) -> NotificationRuleSet | None:
    statement = select(NotificationRuleSet).where(NotificationRuleSet.user_id == user_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def rules_spec(rule_set: NotificationRuleSet | None) -> dict[str, Any]:
    return {"rules": list(rule_set.rules) if rule_set else []}


def _rule_infos(rule_set: NotificationRuleSet | None) -> list[rules.RuleInfo]:
    return [
        rules.RuleInfo(position, item["contactMethod"], rules.parse_duration(item.get("after", "0m")))
        for position, item in enumerate(rule_set.rules if rule_set else [])
    ]


def _contacts(user: User) -> list[rules.ContactInfo]:
    return [rules.ContactInfo(method.name, method.kind, method.address) for method in user.contact_methods]


def rules_out(session: Session, user: User) -> NotificationRulesOut:
    rule_set = get_rule_set(session, user.id)
    expansion = rules.expand_rules(_rule_infos(rule_set), _contacts(user))
    kinds = {method.name: method.kind for method in user.contact_methods}
    notes = list(expansion.notes)
    if not user.contact_methods:
        notes.append("no contact methods: pages reach nobody until one is added")
    elif rule_set is None or not rule_set.rules:
        notes.append("no rules: every contact method is notified at once")
    return NotificationRulesOut(
        user=user.username,
        rules=[NotificationRuleSpec.model_validate(item) for item in (rule_set.rules if rule_set else [])],
        effective=[
            EffectiveContactOut(
                contact_method=item.contact_method,
                kind=kinds[item.contact_method],
                after_seconds=item.delay,
                after=rules.format_seconds(item.delay),
            )
            for item in expansion.planned
        ],
        notes=notes,
        version=rule_set.version if rule_set else 0,
    )


def _require_self_or_admin(actor: Principal, user: User) -> None:
    actor.require_write()
    if not (actor.acts_as_admin or actor.user_id == user.id):
        raise Forbidden("Only the user themself or an administrator may change a user's notification rules.")


def set_rules(
    session: Session,
    *,
    actor: Principal,
    username: str,
    spec: NotificationRulesSpec,
    now: datetime,
    if_match: int | None = None,
    expected_version: int | None = None,
    config_managed: bool | None = None,
) -> NotificationRuleSet:
    """Replace a user's rules (the user themself, or an administrator). Every rule must name one of the user's
    contact methods, so a typo cannot silence a page."""
    user = get_user(session, username)
    _require_self_or_admin(actor, user)
    problems = rules.rule_problems(
        [rule.contact_method for rule in spec.rules], [method.name for method in user.contact_methods]
    )
    if problems:
        raise InvalidInput(
            "A notification rule names a contact method the user does not have.",
            errors=[FieldError(f"rules.{index}.contactMethod", message) for index, message in problems],
        )
    after = {"rules": [rule.model_dump(mode="json", by_alias=True) for rule in spec.rules]}
    rule_set = get_rule_set(session, user.id, for_update=True)
    if rule_set is None:
        if if_match not in (None, 0) or expected_version not in (None, 0):
            check_version("NotificationRules", username, 0, if_match or expected_version, if_match=bool(if_match))
        rule_set = NotificationRuleSet(
            user_id=user.id,
            rules=after["rules"],
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(rule_set)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="create",
            kind="NotificationRules",
            key=username,
            before=None,
            after=after,
            now=now,
        )
        return rule_set
    check_version("NotificationRules", username, rule_set.version, if_match, if_match=True)
    check_version("NotificationRules", username, rule_set.version, expected_version)
    before = rules_spec(rule_set)
    if config_managed is not None:
        rule_set.config_managed = config_managed
    if before != after:
        rule_set.rules, rule_set.updated_at = after["rules"], now
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="update",
            kind="NotificationRules",
            key=username,
            before=before,
            after=after,
            now=now,
        )
    return rule_set


def delete_rules(session: Session, *, actor: Principal, username: str, now: datetime) -> None:
    """Back to the default (every contact method at once)."""
    user = get_user(session, username)
    _require_self_or_admin(actor, user)
    rule_set = get_rule_set(session, user.id, for_update=True)
    if rule_set is None:
        raise NotFound(f"User {username!r} has no notification rules.")
    before = rules_spec(rule_set)
    session.delete(rule_set)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="delete",
        kind="NotificationRules",
        key=username,
        before=before,
        after=None,
        now=now,
    )


# ------------------------------------------------------------------------------------------------ paging


@dataclass(frozen=True)
class PageRef:
    """Which escalation step a page belongs to. Together with the user and the contact attempt it is the
    notification's idempotency key."""

    group_id: int
    round: int
    step_index: int
    repeat: int

    def key(self, user_id: int, attempt: str) -> str:
        return f"page:{self.group_id}:{self.round}:{self.step_index}:{self.repeat}:{user_id}:{attempt}"


@dataclass(frozen=True)
class Subject:
    title: str
    service: str


@dataclass(frozen=True)
class ContactRequest:
    user_id: int
    username: str
    contact: rules.PlannedContact


@dataclass(frozen=True)
class UserPlan:
    user_id: int
    username: str
    expansion: rules.Expansion


def plan_pages(session: Session, user_ids: Sequence[int]) -> dict[int, UserPlan]:
    """Each user's contact attempts for one page, from their rules and contact methods (three queries)."""
    if not user_ids:
        return {}
    users = session.scalars(
        select(User).where(User.id.in_(list(user_ids))).options(selectinload(User.contact_methods))
    ).all()
    rule_sets = {
        rule_set.user_id: rule_set
        for rule_set in session.scalars(
            select(NotificationRuleSet).where(NotificationRuleSet.user_id.in_(list(user_ids)))
        )
    }
    return {
        user.id: UserPlan(
            user.id, user.username, rules.expand_rules(_rule_infos(rule_sets.get(user.id)), _contacts(user))
        )
        for user in users
    }


def group_link(group_id: int, settings: NotifySettings | None = None) -> str:
    settings = settings or notify_settings()
    return f"{settings.base_url.rstrip('/')}/escalations/{group_id}"


def _insert_ignoring_duplicates(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a notification unless its idempotency key exists; the new id, or None for a duplicate."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Notification.id)
    )
    return session.execute(statement).scalar_one_or_none()


def record_unreachable(
    session: Session, *, page: PageRef, user_id: int, username: str, note: str, now: datetime
) -> Notification | None:
    """A page that found no way to reach the user: recorded, so the log shows who was not reached and why."""
    new_id = _insert_ignoring_duplicates(
        session,
        {
            "idempotency_key": page.key(user_id, "none"),
            "group_id": page.group_id,
            "round": page.round,
            "step_index": page.step_index,
            "repeat": page.repeat,
            "user_id": user_id,
            "username": username,
            "status": "unreachable",
            "note": note[:2000],
            "created_at": now,
            "delay_seconds": 0,
        },
    )
    return session.get(Notification, new_id) if new_id is not None else None


def send(
    session: Session,
    *,
    page: PageRef,
    subject: Subject,
    requests: Iterable[ContactRequest],
    now: datetime,
    settings: NotifySettings | None = None,
) -> list[Notification]:
    """Notify each requested contact attempt now, through the outbox, in the caller's transaction. Attempts
    already made (same idempotency key) are skipped, so calling this twice for one step notifies once.

    Destinations are locked in a fixed order (by key), so two steps paging the same people at once cannot
    deadlock on PostgreSQL."""
    settings = settings or notify_settings()
    requests = list(requests)
    users = {
        user.id: user
        for user in session.scalars(
            select(User)
            .where(User.id.in_({request.user_id for request in requests}))
            .options(selectinload(User.contact_methods))
        )
    }
    prepared: list[tuple[str, ContactRequest, ContactMethod | None]] = []
    for request in requests:
        user = users.get(request.user_id)
        method = next(
            (m for m in (user.contact_methods if user else []) if m.name == request.contact.contact_method), None
        )
        destination = rules.destination_for(method.kind, method.address) if method else ""
        prepared.append((destination, request, method))
    prepared.sort(key=lambda item: (rules.destination_key(item[0]) if item[0] else "", item[1].username))
    sent: list[Notification] = []
    for destination, request, method in prepared:
        values = {
            "idempotency_key": page.key(request.user_id, request.contact.key),
            "group_id": page.group_id,
            "round": page.round,
            "step_index": page.step_index,
            "repeat": page.repeat,
            "user_id": request.user_id,
            "username": request.username,
            "contact_method": request.contact.contact_method,
            "contact_kind": method.kind if method else None,
            "delay_seconds": request.contact.delay,
            "status": "queued" if method else "unreachable",
            "note": None if method else f"contact method {request.contact.contact_method!r} no longer exists",
            "created_at": now,
            "destination_key": rules.destination_key(destination) if method else None,
        }
        new_id = _insert_ignoring_duplicates(session, values)
        if new_id is None:
            continue
        notification = session.get(Notification, new_id)
        assert notification is not None
        if method is not None:
            item = {
                "notificationId": notification.id,
                "groupId": page.group_id,
                "round": page.round,
                "step": page.step_index + 1,
                "repeat": page.repeat,
                "title": subject.title,
                "service": subject.service,
                "link": group_link(page.group_id, settings),
                "reminder": request.contact.delay > 0,
            }
            _queue(session, notification, destination, item, now, settings)
        sent.append(notification)
    return sent


def _lock_destination(session: Session, key: str, now: datetime) -> NotificationDestination:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(NotificationDestination)
        .values(key=key, recent_sends=[], open_message_id=None, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    # populate_existing: a copy read earlier in this session may be stale; the locked row is the truth.
    return session.scalars(
        select(NotificationDestination)
        .where(NotificationDestination.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _with_items(payload: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    title, body = rules.bundle_text(items)
    return {**payload, "items": items, "title": title, "body": body}


def _queue(
    session: Session,
    notification: Notification,
    destination: str,
    item: dict[str, Any],
    now: datetime,
    settings: NotifySettings,
) -> None:
    key = rules.destination_key(destination)
    row = _lock_destination(session, key, now)
    if row.open_message_id is not None:
        # Join the message still waiting for this destination, unless a worker has claimed it (attempts > 0:
        # it may be on its way) or holds its lock right now (SKIP LOCKED: then we start a new one).
        waiting = session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.id == row.open_message_id,
                OutboxMessage.status == "pending",
                OutboxMessage.attempts == 0,
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).first()
        if waiting is not None:
            items = list(waiting.payload.get("items", []))
            if rules.can_join_bundle(len(items), bundle_max=settings.notify_bundle_max):
                waiting.payload = _with_items(waiting.payload, [*items, item])
                notification.outbox_message_id = waiting.id
                row.updated_at = now
                return
    window = timedelta(seconds=settings.notify_throttle_window_seconds)
    recent = [utc(datetime.fromisoformat(value)) for value in row.recent_sends]
    slot = rules.throttle_slot(recent, now, limit=settings.notify_throttle_limit, window=window)
    idempotency_key = f"notify:{notification.idempotency_key}"
    outbox.enqueue(
        session,
        channel=CHANNEL,
        destination=destination,
        payload=_with_items({"kind": "page", "idempotencyKey": idempotency_key}, [item]),
        idempotency_key=idempotency_key,
        now=now,
        max_attempts=PAGE_MAX_ATTEMPTS,
    )
    message_id = session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key))
    if slot > now:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(next_attempt_at=slot))
    kept = rules.remember_slot(recent, slot, limit=settings.notify_throttle_limit)
    row.recent_sends = [value.isoformat() for value in kept]
    row.open_message_id = message_id
    row.updated_at = now
    notification.outbox_message_id = message_id


def send_test(session: Session, *, actor: Principal, username: str, contact_method: str, now: datetime) -> str:
    """Queue a test message to one of a user's contact methods (the user themself, or an administrator), so they
    can check it reaches them before a real page has to. It goes through the outbox like a page (retried, and
    logged in its attempts) but is not throttled or bundled. Returns the message's idempotency key."""
    user = get_user(session, username)
    _require_self_or_admin(actor, user)
    method = next((m for m in user.contact_methods if m.name == contact_method), None)
    if method is None:
        raise NotFound(f"User {username!r} has no contact method {contact_method!r}.")
    key = f"test:{user.id}:{method.name}:{now.isoformat()}"
    item = {
        "notificationId": None,
        "groupId": 0,
        "step": 0,
        "repeat": 0,
        "title": f"Test message for {user.name}",
        "service": "none",
        "link": f"{notify_settings().base_url.rstrip('/')}/users/{username}/notifications",
    }
    title, body = (
        f"[Relia] Test message to {method.name}",
        (
            f"This is a test of your contact method {method.name!r} ({method.kind}), sent by {actor.name}. "
            "If you read this, Relia can page you here."
        ),
    )
    outbox.enqueue(
        session,
        channel=CHANNEL,
        destination=rules.destination_for(method.kind, method.address),
        payload={"kind": "test", "idempotencyKey": key, "items": [item], "title": title, "body": body},
        idempotency_key=key,
        now=now,
        max_attempts=3,
    )
    audit.record(
        session,
        actor=actor,
        action="test",
        kind="ContactMethod",
        key=f"{username}/{method.name}",
        before=None,
        after=None,
        now=now,
    )
    return key


def cancel_unsent(session: Session, *, group_id: int, now: datetime, reason: str) -> int:
    """Take an alert group's pages out of the messages that have not left yet (acknowledged or resolved: they
    would only be noise). A message whose every page goes is cancelled. Messages a worker has claimed, or is
    retrying, are left alone: they may be on their way already. Returns how many pages were cancelled."""
    waiting = session.scalars(
        select(Notification).where(
            Notification.group_id == group_id,
            Notification.status == "queued",
            Notification.outbox_message_id.is_not(None),
        )
    ).all()
    by_message: dict[int, list[Notification]] = defaultdict(list)
    for notification in waiting:
        by_message[notification.outbox_message_id].append(notification)  # type: ignore[index]
    cancelled = 0
    for message_id in sorted(by_message):
        message = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending", OutboxMessage.attempts == 0)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).first()
        if message is None:
            continue
        leaving = {notification.id for notification in by_message[message_id]}
        items = [item for item in message.payload.get("items", []) if item.get("notificationId") not in leaving]
        if items:
            message.payload = _with_items(message.payload, items)
        else:
            message.status = CANCELLED
            message.last_error = f"cancelled: {reason}"
        for notification in by_message[message_id]:
            notification.status = "cancelled"
            notification.note = reason
            cancelled += 1
    return cancelled


# ---------------------------------------------------------------------------------------------- reading


def _status(notification: Notification, message: OutboxMessage | None) -> str:
    if notification.status in ("cancelled", "unreachable"):
        return notification.status
    if message is None:
        return "unknown"
    if message.status == "delivered":
        return "delivered"
    if message.status == "dead":
        return "failed"
    if message.status == CANCELLED:
        return "cancelled"
    if message.attempts > 0:
        return "retrying"
    if message.next_attempt_at > notification.created_at:
        return "throttled"
    return "queued"


def notifications_out(session: Session, notifications: Sequence[Notification]) -> list[NotificationOut]:
    message_ids = {n.outbox_message_id for n in notifications if n.outbox_message_id is not None}
    messages = (
        {m.id: m for m in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(message_ids)))}
        if message_ids
        else {}
    )
    attempts: dict[int, list[DeliveryAttemptOut]] = defaultdict(list)
    if message_ids:
        for delivery in session.scalars(
            select(OutboxDelivery)
            .where(OutboxDelivery.message_id.in_(message_ids))
            .order_by(OutboxDelivery.message_id, OutboxDelivery.attempt, OutboxDelivery.id)
        ):
            attempts[delivery.message_id].append(
                DeliveryAttemptOut(
                    attempt=delivery.attempt,
                    at=delivery.at,
                    ok=delivery.ok,
                    duration_ms=delivery.duration_ms,
                    detail=delivery.detail,
                )
            )
    out = []
    for notification in notifications:
        message = messages.get(notification.outbox_message_id) if notification.outbox_message_id else None
        status = _status(notification, message)
        waiting = status in ("queued", "throttled", "retrying")
        out.append(
            NotificationOut(
                id=notification.id,
                group_id=notification.group_id,
                round=notification.round,
                step=notification.step_index + 1,
                repeat=notification.repeat,
                user=notification.username,
                contact_method=notification.contact_method,
                kind=notification.contact_kind,
                after_seconds=notification.delay_seconds,
                status=status,  # type: ignore[arg-type]
                note=notification.note,
                paged_at=notification.created_at,
                scheduled_for=message.next_attempt_at if message is not None and waiting else None,
                delivered_at=message.delivered_at if message is not None else None,
                bundled_with=max(0, len(message.payload.get("items", [])) - 1) if message is not None else 0,
                attempts=attempts.get(message.id, []) if message is not None else [],
            )
        )
    return out


def deliveries_for_group(session: Session, group_id: int) -> list[NotificationOut]:
    """For the alert group page: every notification of the group, oldest first, with its delivery attempts."""
    notifications = session.scalars(
        select(Notification).where(Notification.group_id == group_id).order_by(Notification.created_at, Notification.id)
    ).all()
    return notifications_out(session, notifications)


def list_notifications(
    session: Session,
    *,
    user_id: int | None = None,
    group_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Notification]:
    """Newest first; ``before_id`` pages backwards."""
    statement = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if user_id is not None:
        statement = statement.where(Notification.user_id == user_id)
    if group_id is not None:
        statement = statement.where(Notification.group_id == group_id)
    if before_id is not None:
        statement = statement.where(Notification.id < before_id)
    return list(session.scalars(statement).all())


def pages_by_user(
    session: Session, *, user_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, list[datetime]]:
    """For on-call fairness: when each user was paged in [start, end), oldest first. One page is one escalation
    step reaching the user (its first contact attempt), however many contact methods it used; pages cancelled
    before anything left (the group was acknowledged first) do not count. Users never paged map to []."""
    wanted = list(user_ids)
    found: dict[int, list[datetime]] = {user_id: [] for user_id in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(Notification.user_id, func.min(Notification.created_at))
        .where(
            Notification.user_id.in_(wanted),
            Notification.status != "cancelled",
            Notification.created_at >= start,
            Notification.created_at < end,
        )
        .group_by(
            Notification.user_id,
            Notification.group_id,
            Notification.round,
            Notification.step_index,
            Notification.repeat,
        )
    ).all()
    for user_id, at in rows:
        found[user_id].append(utc(at))
    for times in found.values():
        times.sort()
    return found


# ---------------------------------------------------------------------------------------------- health


def pipeline_health(session: Session, *, now: datetime, settings: NotifySettings | None = None) -> PipelineHealthOut:
    """Whether the worker keeps up: a due timer or outbox message later than the stall threshold means the
    pipeline stalled (no worker, a tick that hangs, a database that refuses writes...)."""
    settings = settings or notify_settings()
    threshold = now - timedelta(seconds=settings.watchdog_stall_seconds)
    timers, oldest_timer = session.execute(
        select(func.count(), func.min(Timer.due_at)).where(Timer.due_at < threshold)
    ).one()
    messages, oldest_message = session.execute(
        select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == "pending", OutboxMessage.next_attempt_at < threshold
        )
    ).one()
    hour_ago = now - timedelta(hours=1)
    failed = session.scalar(
        select(func.count())
        .select_from(Notification)
        .join(OutboxMessage, OutboxMessage.id == Notification.outbox_message_id)
        .where(OutboxMessage.status == "dead", Notification.created_at >= hour_ago)
    )
    unreachable = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.status == "unreachable", Notification.created_at >= hour_ago)
    )
    row = session.get(PagingWatchdog, WATCHDOG_ROW)
    return PipelineHealthOut(
        status="stalled" if timers or messages else "ok",
        checked_at=now,
        stall_after_seconds=settings.watchdog_stall_seconds,
        overdue_timers=timers,
        oldest_timer_due_at=utc(oldest_timer) if oldest_timer else None,
        overdue_messages=messages,
        oldest_message_due_at=utc(oldest_message) if oldest_message else None,
        failed_last_hour=failed or 0,
        unreachable_last_hour=unreachable or 0,
        stalled_since=row.stalled_since if row else None,
        last_alert_at=row.last_alert_at if row else None,
        last_alert_result=row.last_alert_result if row else None,
        last_ping_at=row.last_ping_at if row else None,
        last_ping_result=row.last_ping_result if row else None,
    )


@dataclass(frozen=True)
class WatchdogDecision:
    health: PipelineHealthOut
    announce: str | None  # "stalled", "still-stalled", "recovered" or None
    title: str
    body: str


def watchdog_check(
    session: Session,
    *,
    now: datetime,
    settings: NotifySettings | None = None,
    ping_result: tuple[datetime, str] | None = None,
) -> WatchdogDecision:
    """One watchdog look at the pipeline, in the caller's transaction, holding the watchdog row's lock so several
    workers announce each change once. Returns what to announce (the caller sends it, directly and not through
    the outbox, which may be what stalled)."""
    settings = settings or notify_settings()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(PagingWatchdog).values(name=WATCHDOG_ROW, detail={}).on_conflict_do_nothing(index_elements=["name"])
    )
    row = session.scalars(
        select(PagingWatchdog)
        .where(PagingWatchdog.name == WATCHDOG_ROW)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    health = pipeline_health(session, now=now, settings=settings)
    repeat_every = timedelta(seconds=settings.watchdog_repeat_seconds)
    announce: str | None = None
    if health.status == "stalled":
        if row.stalled_since is None:
            row.stalled_since = now
            announce = "stalled"
        elif row.last_alert_at is None or now - row.last_alert_at >= repeat_every:
            announce = "still-stalled"
    elif row.stalled_since is not None:
        announce = "recovered"
        row.stalled_since = None
    if announce is not None:
        row.last_alert_at = now
    row.last_checked_at = now
    if ping_result is not None:
        row.last_ping_at, row.last_ping_result = ping_result[0], ping_result[1][:2000]
    row.detail = health.model_dump(mode="json")
    title, body = _watchdog_text(announce, health)
    if announce in ("stalled", "recovered"):
        timeline.append(
            session,
            type=f"paging.pipeline.{announce}",
            at=now,
            actor="paging-watchdog",
            summary=title,
            data=health.model_dump(mode="json"),
        )
    return WatchdogDecision(health, announce, title, body)


def _watchdog_text(announce: str | None, health: PipelineHealthOut) -> tuple[str, str]:
    if announce is None:
        return "", ""
    if announce == "recovered":
        return "[Relia] Paging pipeline recovered", "Timers and notifications are on time again."
    late = []
    stamp = "%Y-%m-%d %H:%M:%S UTC"
    if health.overdue_timers and health.oldest_timer_due_at:
        late.append(f"{health.overdue_timers} timers overdue since {health.oldest_timer_due_at.strftime(stamp)}")
    if health.overdue_messages and health.oldest_message_due_at:
        since = health.oldest_message_due_at.strftime(stamp)
        late.append(f"{health.overdue_messages} notifications overdue since {since}")
    title = "[Relia] Paging pipeline stalled" + (" (still)" if announce == "still-stalled" else "")
    body = (
        "Relia's worker is not keeping up: pages may not be sent.\n"
        + "\n".join(f"- {line}" for line in late)
        + f"\nThreshold: {health.stall_after_seconds} s late. Check the worker (relia worker) and its logs."
    )
    return title, body


def record_watchdog_alert(session: Session, *, result: str) -> None:
    row = session.get(PagingWatchdog, WATCHDOG_ROW)
    if row is not None:
        row.last_alert_result = result[:2000]
