"""On-call pages: the schedules with who is on call now, one schedule (its layers and the final rotation on a
timeline, the shifts, overrides and swaps, fairness, a calendar URL), and "my on-call" (your shifts across
schedules, swaps you can take or cancel, a swap request form, your calendar URL).

Thin routes as elsewhere: read through ``relia.oncall.service``, shape for the templates under
``templates/oncall/``, write only through the service with the signed-in user's rights. The timeline is HTML:
positioned bars in lists, each with the person's name on it and the whole shift in words for screen readers, so
it reads without JavaScript or colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from relia.api.deps import SessionDep
from relia.catalog.models import User
from relia.core.auth import Principal, Scope
from relia.core.errors import ReliaError
from relia.oncall import calendars, rules, service, swaps
from relia.oncall.schemas import ScheduleSpec, SwapCreate, SwapTake
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
Name = Annotated[str, Path(max_length=63)]
SwapId = Annotated[int, Path(ge=1, le=2**62)]

DEFAULT_DAYS, MAX_DAYS = 7, 28
UPCOMING = timedelta(days=28)
FAIRNESS_SPAN = timedelta(days=28)
PALETTE_SIZE = 8
SOURCE_WORDS = {"layer": "layer", "override": "override", "swap": "swap", "temporary": "temporary schedule"}
NOTICES = {
    "swap-requested": "Swap requested. Your team can take it on their My on-call page.",
    "swap-taken": "Swap taken: those hours are yours now.",
    "swap-cancelled": "Swap cancelled.",
}


# ------------------------------------------------------------------------------------------------ helpers


def local_time(instant: datetime, zone: str) -> str:
    """ "Mon 2 Mar 09:00 CET" on ``zone``'s clock."""
    local = instant.astimezone(rules.zone_info(zone))
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"


def local_iso(instant: datetime, zone: str) -> str:
    return instant.astimezone(rules.zone_info(zone)).isoformat()


def hours_text(hours: float) -> str:
    return f"{hours:.1f}".removesuffix(".0")


templates.env.filters["oncall_time"] = local_time
templates.env.filters["oncall_iso"] = local_iso
templates.env.filters["oncall_hours"] = hours_text
templates.env.globals["oncall_sources"] = SOURCE_WORDS


def _viewer_user(session: Session, viewer: Principal) -> User | None:
    return session.get(User, viewer.user_id) if viewer.user_id is not None else None


def _why_not(viewer: Principal, team_name: str) -> str:
    if viewer.scope < Scope.write:
        return "You are signed in with a read-only credential, so you can read this schedule but not change it."
    return f"Only members of {team_name} (or an administrator) may change this schedule."


# ------------------------------------------------------------------------------------------------ timeline


@dataclass(frozen=True)
class Bar:
    left: float  # percent of the timeline's width
    width: float
    label: str
    words: str  # the whole shift, for screen readers and the tooltip
    person: int | None  # palette index; None for a bar that is not one person's (an override's window)


@dataclass
class TimelineRow:
    key: str
    title: str
    detail: str
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Timeline:
    start: datetime
    end: datetime
    zone: str
    days: list[tuple[float, str, bool]]  # left %, label, weekend
    rows: list[TimelineRow]
    now_left: float | None
    people: list[tuple[int, str, str]]  # palette index, username, name


def _position(start: datetime, end: datetime, span_start: datetime, span_end: datetime) -> tuple[float, float]:
    total = (span_end - span_start).total_seconds()
    left = max(0.0, (start - span_start).total_seconds() / total * 100)
    right = min(100.0, (end - span_start).total_seconds() / total * 100)
    return round(left, 3), round(max(0.0, right - left), 3)


def timeline(
    compiled: service.Compiled, names: dict[str, str], start: datetime, end: datetime, now: datetime
) -> Timeline:
    """Each layer's own shifts, the overrides, swaps and temporary schedules, and the final rotation, as bars
    over ``[start, end)`` with day marks on the schedule's clock."""
    zone = compiled.spec.time_zone
    palette: dict[str, int] = {}
    for layer in compiled.rules.layers:
        for user in layer.rotation.participants:
            palette.setdefault(str(user), len(palette) % PALETTE_SIZE)

    def bar(user: str, item_start: datetime, item_end: datetime, extra: str = "") -> Bar:
        palette.setdefault(user, len(palette) % PALETTE_SIZE)
        left, width = _position(max(item_start, start), min(item_end, end), start, end)
        words = f"{names.get(user, user)}, {local_time(item_start, zone)} to {local_time(item_end, zone)}{extra}"
        return Bar(left, width, user, words, palette[user])

    rows = []
    for layer in compiled.rules.layers:
        row = TimelineRow(key=f"layer-{layer.name}", title=f"Layer {layer.name}", detail=f"{layer.mode}, {layer.zone}")
        row.bars = [bar(str(item.user), item.start, item.end) for item in rules.layer_intervals(layer, start, end)]
        rows.append(row)
    changes = TimelineRow(key="changes", title="Overrides and swaps", detail="on top of the layers")
    for override in compiled.rules.overrides:
        if override.start < end and override.end > start:
            what = {"replace": "instead of " + str(override.replaces or "everyone"), "add": "as well", "remove": "off"}
            changes.bars.append(bar(str(override.user), override.start, override.end, f" ({what[override.mode]})"))
    for swap in compiled.rules.swaps:
        if swap.start < end and swap.end > start:
            changes.bars.append(bar(str(swap.taker), swap.start, swap.end, f" (swap, instead of {swap.requester})"))
    for window in compiled.rules.temporary:
        if window.start < end and window.end > start:
            left, width = _position(max(window.start, start), min(window.end, end), start, end)
            words = f"Temporary schedule, {local_time(window.start, zone)} to {local_time(window.end, zone)}"
            changes.bars.append(Bar(left, width, "temporary", words, None))
    if changes.bars:
        rows.append(changes)
    final = TimelineRow(key="final", title="Final rotation", detail="who is paged")
    for item in rules.final_intervals(compiled.rules, start, end):
        how = f"layer {item.layer}" if item.source == "layer" else SOURCE_WORDS[item.source]
        final.bars.append(bar(str(item.user), item.start, item.end, f" (through {how})"))
    rows.append(final)

    days: list[tuple[float, str, bool]] = []
    info = rules.zone_info(zone)
    day = rules.wall_clock(start, info).date()
    span_days = (end - start) / timedelta(days=1)
    while (midnight := rules.local_midnight(day, zone)) < end:
        if midnight >= start:
            days.append((_position(midnight, midnight, start, end)[0], _day_label(day, span_days), day.weekday() >= 5))
        day += timedelta(days=1)
    now_left = _position(now, now, start, end)[0] if start <= now < end else None
    people = sorted(((index, user, names.get(user, user)) for user, index in palette.items()), key=lambda p: p[1])
    return Timeline(start, end, zone, days, rows, now_left, people)


def _day_label(day: date, span_days: float) -> str:
    """Day marks short enough not to overlap: "Mon 6 Jul" for a week, "Mon 6" for two, "6" beyond (the
    caption names the dates)."""
    if span_days <= 8:
        return f"{day:%a} {day.day} {day:%b}"
    if span_days <= 15:
        return f"{day:%a} {day.day}"
    return str(day.day)


def _timeline_range(
    spec: ScheduleSpec, now: datetime, first_day: str | None, days: str | None
) -> tuple[datetime, datetime, date, int]:
    """The range a schedule page shows: from midnight (schedule clock) of ``first_day`` (default today), for
    ``days`` days; a bad value falls back to the default rather than failing the page."""
    zone = spec.time_zone
    count = int(days) if days and days.isdigit() and 1 <= int(days) <= MAX_DAYS else DEFAULT_DAYS
    try:
        day = date.fromisoformat(first_day) if first_day else None
    except ValueError:
        day = None
    if day is None or not 1971 <= day.year <= 2199:
        day = rules.wall_clock(now, rules.zone_info(zone)).date()
    return rules.local_midnight(day, zone), rules.local_midnight(day + timedelta(days=count), zone), day, count


# ------------------------------------------------------------------------------------------------ schedules


@router.get("/oncall", response_class=HTMLResponse)
@page
def schedules_page(request: Request, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    now = request.app.state.clock.now()
    schedules, more = service.list_schedules(session, limit=500)
    on_call = service.on_call_many(session, schedules=[item.name for item in schedules], at=now) if schedules else {}
    rows = [
        {
            "schedule": item,
            "spec": (spec := service.parsed_spec(item)),
            "title": service.title(item, spec),
            "on_call": on_call[item.name],
        }
        for item in schedules
    ]
    return _render(request, "oncall/list.html", viewer, rows=rows, truncated=more is not None, now=now)


@router.get("/oncall/schedules/{name}", response_class=HTMLResponse)
@page
def schedule_page(
    request: Request,
    name: Name,
    session: SessionDep,
    first_day: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    days: Annotated[str | None, Query(max_length=4, description="1 to 28; anything else shows a week")] = None,
    fairness: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    viewer = _viewer(request, session)
    return _schedule_page(request, session, viewer, name, first_day=first_day, days=days, fairness_period=fairness)


def _schedule_page(
    request: Request,
    session: Session,
    viewer: Principal,
    name: str,
    *,
    first_day: str | None = None,
    days: str | None = None,
    fairness_period: str | None = None,
    calendar_url: str | None = None,
    status_code: int = 200,
) -> Response:
    now = request.app.state.clock.now()
    compiled = service.compile_schedule(session, name)
    schedule, spec = compiled.row, compiled.spec
    start, end, day, count = _timeline_range(spec, now, first_day, days)
    shifts = service.shifts(session, schedule=name, start=start, end=end)
    names = {
        person.username: person.name
        for person in service.people(session, service.usernames_in(compiled.rules)).values()
    }
    names.update({shift.username: shift.name for shift in shifts})
    period = "past" if fairness_period == "past" else "next"
    fairness_start = now - FAIRNESS_SPAN if period == "past" else now
    report = service.fairness(session, schedule=name, start=fairness_start, end=fairness_start + FAIRNESS_SPAN, now=now)
    may_change = viewer.can_change_team(schedule.team_id)
    return _render(
        request,
        "oncall/schedule.html",
        viewer,
        status_code=status_code,
        schedule=schedule,
        spec=spec,
        title=service.title(schedule, spec),
        on_call=service.on_call(session, schedule=name, at=now),
        timeline=timeline(compiled, names, start, end, now),
        shifts=shifts,
        names=names,
        day=day,
        days=count,
        previous_day=(day - timedelta(days=count)).isoformat(),
        next_day=(day + timedelta(days=count)).isoformat(),
        today=rules.wall_clock(now, rules.zone_info(spec.time_zone)).date().isoformat(),
        layers=[layer_words(layer, spec) for layer in spec.layers],
        swaps=swaps.list_swaps(session, schedule=name, include_closed=False),
        fairness=report,
        fairness_period=period,
        may_change=may_change,
        refusal=None if may_change else _why_not(viewer, schedule.team.name),
        calendar_url=calendar_url,
        now=now,
    )


def layer_words(layer: Any, spec: ScheduleSpec) -> dict[str, Any]:
    """A layer's definition in words, for the definition table."""
    rotation = layer.rotation
    unit = {"h": "hour", "d": "day", "w": "week"}[rotation.turn[-1]]
    amount = int(rotation.turn[:-1])
    turn = f"{amount} {unit}{'s' if amount != 1 else ''}"
    restrictions = [
        f"{', '.join(day.capitalize() for day in item.days)} {item.start}"
        + (
            " for 24 hours"
            if item.start == item.end
            else f" to {item.end}" + (" (next day)" if item.end < item.start else "")
        )
        for item in layer.restrictions
    ]
    return {
        "name": layer.name,
        "mode": layer.mode,
        "zone": layer.time_zone or spec.time_zone,
        "participants": rotation.participants,
        "turn": turn,
        "handoff": f"{rotation.handoff:%a %Y-%m-%d %H:%M}",
        "advance": rotation.advance,
        "restrictions": restrictions or ["always"],
        "effective_from": layer.effective_from,
        "effective_until": layer.effective_until,
    }


@router.post("/oncall/schedules/{name}/calendar", response_class=HTMLResponse)
@page
def schedule_calendar_form(
    request: Request, name: Name, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    _, token = calendars.create_feed(session, actor=viewer, schedule=name, now=request.app.state.clock.now())
    session.commit()
    url = str(request.url_for("calendar", token=token))
    return _schedule_page(request, session, viewer, name, calendar_url=url)


# ---------------------------------------------------------------------------------------------- my on-call


@router.get("/oncall/me", response_class=HTMLResponse)
@page
def my_page(
    request: Request, session: SessionDep, notice: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    viewer = _viewer(request, session)
    return _my_page(request, session, viewer, notice=NOTICES.get(notice or ""))


def _my_page(
    request: Request,
    session: Session,
    viewer: Principal,
    *,
    notice: str | None = None,
    errors: list[str] | None = None,
    form: dict[str, str] | None = None,
    calendar_url: str | None = None,
    status_code: int = 200,
) -> Response:
    now = request.app.state.clock.now()
    user = _viewer_user(session, viewer)
    zone = user.time_zone if user else "UTC"
    upcoming = service.user_shifts(session, username=viewer.name, start=now, end=now + UPCOMING) if user else []
    current = [shift for shift in upcoming if shift.start <= now]
    involving = swaps.swaps_involving(session, username=viewer.name, teams=viewer.team_ids, now=now) if user else []
    schedule_names = {swap.schedule_id: swaps.swap_schedule_name(session, swap) for swap in involving}
    mine = sorted({shift.schedule for shift in upcoming})
    titles = service.titles(session, {*mine, *schedule_names.values()})
    feeds = calendars.list_feeds(session, actor=viewer)
    return _render(
        request,
        "oncall/me.html",
        viewer,
        status_code=status_code,
        user=user,
        zone=zone,
        current=current,
        upcoming=upcoming,
        swaps=involving,
        schedule_names=schedule_names,
        titles=titles,
        my_schedules=mine,
        personal_feed=next((feed for feed in feeds if feed.schedule_id is None), None),
        calendar_url=calendar_url,
        notice=notice,
        errors=errors or [],
        form=form or {},
        now=now,
    )


def _parse_local(text: str, zone: str, label: str) -> tuple[datetime | None, str | None]:
    """A time typed as ``2026-03-02 08:00`` on the viewer's clock; returns (instant, problem)."""
    cleaned = text.strip()
    if not cleaned:
        return None, f"{label}: required, e.g. 2026-03-02 08:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None, f"{label}: “{cleaned}” is not a time; write it as 2026-03-02 08:00"
    if parsed.tzinfo is None:
        parsed = rules.to_utc(parsed.replace(second=0, microsecond=0), rules.zone_info(zone))
    return parsed.astimezone(UTC), None


@router.post("/oncall/me/swaps", response_class=HTMLResponse)
@page
def request_swap_form(
    request: Request,
    session: SessionDep,
    schedule: Annotated[str, Form(max_length=63)] = "",
    start: Annotated[str, Form(max_length=40)] = "",
    end: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    user = _viewer_user(session, viewer)
    zone = user.time_zone if user else "UTC"
    form = {"schedule": schedule, "start": start, "end": end, "note": note}
    starts_at, start_problem = _parse_local(start, zone, "From")
    ends_at, end_problem = _parse_local(end, zone, "Until")
    problems = [problem for problem in (start_problem, end_problem) if problem]
    status_code = 422
    if not problems:
        try:
            data = SwapCreate.model_validate({"start": starts_at, "end": ends_at, "note": note.strip()})
            swaps.request_swap(session, actor=viewer, schedule=schedule, data=data, now=request.app.state.clock.now())
            session.commit()
        except ValidationError as exc:
            problems = [str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()]
        except ReliaError as exc:
            session.rollback()
            problems, status_code = [f"Nothing was changed: {exc.detail}"], exc.status
    if problems:
        return _my_page(request, session, viewer, errors=problems, form=form, status_code=status_code)
    return RedirectResponse("/oncall/me?notice=swap-requested#swaps-h", status_code=303)


@router.post("/oncall/schedules/{name}/swaps/{swap_id}/{action}", response_class=HTMLResponse)
@page
def swap_action_form(
    request: Request,
    name: Name,
    swap_id: SwapId,
    action: Annotated[str, Path(pattern="^(take|cancel)$")],
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    back: Annotated[str, Form(max_length=20)] = "me",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    now = request.app.state.clock.now()
    try:
        if action == "take":
            swaps.take_swap(session, actor=viewer, schedule=name, swap_id=swap_id, data=SwapTake(), now=now)
        else:
            swaps.cancel_swap(session, actor=viewer, schedule=name, swap_id=swap_id, now=now)
        session.commit()
    except ReliaError as exc:
        session.rollback()
        return _my_page(request, session, viewer, errors=[f"Nothing was changed: {exc.detail}"], status_code=exc.status)
    notice = "swap-taken" if action == "take" else "swap-cancelled"
    if back == "schedule":
        return RedirectResponse(f"/oncall/schedules/{quote(name)}#swaps-h", status_code=303)
    return RedirectResponse(f"/oncall/me?notice={notice}#swaps-h", status_code=303)


@router.post("/oncall/me/calendar", response_class=HTMLResponse)
@page
def my_calendar_form(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    _, token = calendars.create_feed(session, actor=viewer, schedule=None, now=request.app.state.clock.now())
    session.commit()
    return _my_page(request, session, viewer, calendar_url=str(request.url_for("calendar", token=token)))


__all__ = ["router", "timeline"]
