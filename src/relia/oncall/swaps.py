"""Swap requests: someone offers their on-call time in a window, a team mate takes it, and from then on the taker
is on call instead of the requester there. Rights: anyone may offer their own time, team managers anyone's;
members of the schedule's team take; the requester, the taker, team managers and administrators cancel."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from relia.catalog.models import User
from relia.core import audit
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from relia.oncall.models import Schedule, SwapRequest
from relia.oncall.schemas import SwapCreate, SwapTake
from relia.oncall.service import KIND, get_schedule, record_history, shifts


def list_swaps(session: Session, *, schedule: str, include_closed: bool = True) -> list[SwapRequest]:
    row = get_schedule(session, schedule)
    statement = (
        select(SwapRequest)
        .where(SwapRequest.schedule_id == row.id)
        .options(joinedload(SwapRequest.requester), joinedload(SwapRequest.taker))
        .order_by(SwapRequest.start, SwapRequest.id)
    )
    if not include_closed:
        statement = statement.where(SwapRequest.status != "cancelled")
    return list(session.scalars(statement).unique())


def swaps_involving(session: Session, *, username: str, teams: Iterable[int], now: datetime) -> list[SwapRequest]:
    """Open or taken swaps not yet over that ``username`` asked for or took, and open ones on their teams'
    schedules (which they could take)."""
    user_id = session.scalar(select(User.id).where(User.username == username))
    conditions = [Schedule.team_id.in_(list(teams)) & (SwapRequest.status == "open")]
    if user_id is not None:
        conditions += [SwapRequest.requester_id == user_id, SwapRequest.taker_id == user_id]
    return list(
        session.scalars(
            select(SwapRequest)
            .join(Schedule, SwapRequest.schedule_id == Schedule.id)
            .where(or_(*conditions), SwapRequest.status != "cancelled", SwapRequest.end > now)
            .options(joinedload(SwapRequest.requester), joinedload(SwapRequest.taker))
            .order_by(SwapRequest.start, SwapRequest.id)
        ).unique()
    )


def swap_schedule_name(session: Session, swap: SwapRequest) -> str:
    return session.scalar(select(Schedule.name).where(Schedule.id == swap.schedule_id)) or ""


def _user(session: Session, username: str, path: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise InvalidInput(f"There is no user {username!r}.", errors=[FieldError(path, "no such user")])
    return user


def _swap(session: Session, schedule: Schedule, swap_id: int) -> SwapRequest:
    swap = session.scalars(
        select(SwapRequest).where(SwapRequest.id == swap_id, SwapRequest.schedule_id == schedule.id).with_for_update()
    ).one_or_none()
    if swap is None:
        raise NotFound(f"Schedule {schedule.name!r} has no swap request {swap_id}.")
    return swap


def swap_record(swap: SwapRequest, schedule: str) -> dict[str, Any]:
    return {
        "schedule": schedule,
        "requester": swap.requester.username,
        "taker": swap.taker.username if swap.taker else None,
        "start": swap.start.isoformat(),
        "end": swap.end.isoformat(),
        "status": swap.status,
        "note": swap.note,
    }


def request_swap(session: Session, *, actor: Principal, schedule: str, data: SwapCreate, now: datetime) -> SwapRequest:
    """Offer on-call time to others. Anyone may offer their own time; team managers (and administrators) may
    offer someone else's. Refused when the time is over or the person has none in the window."""
    row = get_schedule(session, schedule)
    requester_name = data.requester or actor.name
    if requester_name == actor.name and actor.user_id is not None:
        actor.require_write()
    else:
        actor.require_team_manager(row.team_id, f"swaps for others on schedule {schedule!r}")
    requester = _user(session, requester_name, "requester")
    if data.end <= now:
        raise InvalidInput(
            "That time is over; only future on-call time can be swapped.", errors=[FieldError("end", "in the past")]
        )
    window_start = max(data.start, now)
    mine = [
        item
        for item in shifts(session, schedule=schedule, start=window_start, end=data.end)
        if item.username == requester_name
    ]
    if not mine:
        raise InvalidInput(
            f"{requester_name} is not on call for {schedule} between {window_start:%Y-%m-%d %H:%M} and "
            f"{data.end:%Y-%m-%d %H:%M} UTC: there is nothing to swap.",
            errors=[FieldError("start", "no on-call time of the requester in this window")],
        )
    swap = SwapRequest(
        schedule_id=row.id,
        requester=requester,
        start=data.start,
        end=data.end,
        status="open",
        note=data.note,
        created_at=now,
        created_by=actor.name,
    )
    session.add(swap)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="request-swap",
        kind=KIND,
        key=schedule,
        before=None,
        after=swap_record(swap, schedule),
        now=now,
    )
    return swap


def take_swap(
    session: Session, *, actor: Principal, schedule: str, swap_id: int, data: SwapTake, now: datetime
) -> SwapRequest:
    """Take an open swap: the taker is on call instead of the requester in its window from then on. Members of
    the schedule's team may take one for themselves; managers may give it to a member."""
    row = get_schedule(session, schedule)
    taker_name = data.taker or actor.name
    if taker_name == actor.name and actor.user_id is not None:
        actor.require_team(row.team_id, f"swaps on schedule {schedule!r}")
    else:
        actor.require_team_manager(row.team_id, f"swaps for others on schedule {schedule!r}")
    swap = _swap(session, row, swap_id)
    if swap.status != "open":
        raise Conflict(f"Swap request {swap_id} is {swap.status}, not open.")
    if swap.end <= now:
        raise Conflict(f"Swap request {swap_id} is over: its window ended at {swap.end:%Y-%m-%d %H:%M} UTC.")
    taker = _user(session, taker_name, "taker")
    if taker.id == swap.requester_id:
        raise InvalidInput("The requester cannot take their own swap.", errors=[FieldError("taker", "the requester")])
    before = swap_record(swap, schedule)
    record_history(session, schedule=row, now=now)
    swap.taker, swap.status, swap.decided_at, swap.decided_by = taker, "taken", now, actor.name
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="take-swap",
        kind=KIND,
        key=schedule,
        before=before,
        after=swap_record(swap, schedule),
        now=now,
    )
    return swap


def cancel_swap(session: Session, *, actor: Principal, schedule: str, swap_id: int, now: datetime) -> SwapRequest:
    """Withdraw a swap (open or taken): the requester, the taker, team managers and administrators may."""
    row = get_schedule(session, schedule)
    swap = _swap(session, row, swap_id)
    actor.require_write()
    involved = actor.user_id is not None and actor.user_id in (swap.requester_id, swap.taker_id)
    if not involved and not (actor.acts_as_admin or row.team_id in actor.managed_team_ids):
        raise Forbidden("Only the requester, the taker, the team's managers or an administrator may cancel a swap.")
    if swap.status == "cancelled":
        raise Conflict(f"Swap request {swap_id} is cancelled already.")
    before = swap_record(swap, schedule)
    if swap.status == "taken":
        record_history(session, schedule=row, now=now)
    swap.status, swap.decided_at, swap.decided_by = "cancelled", now, actor.name
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="cancel-swap",
        kind=KIND,
        key=schedule,
        before=before,
        after=swap_record(swap, schedule),
        now=now,
    )
    return swap
