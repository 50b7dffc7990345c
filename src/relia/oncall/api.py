"""On-call routes: schedules, who is on call, shifts, history, fairness, swaps, calendar subscriptions. Thin:
parse, call the service, commit, shape."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from relia.api.deps import NO_CREDENTIALS, IfMatchDep, NowDep, PageDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.core.errors import NotFound
from relia.core.schemas import Page
from relia.oncall import calendars, ical, service, swaps
from relia.oncall.models import CalendarFeed, Schedule, SwapRequest
from relia.oncall.schemas import (
    FairnessOut,
    FeedCreate,
    FeedCreated,
    FeedOut,
    HistoryShiftOut,
    OnCallOut,
    PersonLoadOut,
    ScheduleCreate,
    ScheduleOnCallOut,
    ScheduleOut,
    ScheduleSpec,
    ShiftOut,
    SpreadOut,
    SwapCreate,
    SwapOut,
    SwapTake,
)

router = APIRouter(tags=["on-call"])
Name = Annotated[str, Path(max_length=63, description="The schedule's name")]
SwapId = Annotated[int, Path(ge=1, le=2**62)]
DEFAULT_SPAN = timedelta(days=28)
CALENDAR_MEDIA_TYPE = "text/calendar"

Start = Annotated[datetime | None, Query(description="Default: now")]
End = Annotated[datetime | None, Query(description="Default: four weeks after start; at most 366 days after it")]
At = Annotated[datetime | None, Query(description="Default: now")]
ScheduleNames = Annotated[
    list[str] | None, Query(alias="schedule", max_length=500, description="Repeat for several; default: every one")
]


def _range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    start = start or now
    return start, end or start + DEFAULT_SPAN


def on_call_out(item: service.OnCall) -> OnCallOut:
    return OnCallOut(
        schedule=item.schedule,
        user=item.username,
        name=item.name,
        source=item.source,  # type: ignore[arg-type]
        layer=item.layer,
        shift_start=item.shift_start,
        shift_end=item.shift_end,
    )


def shift_out(item: service.Shift) -> ShiftOut:
    return ShiftOut(
        schedule=item.schedule,
        user=item.username,
        name=item.name,
        source=item.source,  # type: ignore[arg-type]
        layer=item.layer,
        start=item.start,
        end=item.end,
    )


def schedule_out(schedule: Schedule, on_call: list[service.OnCall]) -> ScheduleOut:
    return ScheduleOut(
        name=schedule.name,
        team=schedule.team.slug,
        spec=service.schedule_spec(schedule),
        on_call=[on_call_out(item) for item in on_call],
        version=schedule.version,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
    )


def _one_out(session: Session, schedule: Schedule, now: datetime) -> ScheduleOut:
    return schedule_out(schedule, service.on_call(session, schedule=schedule.name, at=now))


# ------------------------------------------------------------------------------------------------ schedules


@router.get("/schedules", summary="List on-call schedules, with who is on call now")
def list_schedules(
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    page: PageDep,
    team: Annotated[str | None, Query(max_length=63, description="Only this team's schedules")] = None,
) -> Page[ScheduleOut]:
    schedules, next_cursor = service.list_schedules(session, cursor=page.cursor, limit=page.limit, team=team)
    on_call = service.on_call_many(session, schedules=[item.name for item in schedules], at=now) if schedules else {}
    return Page[ScheduleOut](
        items=[schedule_out(item, on_call[item.name]) for item in schedules], next_cursor=next_cursor
    )


@router.post(
    "/schedules",
    summary="Create a schedule (members of its team)",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_schedule(
    body: ScheduleCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response
) -> ScheduleOut:
    schedule = service.create_schedule(session, actor=actor, data=body, now=now)
    out = _one_out(session, schedule, now)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/schedules/{name}", summary="A schedule with who is on call now", responses=NOT_FOUND)
def get_schedule(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response) -> ScheduleOut:
    schedule = service.get_schedule(session, name)
    response.headers["ETag"] = etag(schedule.version)
    return _one_out(session, schedule, now)


@router.put("/schedules/{name}", summary="Replace a schedule's definition", responses={**NOT_FOUND, **CONFLICT})
def put_schedule(
    name: Name,
    body: ScheduleSpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> ScheduleOut:
    schedule = service.update_schedule(session, actor=actor, name=name, spec=body, now=now, if_match=if_match)
    out = _one_out(session, schedule, now)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/schedules/{name}",
    summary="Delete a schedule (its shift history is kept)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_schedule(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_schedule(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


# ------------------------------------------------------------------------------------ who, when, history


@router.get("/schedules/{name}/on-call", summary="Who is on call at an instant", responses=NOT_FOUND)
def schedule_on_call(
    name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, at: At = None
) -> list[OnCallOut]:
    return [on_call_out(item) for item in service.on_call(session, schedule=name, at=at or now)]


@router.get("/schedules/{name}/shifts", summary="The final rotation over a range", responses=NOT_FOUND)
def schedule_shifts(
    name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, start: Start = None, end: End = None
) -> list[ShiftOut]:
    first, last = _range(start, end, now)
    return [shift_out(item) for item in service.shifts(session, schedule=name, start=first, end=last)]


@router.get(
    "/schedules/{name}/history",
    summary="Who actually was on call: the recorded shift history (also of a deleted schedule)",
    responses=NOT_FOUND,
)
def schedule_history(
    name: Name,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    start: Annotated[datetime | None, Query(description="Default: four weeks before end")] = None,
    end: Annotated[datetime | None, Query(description="Default: now")] = None,
) -> list[HistoryShiftOut]:
    last = end or now
    first = start or last - DEFAULT_SPAN
    return [
        HistoryShiftOut(
            schedule=item.schedule,
            user=item.username,
            source=item.source,  # type: ignore[arg-type]
            layer=item.layer,
            start=item.start,
            end=item.end,
        )
        for item in service.recorded_shifts(session, schedule=name, start=first, end=last)
    ]


def fairness_out(report: service.Fairness) -> FairnessOut:
    most, least = report.most_loaded, report.least_loaded
    return FairnessOut(
        schedule=report.schedule,
        start=report.start,
        end=report.end,
        recorded_until=report.recorded_until,
        pages_counted=report.pages_counted,
        people=[
            PersonLoadOut(
                user=row.person.username,
                name=row.person.name,
                time_zone=row.person.time_zone,
                hours=round(row.load.hours, 2),
                off_hours=round(row.load.off_hours, 2),
                weekend_hours=round(row.load.weekend_hours, 2),
                pages=row.load.pages,
                night_pages=row.load.night_pages,
            )
            for row in report.people
        ],
        spread=SpreadOut(
            hours=round(report.spread("hours"), 2),
            off_hours=round(report.spread("off_hours"), 2),
            weekend_hours=round(report.spread("weekend_hours"), 2),
            pages=int(report.spread("pages")),
            night_pages=int(report.spread("night_pages")),
        ),
        most_loaded=most.person.username if most else None,
        least_loaded=least.person.username if least else None,
        notes=report.notes,
    )


@router.get(
    "/schedules/{name}/fairness",
    summary="Each person's load over a period: hours, off-hours, weekend hours, pages, night pages",
    responses=NOT_FOUND,
)
def schedule_fairness(
    name: Name,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    start: Annotated[datetime | None, Query(description="Default: four weeks before now")] = None,
    end: Annotated[datetime | None, Query(description="Default: four weeks after start")] = None,
) -> FairnessOut:
    first = start or now - DEFAULT_SPAN
    return fairness_out(service.fairness(session, schedule=name, start=first, end=end or first + DEFAULT_SPAN, now=now))


@router.get("/oncall/who", summary="Who is on call, for many schedules at once", responses=NOT_FOUND)
def who(
    session: SessionDep, actor: PrincipalDep, now: NowDep, schedules: ScheduleNames = None, at: At = None
) -> list[ScheduleOnCallOut]:
    found = service.on_call_many(session, schedules=schedules, at=at or now)
    return [
        ScheduleOnCallOut(schedule=name, on_call=[on_call_out(item) for item in items]) for name, items in found.items()
    ]


@router.get("/oncall/shifts", summary="The final rotation of many schedules over a range", responses=NOT_FOUND)
def many_shifts(
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    schedules: ScheduleNames = None,
    start: Start = None,
    end: End = None,
) -> list[ShiftOut]:
    first, last = _range(start, end, now)
    found = service.shifts_many(session, schedules=schedules, start=first, end=last)
    return [shift_out(item) for items in found.values() for item in items]


@router.get("/oncall/users/{username}/shifts", summary="One person's shifts on every schedule")
def user_shifts(
    username: Annotated[str, Path(max_length=63)],
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    start: Start = None,
    end: End = None,
) -> list[ShiftOut]:
    first, last = _range(start, end, now)
    return [shift_out(item) for item in service.user_shifts(session, username=username, start=first, end=last)]


# ---------------------------------------------------------------------------------------------------- swaps


def swap_out(swap: SwapRequest, schedule: str) -> SwapOut:
    return SwapOut(
        id=swap.id,
        schedule=schedule,
        requester=swap.requester.username,
        taker=swap.taker.username if swap.taker else None,
        start=swap.start,
        end=swap.end,
        status=swap.status,  # type: ignore[arg-type]
        note=swap.note,
        created_at=swap.created_at,
        created_by=swap.created_by,
        decided_at=swap.decided_at,
        decided_by=swap.decided_by,
    )


@router.get("/schedules/{name}/swaps", summary="Swap requests of a schedule", responses=NOT_FOUND)
def list_swaps(name: Name, session: SessionDep, actor: PrincipalDep) -> list[SwapOut]:
    return [swap_out(swap, name) for swap in swaps.list_swaps(session, schedule=name)]


@router.post(
    "/schedules/{name}/swaps",
    summary="Offer your on-call time in a window to someone else",
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
def request_swap(name: Name, body: SwapCreate, session: SessionDep, actor: PrincipalDep, now: NowDep) -> SwapOut:
    out = swap_out(swaps.request_swap(session, actor=actor, schedule=name, data=body, now=now), name)
    session.commit()
    return out


@router.post(
    "/schedules/{name}/swaps/{swap_id}/take",
    summary="Take an open swap: you are on call instead of the requester in its window",
    responses={**NOT_FOUND, **CONFLICT},
)
def take_swap(
    name: Name, swap_id: SwapId, body: SwapTake, session: SessionDep, actor: PrincipalDep, now: NowDep
) -> SwapOut:
    swap = swaps.take_swap(session, actor=actor, schedule=name, swap_id=swap_id, data=body, now=now)
    out = swap_out(swap, name)
    session.commit()
    return out


@router.post(
    "/schedules/{name}/swaps/{swap_id}/cancel",
    summary="Withdraw a swap (open or taken)",
    responses={**NOT_FOUND, **CONFLICT},
)
def cancel_swap(name: Name, swap_id: SwapId, session: SessionDep, actor: PrincipalDep, now: NowDep) -> SwapOut:
    out = swap_out(swaps.cancel_swap(session, actor=actor, schedule=name, swap_id=swap_id, now=now), name)
    session.commit()
    return out


# ------------------------------------------------------------------------------------------ calendars


def feed_url(request: Request, token: str) -> str:
    return str(request.url_for("calendar", token=token))


def _feed_out(feed: CalendarFeed) -> FeedOut:
    return FeedOut(schedule=feed.schedule.name if feed.schedule else None, created_at=feed.created_at)


@router.post(
    "/oncall/calendar-feeds",
    summary="A calendar subscription URL for you: your shifts, or one schedule (replaces your previous one)",
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **CONFLICT},
)
def create_feed(
    body: FeedCreate, request: Request, session: SessionDep, actor: PrincipalDep, now: NowDep
) -> FeedCreated:
    feed, token = calendars.create_feed(session, actor=actor, schedule=body.schedule, now=now)
    out = FeedCreated(schedule=body.schedule, created_at=feed.created_at, url=feed_url(request, token))
    session.commit()
    return out


@router.get("/oncall/calendar-feeds", summary="Your calendar subscriptions (never their URLs)")
def list_feeds(session: SessionDep, actor: PrincipalDep) -> list[FeedOut]:
    return [_feed_out(feed) for feed in calendars.list_feeds(session, actor=actor)]


@router.delete(
    "/oncall/calendar-feeds",
    summary="Revoke your calendar subscription URL",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def revoke_feed(
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    schedule: Annotated[str | None, Query(max_length=63, description="Left out: your personal feed")] = None,
) -> None:
    calendars.revoke_feed(session, actor=actor, schedule=schedule, now=now)
    session.commit()


@router.get(
    "/oncall/calendars/{token}.ics",
    name="calendar",
    summary="A calendar subscription (no sign-in: the secret in the URL is the credential)",
    openapi_extra=NO_CREDENTIALS,
    response_class=Response,
    responses={
        200: {
            "description": "An iCalendar file (RFC 5545)",
            "content": {CALENDAR_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **NOT_FOUND,
    },
)
def calendar(token: Annotated[str, Path(max_length=100)], session: SessionDep, now: NowDep) -> Response:
    feed = calendars.feed_for_token(session, token)
    if feed is None:
        # The same answer for a token that never existed and one rotated away: nothing to learn from it.
        raise NotFound("There is no calendar at this address.")
    start, end = ical.feed_range(now)
    owner = feed.owner
    if feed.schedule is not None:
        schedule = feed.schedule
        spec = service.parsed_spec(schedule)
        shifts = service.shifts(session, schedule=schedule.name, start=start, end=end)
        title = service.title(schedule, spec)
        body = ical.render(
            shifts, calendar_name=f"On call: {title}", time_zone=spec.time_zone, now=now, titles={schedule.name: title}
        )
    else:
        shifts = service.user_shifts(session, username=owner.username, start=start, end=end)
        titles = service.titles(session, {shift.schedule for shift in shifts})
        body = ical.render(
            shifts, calendar_name=f"On call: {owner.name}", time_zone=owner.time_zone, now=now, titles=titles
        )
    return Response(
        body,
        media_type=CALENDAR_MEDIA_TYPE,
        headers={"Cache-Control": "private, max-age=300", "Content-Disposition": 'inline; filename="on-call.ics"'},
    )
