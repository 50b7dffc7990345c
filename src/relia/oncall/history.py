"""The shift history: who actually was on call, written forward as time passes and never rewritten.

Each schedule has a mark (how far its history is written, and who was on call at that moment). Catching up to
``now`` computes the final on-call intervals from the mark to ``now`` with the schedule as it is defined at that
time, and appends a ``began`` row when someone comes on call and an ``ended`` row (carrying when the shift
began) when they go off, at the exact instants the schedule says. The worker's tick catches every schedule up;
a change to a schedule or a swap catches that schedule up first, so an edit only ever changes the future.
A shift here is a person's continuous stretch on call, whatever put them there (it records the source and layer
that started it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.core import hooks
from relia.oncall import rules
from relia.oncall.models import HistoryMark, Schedule, ShiftEvent

# A tick writes at most this much of one schedule's history (a worker that was down for months catches up over a
# few ticks instead of in one long transaction).
MAX_CATCH_UP = timedelta(days=31)

SHIFT_BEGAN, SHIFT_ENDED = "oncall.shift.began", "oncall.shift.ended"


@dataclass(frozen=True)
class RecordedShift:
    schedule: str
    user_id: int | None
    username: str
    source: str
    layer: str | None
    start: datetime
    end: datetime | None  # None while it is still under way


def start_mark(session: Session, schedule: Schedule, now: datetime) -> None:
    """A new schedule's history starts when it is created."""
    session.add(HistoryMark(schedule_id=schedule.id, recorded_through=now, open_shifts={}))


def mark_of(session: Session, schedule_id: int, *, lock: bool = False) -> HistoryMark | None:
    statement = select(HistoryMark).where(HistoryMark.schedule_id == schedule_id)
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def catch_up(
    session: Session,
    *,
    schedule: Schedule,
    mark: HistoryMark,
    compiled: rules.Schedule,
    user_ids: dict[str, int],
    now: datetime,
) -> int:
    """Write the history from the mark up to ``now`` (at most MAX_CATCH_UP of it); returns the rows written.
    Each row is also announced in this transaction as an ``oncall.shift.began`` / ``oncall.shift.ended`` hook."""
    since = mark.recorded_through
    if now <= since:
        return 0
    until = min(now, since + MAX_CATCH_UP)
    intervals = rules.final_intervals(compiled, since, until)
    opened: dict[str, dict[str, Any]] = dict(mark.open_shifts or {})
    changes = sorted({since, *(item.start for item in intervals), *(item.end for item in intervals)} - {until})
    written = 0
    for instant in changes:
        on_call: dict[str, tuple[str, str | None]] = {}
        for item in intervals:
            if item.covers(instant):
                on_call.setdefault(str(item.user), (item.source, item.layer))
        for username in [name for name in opened if name not in on_call]:
            began = opened.pop(username)
            _append(session, schedule, username, user_ids, "ended", instant, now, began)
            written += 1
        for username, (source, layer) in on_call.items():
            if username not in opened:
                opened[username] = {
                    "since": instant.isoformat(),
                    "source": source,
                    "layer": layer,
                    "userId": user_ids.get(username),
                }
                _append(session, schedule, username, user_ids, "began", instant, now, opened[username])
                written += 1
    mark.recorded_through = until
    mark.open_shifts = opened
    return written


def close_all(session: Session, *, schedule: Schedule, mark: HistoryMark, now: datetime) -> int:
    """End every open shift at ``now`` (the schedule is going away)."""
    opened = dict(mark.open_shifts or {})
    for username, began in opened.items():
        _append(session, schedule, username, {}, "ended", now, now, began)
    mark.open_shifts = {}
    return len(opened)


def _append(
    session: Session,
    schedule: Schedule,
    username: str,
    user_ids: dict[str, int],
    event: str,
    at: datetime,
    now: datetime,
    began: dict[str, Any],
) -> None:
    row = ShiftEvent(
        schedule_id=schedule.id,
        schedule_name=schedule.name,
        user_id=began.get("userId", user_ids.get(username)),
        username=username,
        event=event,
        at=at,
        began_at=datetime.fromisoformat(began["since"]) if event == "ended" else None,
        source=began["source"],
        layer=began["layer"],
        recorded_at=now,
    )
    session.add(row)
    hooks.emit(
        session,
        SHIFT_BEGAN if event == "began" else SHIFT_ENDED,
        schedule=schedule.name,
        username=username,
        user_id=row.user_id,
        at=at,
        source=row.source,
        layer=row.layer,
    )


def read(
    session: Session, *, schedule_name: str, start: datetime, end: datetime, mark: HistoryMark | None
) -> list[RecordedShift]:
    """Recorded shifts overlapping ``[start, end)``, unclipped, in order of start; shifts still under way
    come from the mark."""
    rows = session.scalars(
        select(ShiftEvent)
        .where(
            ShiftEvent.schedule_name == schedule_name,
            ShiftEvent.event == "ended",
            ShiftEvent.at > start,
            ShiftEvent.began_at < end,
        )
        .order_by(ShiftEvent.began_at, ShiftEvent.id)
    ).all()
    shifts = [
        RecordedShift(
            schedule=schedule_name,
            user_id=row.user_id,
            username=row.username,
            source=row.source,
            layer=row.layer,
            start=row.began_at or row.at,
            end=row.at,
        )
        for row in rows
    ]
    if mark is not None and mark.recorded_through > start:
        for username, began in sorted((mark.open_shifts or {}).items()):
            since = datetime.fromisoformat(began["since"])
            if since < end:
                shifts.append(
                    RecordedShift(
                        schedule=schedule_name,
                        user_id=began.get("userId"),
                        username=username,
                        source=began["source"],
                        layer=began["layer"],
                        start=since,
                        end=None,
                    )
                )
    return sorted(shifts, key=lambda shift: (shift.start, shift.username))
