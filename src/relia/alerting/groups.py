"""The life of an alert group: opening one (or joining an open one within its window), resolution when every
alert of it is resolved, acknowledge, snooze, resolve, waking from a snooze and auto-resolving after a quiet
period. Used by the intake (``relia.alerting.intake``), the API, the web pages and the worker's timers.

Every transition is announced twice in the caller's transaction: a timeline event on the service, and a
domain hook (``alert.group.opened``, ``.acknowledged``, ``.snoozed``, ``.reopened``, ``.resolved``) that the
escalation engine follows. Hooks are emitted after the group's alerts are written (``Announcements.flush``),
so a subscriber reading the group finds its alerts.

On PostgreSQL, everything that changes a group first takes a transaction-level advisory lock named after the
group's (service, key): two Alertmanager peers delivering the same group at once, or a responder resolving
while an alert arrives, then take turns instead of opening two groups or overwriting each other. On SQLite
write transactions take turns anyway (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from relia.alerting import rules
from relia.alerting.models import Alert, AlertGroup, AlertSuppression
from relia.core import audit, hooks, timeline, timers
from relia.core.auth import Principal
from relia.core.errors import Conflict, InvalidInput, NotFound

AUTO_RESOLVE_TIMER = "alerting.auto-resolve"
SNOOZE_TIMER = "alerting.snooze-end"
DEFAULT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class GroupingPolicy:
    """How alerts of one origin are grouped: an integration's settings, or Relia's own SLO alerts."""

    integration_id: int | None = None
    integration_name: str | None = None
    group_by: tuple[str, ...] | None = None
    window: timedelta = DEFAULT_WINDOW
    auto_resolve_after: timedelta | None = None

    @property
    def actor_name(self) -> str:
        return f"integration:{self.integration_name}" if self.integration_name else "relia"


# Relia's own SLO alerts: each (SLO, objective, page|ticket) is its own group, as long as it fires.
SLO_POLICY = GroupingPolicy()


# -------------------------------------------------------------------------------------------------- locks


def lock_key(*parts: object) -> int:
    """A signed 64-bit advisory-lock key from the parts (stable across processes)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def group_lock(service_id: int, key: str) -> int:
    return lock_key("alert-group", service_id, key)


def alert_lock(integration_id: int | None, dedup_key: str) -> int:
    return lock_key("alert", integration_id if integration_id is not None else "relia", dedup_key)


def take_locks(session: Session, keys: Iterable[int], held: set[int] | None = None) -> None:
    """Advisory locks for the rest of the transaction, in ascending order (so two transactions that want the
    same keys never wait for each other in a cycle). No-op on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return
    wanted = sorted(set(keys) - (held or set()))
    if not wanted:
        return
    session.execute(
        text("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) s"),
        {"keys": wanted},
    )
    if held is not None:
        held.update(wanted)


# ------------------------------------------------------------------------------------------ announcements


@dataclass
class Announcements:
    """Transitions waiting to be announced once the alerts they concern are written."""

    items: list[tuple[str, Any, str | None, dict[str, Any], str]] = field(default_factory=list)

    def add(self, event: str, group: Any, summary: str, actor: str | None, **payload: Any) -> None:
        self.items.append((event, group, actor, payload, summary))

    def flush(self, session: Session, now: datetime) -> None:
        if not self.items:
            return
        session.flush()
        pending, self.items = self.items, []
        for event, group, actor, payload, summary in pending:
            data: dict[str, Any] = {"group_id": group.id, "title": group.title, "severity": group.severity}
            data.update(
                {key: value.isoformat() if isinstance(value, datetime) else value for key, value in payload.items()}
            )
            timeline.append(
                session,
                type=event,
                at=now,
                service_id=group.service_id,
                actor=actor,
                summary=summary.format(id=group.id, title=group.title),
                data=data,
            )
            hooks.emit(session, event, group_id=group.id, at=now, **payload)


# ------------------------------------------------------------------------------------------------ placing

_GROUPS = AlertGroup.__table__
_GROUP_COLUMNS = (
    _GROUPS.c.id,
    _GROUPS.c.service_id,
    _GROUPS.c.group_key,
    _GROUPS.c.title,
    _GROUPS.c.severity,
    _GROUPS.c.state,
    _GROUPS.c.opened_at,
)
# Statements built once: the intake runs them on every request, and building SQL expressions costs more
# than running these on SQLite.
_OPEN_GROUP = (
    select(*_GROUP_COLUMNS)
    .where(
        _GROUPS.c.service_id == bindparam("service_id"),
        _GROUPS.c.group_key == bindparam("group_key"),
        _GROUPS.c.state.in_(rules.OPEN_STATES),
        _GROUPS.c.opened_at > bindparam("since"),
    )
    .order_by(_GROUPS.c.id.desc())
    .limit(1)
)
_GROUPS_BY_ID = select(*_GROUP_COLUMNS).where(_GROUPS.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_GROUP = insert(_GROUPS).returning(_GROUPS.c.id)
_TOUCH_GROUP = (
    update(_GROUPS)
    .where(_GROUPS.c.id == bindparam("group_id"))
    .values(
        alert_count=_GROUPS.c.alert_count + bindparam("added", type_=Integer),
        firing_count=_GROUPS.c.firing_count + bindparam("firing", type_=Integer),
        last_alert_at=bindparam("now", type_=_GROUPS.c.last_alert_at.type),
        severity=bindparam("new_severity", type_=_GROUPS.c.severity.type),
    )
    .returning(_GROUPS.c.firing_count, _GROUPS.c.state)
)
_CLOSE_BY_SOURCE = (
    update(_GROUPS)
    .where(_GROUPS.c.id == bindparam("group_id"), _GROUPS.c.state.in_(rules.OPEN_STATES))
    .values(state="resolved", resolved_by="source", resolution="source", snoozed_until=None)
    .returning(_GROUPS.c.id)
)
_ACKNOWLEDGE_BY_SOURCE = (
    update(_GROUPS)
    .where(_GROUPS.c.id == bindparam("group_id"), _GROUPS.c.state.in_(("triggered", "snoozed")))
    .values(state="acknowledged", acknowledged_by_user_id=None, snoozed_until=None)
    .returning(_GROUPS.c.id)
)
_SUPPRESSIONS = AlertSuppression.__table__
_RELEASE_SUPPRESSION = (
    update(_SUPPRESSIONS)
    .where(_SUPPRESSIONS.c.alert_id == bindparam("released_alert"), _SUPPRESSIONS.c.released_at.is_(None))
    .values(released_at=bindparam("released_at"), outcome=bindparam("release_outcome"))
)


@dataclass
class GroupRef:
    """What the intake knows of a group while it places alerts: the changes to its counters are written
    once, at ``Placement.finish``."""

    id: int
    service_id: int
    group_key: str
    title: str
    severity: str
    state: str
    opened_at: datetime
    added: int = 0
    firing: int = 0
    touched: bool = False

    @classmethod
    def of(cls, row: Any) -> GroupRef:
        return cls(*row)


class Placement:
    """Puts the alerts of one transaction into groups with plain SQL statements (the intake's hot path): an
    open group of the same service and key younger than its window, or a new one; counters, severity and the
    time of the last alert; resolution when its last firing alert ends; a sender's acknowledgement. Each
    group is looked up once per request and written once, in ``finish``, which also announces transitions."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.connection = session.connection()
        self.now = now
        self.announce = Announcements()
        self.open: dict[tuple[int, str], GroupRef | None] = {}
        self.by_id: dict[int, GroupRef] = {}

    def _remember(self, group: GroupRef) -> GroupRef:
        existing = self.by_id.get(group.id)
        if existing is not None:
            return existing
        self.by_id[group.id] = group
        return group

    def load(self, group_ids: Iterable[int]) -> None:
        wanted = sorted(set(group_ids) - set(self.by_id))
        if wanted:
            for row in self.connection.execute(_GROUPS_BY_ID, {"ids": wanted}):
                self._remember(GroupRef.of(row))

    def group(self, group_id: int) -> GroupRef:
        if group_id not in self.by_id:
            self.load([group_id])
        return self.by_id[group_id]

    def _open_group(self, service_id: int, key: str, window: timedelta) -> GroupRef | None:
        slot = (service_id, key)
        if slot in self.open:
            group = self.open[slot]
            if group is None or (
                group.state in rules.OPEN_STATES and rules.within_window(group.opened_at, self.now, window)
            ):
                return group
        row = self.connection.execute(
            _OPEN_GROUP, {"service_id": service_id, "group_key": key, "since": self.now - window}
        ).first()
        group = self._remember(GroupRef.of(row)) if row is not None else None
        self.open[slot] = group
        return group

    def place(
        self,
        *,
        service_id: int,
        key: str,
        policy: GroupingPolicy,
        title: str,
        severity: str,
        source: str,
        group_labels: dict[str, str],
        source_url: str | None,
    ) -> GroupRef:
        """The group a new firing alert joins (opening one if needed); counts it."""
        group = self._open_group(service_id, key, policy.window)
        if group is None:
            group_id = self.connection.execute(
                _INSERT_GROUP,
                {
                    "service_id": service_id,
                    "integration_id": policy.integration_id,
                    "source": source,
                    "group_key": key,
                    "group_labels": group_labels,
                    "title": title,
                    "severity": severity,
                    "state": "triggered",
                    "alert_count": 0,
                    "firing_count": 0,
                    "opened_at": self.now,
                    "last_alert_at": self.now,
                    "source_url": source_url,
                },
            ).scalar_one()
            group = self._remember(GroupRef(group_id, service_id, key, title, severity, "triggered", self.now))
            self.open[(service_id, key)] = group
            self.announce.add(
                "alert.group.opened",
                group,
                "Alert group #{id} opened: {title}",
                policy.actor_name,
                service_id=service_id,
                title=title,
            )
            if policy.auto_resolve_after is not None:
                timers.schedule(
                    self.session,
                    kind=AUTO_RESOLVE_TIMER,
                    key=f"group:{group_id}",
                    due_at=self.now + policy.auto_resolve_after,
                    payload={"group_id": group_id, "quiet_seconds": int(policy.auto_resolve_after.total_seconds())},
                    now=self.now,
                )
        group.added += 1
        group.firing += 1
        group.touched = True
        group.severity = rules.higher_severity(group.severity, severity)
        return group

    def repeated(self, group_id: int, severity: str) -> None:
        """An alert of the group was reported again: the quiet period starts over."""
        group = self.group(group_id)
        group.touched = True
        group.severity = rules.higher_severity(group.severity, severity)

    def ended(self, group_id: int) -> None:
        """A firing alert of the group was resolved by its sender."""
        group = self.group(group_id)
        group.firing -= 1
        group.touched = True

    def acknowledge(self, group_id: int, *, by: str) -> bool:
        """The sender acknowledged (PagerDuty's acknowledge, the generic webhook's acknowledged); False if the
        group was not waiting for it (acknowledged already, or resolved)."""
        group = self.group(group_id)
        done = self.connection.execute(
            _ACKNOWLEDGE_BY_SOURCE.values(acknowledged_at=self.now, acknowledged_by=by), {"group_id": group_id}
        ).first()
        if done is None:
            return False
        group.state = "acknowledged"
        self.announce.add(
            "alert.group.acknowledged", group, f"Alert group #{{id}} acknowledged by {by}", by, user_id=None
        )
        return True

    def finish(self) -> None:
        """Write every touched group's counters; resolve those whose last firing alert ended; announce."""
        for group in sorted(self.by_id.values(), key=lambda item: item.id):
            if not group.touched:
                continue
            firing, state = self.connection.execute(
                _TOUCH_GROUP,
                {
                    "group_id": group.id,
                    "added": group.added,
                    "firing": group.firing,
                    "now": self.now,
                    "new_severity": group.severity,
                },
            ).one()
            group.added = group.firing = 0
            group.touched = False
            if firing <= 0 and state in rules.OPEN_STATES:
                closed = self.connection.execute(
                    _CLOSE_BY_SOURCE.values(resolved_at=self.now), {"group_id": group.id}
                ).first()
                if closed is not None:
                    group.state = "resolved"
                    self.announce.add(
                        "alert.group.resolved",
                        group,
                        "Alert group #{id} resolved: every alert resolved at its source",
                        "source",
                        user_id=None,
                    )
        self.announce.flush(self.session, self.now)

    def release(self, alerts: Iterable[tuple[int, str]]) -> None:
        """Close the open suppression records of these alerts, each with its outcome: ``grouped`` (its silence
        ended while it fired), ``silenced`` (another silence took over) or ``resolved``."""
        params = [
            {"released_alert": alert_id, "released_at": self.now, "release_outcome": outcome}
            for alert_id, outcome in alerts
        ]
        if params:
            self.connection.execute(_RELEASE_SUPPRESSION, params)


def _close(
    group: AlertGroup,
    *,
    now: datetime,
    resolution: str,
    by: str,
    user_id: int | None,
    announce: Announcements,
    actor: str,
) -> None:
    group.state = "resolved"
    group.resolved_at = now
    group.resolved_by = by
    group.resolved_by_user_id = user_id
    group.resolution = resolution
    group.snoozed_until = None
    summaries = {
        "source": "Alert group #{id} resolved: every alert resolved at its source",
        "auto": "Alert group #{id} resolved automatically after a quiet period",
        "manual": f"Alert group #{{id}} resolved by {by}",
    }
    announce.add("alert.group.resolved", group, summaries[resolution], actor, user_id=user_id)


def _resolve_alerts_of(session: Session, group: AlertGroup, *, now: datetime, by: str) -> None:
    """Every alert of the group still firing ends with it (so the next report of one opens a new alert)."""
    session.flush()
    session.execute(
        update(Alert)
        .where(Alert.group_id == group.id, Alert.status == "firing")
        .values(status="resolved", resolved_at=now, resolved_by=by)
        .execution_options(synchronize_session="fetch")
    )
    group.firing_count = 0


# ------------------------------------------------------------------------------------------ human actions


def get_group(session: Session, group_id: int) -> AlertGroup:
    group = session.get(AlertGroup, group_id)
    if group is None:
        raise NotFound(f"There is no alert group {group_id}.")
    return group


def locked_group(session: Session, group_id: int) -> AlertGroup:
    """The group, read again under its advisory lock and a row lock (PostgreSQL), for a change."""
    group = get_group(session, group_id)
    take_locks(session, [group_lock(group.service_id, group.group_key)])
    refreshed = session.scalars(
        select(AlertGroup).where(AlertGroup.id == group_id).with_for_update().execution_options(populate_existing=True)
    ).one()
    return refreshed


def _state_snapshot(group: AlertGroup) -> dict[str, Any]:
    return {
        "state": group.state,
        "snoozedUntil": group.snoozed_until.isoformat() if group.snoozed_until else None,
    }


def _refuse(exc: rules.TransitionRefused, group: AlertGroup) -> Conflict:
    return Conflict(f"Alert group #{group.id}: {exc}.", errors=[], currentState=group.state)


def acknowledge(
    session: Session, *, actor: Principal | None, group_id: int, now: datetime, by: str | None = None
) -> AlertGroup:
    """A person (``actor``) or a sender (``by``: PagerDuty's acknowledge event) acknowledges the group. Doing
    it again changes nothing."""
    if actor is not None:
        actor.require_write()
    group = locked_group(session, group_id)
    try:
        rules.next_state(group.state, "acknowledge")
    except rules.TransitionRefused as exc:
        raise _refuse(exc, group) from None
    if group.state == "acknowledged":
        return group
    before = _state_snapshot(group)
    announce = Announcements()
    _acknowledge(group, actor=actor, by=by, now=now, announce=announce)
    if actor is not None:
        _audit(session, actor, group, "acknowledge", before, now)
    announce.flush(session, now)
    return group


def _acknowledge(
    group: AlertGroup, *, actor: Principal | None, by: str | None, now: datetime, announce: Announcements
) -> None:
    name = actor.name if actor is not None else (by or "source")
    user_id = actor.user_id if actor is not None else None
    group.state = "acknowledged"
    group.acknowledged_at = now
    group.acknowledged_by = name
    group.acknowledged_by_user_id = user_id
    group.snoozed_until = None
    announce.add(
        "alert.group.acknowledged", group, f"Alert group #{{id}} acknowledged by {name}", name, user_id=user_id
    )


def resolve(session: Session, *, actor: Principal, group_id: int, now: datetime) -> AlertGroup:
    """A person resolves the group and, with it, every alert of it still firing. Again: nothing changes."""
    actor.require_write()
    group = locked_group(session, group_id)
    if group.state == "resolved":
        return group
    before = _state_snapshot(group)
    announce = Announcements()
    _resolve_alerts_of(session, group, now=now, by=actor.name)
    _close(
        group, now=now, resolution="manual", by=actor.name, user_id=actor.user_id, announce=announce, actor=actor.name
    )
    _audit(session, actor, group, "resolve", before, now)
    announce.flush(session, now)
    return group


def snooze(
    session: Session,
    *,
    actor: Principal,
    group_id: int,
    now: datetime,
    duration: timedelta | None = None,
    until: datetime | None = None,
) -> AlertGroup:
    """Quiet the group until a time (at most a week): escalation pauses; at the end it is triggered again
    (``alert.group.reopened``) unless it was resolved or acknowledged meanwhile."""
    actor.require_write()
    try:
        end = rules.snooze_until(now, duration=duration, until=until)
    except ValueError as exc:
        raise InvalidInput(str(exc).capitalize() + ".", errors=[]) from None
    group = locked_group(session, group_id)
    try:
        rules.next_state(group.state, "snooze")
    except rules.TransitionRefused as exc:
        raise _refuse(exc, group) from None
    before = _state_snapshot(group)
    group.state = "snoozed"
    group.snoozed_until = end
    timers.schedule(
        session, kind=SNOOZE_TIMER, key=f"group:{group.id}", due_at=end, payload={"group_id": group.id}, now=now
    )
    announce = Announcements()
    announce.add(
        "alert.group.snoozed",
        group,
        f"Alert group #{{id}} snoozed by {actor.name} until {end:%Y-%m-%d %H:%M} UTC",
        actor.name,
        until=end,
    )
    _audit(session, actor, group, "snooze", before, now)
    announce.flush(session, now)
    return group


def _audit(
    session: Session, actor: Principal, group: AlertGroup, action: str, before: dict[str, Any], now: datetime
) -> None:
    """Human actions on a group are audited (with the state before and after); a sender's are not."""
    audit.record(
        session,
        actor=actor,
        action=action,
        kind="AlertGroup",
        key=str(group.id),
        before=before,
        after=_state_snapshot(group),
        now=now,
    )


# ------------------------------------------------------------------------------------------------- timers


def wake(session: Session, *, group_id: int, now: datetime) -> datetime | None:
    """The snooze timer: a group still snoozed when its snooze ends is triggered again. Returns a new due
    time when the snooze was moved later (snoozed again) and this timer is early."""
    group = session.get(AlertGroup, group_id)
    if group is None or group.state != "snoozed" or group.snoozed_until is None:
        return None
    if group.snoozed_until > now:
        return group.snoozed_until
    group = locked_group(session, group_id)
    if group.state != "snoozed":
        return None
    group.state = "triggered"
    group.snoozed_until = None
    announce = Announcements()
    announce.add(
        "alert.group.reopened",
        group,
        "Alert group #{id} triggered again: its snooze ended",
        "relia",
        service_id=group.service_id,
        title=group.title,
    )
    announce.flush(session, now)
    return None


def auto_resolve(session: Session, *, group_id: int, quiet: timedelta, now: datetime) -> datetime | None:
    """The quiet-period timer: resolve the group when no alert of it was reported for ``quiet``; otherwise
    come back when that will next be true."""
    group = session.get(AlertGroup, group_id)
    if group is None or group.state not in rules.OPEN_STATES:
        return None
    if group.last_alert_at + quiet > now:
        return group.last_alert_at + quiet
    group = locked_group(session, group_id)
    if group.state not in rules.OPEN_STATES:
        return None
    if group.last_alert_at + quiet > now:
        return group.last_alert_at + quiet
    announce = Announcements()
    _resolve_alerts_of(session, group, now=now, by="auto")
    _close(group, now=now, resolution="auto", by="auto-resolve", user_id=None, announce=announce, actor="relia")
    announce.flush(session, now)
    return None
