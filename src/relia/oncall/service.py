"""On-call use cases: schedules, who is on call and when, the shift history, fairness, swaps and calendar
subscriptions.

Keyword-only functions taking a session (and, for changes, the actor and ``now``); the caller owns the
transaction. Members and managers of a schedule's team, and administrators, may change it; anyone signed in may
read every schedule.

Entry points other domains call (kept stable): :func:`on_call`, :func:`on_call_many`, :func:`shifts` and
:func:`shifts_many`. Times are aware UTC datetimes; results come as :class:`OnCall` and :class:`Shift`.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased, joinedload

from relia.catalog.models import Team, User
from relia.catalog.service import check_version
from relia.core import audit
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, InvalidInput, NotFound
from relia.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from relia.oncall import history, rules
from relia.oncall.models import HistoryMark, Schedule, ScheduleUser, SwapRequest
from relia.oncall.schemas import MAX_WINDOW, ScheduleCreate, ScheduleSpec, to_rules

KIND = "Schedule"
# How far either side of an instant `on_call` looks for the ends of a shift.
SHIFT_HORIZON = timedelta(days=366)


# ------------------------------------------------------------------------------------------ public types


@dataclass(frozen=True)
class Shift:
    """``username`` is on call for ``schedule`` over ``[start, end)``, put there by ``source`` (``layer``,
    ``override``, ``swap`` or ``temporary``); ``layer`` names the layer for layer shifts."""

    schedule: str
    user_id: int
    username: str
    name: str
    layer: str | None
    source: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class OnCall:
    """``username`` is on call for ``schedule`` now, in a stretch from ``shift_start`` to ``shift_end``."""

    schedule: str
    user_id: int
    username: str
    name: str
    layer: str | None
    source: str
    shift_start: datetime
    shift_end: datetime


@dataclass(frozen=True)
class Person:
    id: int
    username: str
    name: str
    time_zone: str


@dataclass(frozen=True)
class Compiled:
    """A schedule read for computing: its row, its parsed spec, and its rules (with its taken swaps)."""

    row: Schedule
    spec: ScheduleSpec
    rules: rules.Schedule

    @property
    def name(self) -> str:
        return self.row.name


# --------------------------------------------------------------------------------------------- schedules


def get_schedule(session: Session, name: str, *, for_update: bool = False) -> Schedule:
    statement = select(Schedule).where(Schedule.name == name).options(joinedload(Schedule.team))
    if for_update:
        # Concurrent writers of one schedule take turns (see catalog.service._locked).
        statement = statement.with_for_update(of=Schedule, key_share=True)
    schedule = session.scalars(statement).unique().one_or_none()
    if schedule is None:
        raise NotFound(f"There is no schedule {name!r}.")
    return schedule


def list_schedules(
    session: Session, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT, team: str | None = None
) -> tuple[list[Schedule], str | None]:
    statement = select(Schedule).options(joinedload(Schedule.team)).order_by(Schedule.name)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(Schedule.name > str(after))
    if team:
        statement = statement.join(Team, Schedule.team_id == Team.id).where(Team.slug == team)
    rows = session.scalars(statement.limit(limit + 1)).unique().all()
    items = list(rows[:limit])
    return items, encode_cursor(items[-1].name) if len(rows) > limit and items else None


def parsed_spec(schedule: Schedule) -> ScheduleSpec:
    return ScheduleSpec.model_validate(schedule.spec)


def schedule_spec(schedule: Schedule) -> dict[str, Any]:
    return parsed_spec(schedule).model_dump(mode="json")


def title(schedule: Schedule, spec: ScheduleSpec | None = None) -> str:
    return (spec or parsed_spec(schedule)).display_name or schedule.name


def titles(session: Session, names: Iterable[str]) -> dict[str, str]:
    """What each of these schedules is called on pages and in calendars."""
    return {row.name: title(row) for row in session.scalars(select(Schedule).where(Schedule.name.in_(set(names))))}


def _resolve(session: Session, spec: ScheduleSpec) -> tuple[Team, dict[str, User]]:
    team = session.scalars(select(Team).where(Team.slug == spec.team)).one_or_none()
    problems = [] if team is not None else [FieldError("team", f"there is no team {spec.team!r}")]
    named = spec.usernames()
    users = {
        user.username: user
        for user in session.scalars(select(User).where(User.username.in_({username for _, username in named})))
    }
    problems += [
        FieldError(path, f"there is no user {username!r}") for path, username in named if username not in users
    ]
    if problems:
        raise InvalidInput("The schedule names a team or users that do not exist.", errors=problems)
    assert team is not None
    return team, users


def _set_users(session: Session, schedule: Schedule, users: dict[str, User]) -> None:
    wanted = {user.id for user in users.values()}
    existing = set(session.scalars(select(ScheduleUser.user_id).where(ScheduleUser.schedule_id == schedule.id)))
    if existing - wanted:
        session.execute(
            delete(ScheduleUser).where(
                ScheduleUser.schedule_id == schedule.id, ScheduleUser.user_id.in_(existing - wanted)
            )
        )
    for user_id in sorted(wanted - existing):
        session.add(ScheduleUser(schedule_id=schedule.id, user_id=user_id))


def create_schedule(
    session: Session, *, actor: Principal, data: ScheduleCreate, now: datetime, config_managed: bool = False
) -> Schedule:
    spec = ScheduleSpec.model_validate(data.model_dump(exclude={"name"}))
    team, users = _resolve(session, spec)
    actor.require_team(team.id, f"schedules of team {team.slug!r}")
    if session.scalar(select(Schedule.id).where(Schedule.name == data.name)) is not None:
        raise Conflict(f"A schedule {data.name!r} exists already.", errors=[FieldError("name", "already taken")])
    schedule = Schedule(
        name=data.name,
        team=team,
        spec=spec.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
        config_managed=config_managed,
    )
    session.add(schedule)
    session.flush()
    _set_users(session, schedule, users)
    history.start_mark(session, schedule, now)
    audit.record(
        session,
        actor=actor,
        action="create",
        kind=KIND,
        key=schedule.name,
        before=None,
        after=schedule.spec,
        now=now,
    )
    return schedule


def update_schedule(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: ScheduleSpec,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> Schedule:
    schedule = get_schedule(session, name, for_update=True)
    actor.require_team(schedule.team_id, f"schedule {name!r}")
    check_version(KIND, name, schedule.version, if_match, if_match=True)
    team, users = _resolve(session, spec)
    if team.id != schedule.team_id:
        actor.require_team(team.id, f"schedules of team {team.slug!r}")
    before = schedule_spec(schedule)
    after = spec.model_dump(mode="json")
    if config_managed is not None:
        schedule.config_managed = config_managed
    if before == after:
        return schedule
    # The history up to now is written with the definition that was in force; the change applies from now on.
    record_history(session, schedule=schedule, now=now)
    schedule.team, schedule.spec, schedule.updated_at = team, after, now
    session.flush()
    _set_users(session, schedule, users)
    audit.record(session, actor=actor, action="update", kind=KIND, key=name, before=before, after=after, now=now)
    return schedule


def delete_schedule(
    session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None
) -> None:
    schedule = get_schedule(session, name, for_update=True)
    actor.require_team(schedule.team_id, f"schedule {name!r}")
    check_version(KIND, name, schedule.version, if_match, if_match=True)
    before = schedule_spec(schedule)
    mark = record_history(session, schedule=schedule, now=now)
    if mark is not None:
        history.close_all(session, schedule=schedule, mark=mark, now=now)
        session.delete(mark)
    session.flush()  # the history rows first: they outlive the schedule (their schedule id becomes NULL)
    session.delete(schedule)
    session.flush()
    audit.record(session, actor=actor, action="delete", kind=KIND, key=name, before=before, after=None, now=now)


# ------------------------------------------------------------------------------------- computing on-call


def compile_schedules(session: Session, names: Sequence[str] | None = None) -> list[Compiled]:
    """Schedules (all, or these names, which must exist) read for computing, in order of name, with their taken
    swaps; three queries whatever the number."""
    statement = select(Schedule).options(joinedload(Schedule.team)).order_by(Schedule.name)
    if names is not None:
        statement = statement.where(Schedule.name.in_(list(names)))
    rows = session.scalars(statement).unique().all()
    if names is not None:
        missing = sorted(set(names) - {row.name for row in rows})
        if missing:
            raise NotFound(f"There is no schedule {missing[0]!r}.")
    swaps = _taken_swaps(session, [row.id for row in rows])
    return [
        Compiled(row=row, spec=(spec := parsed_spec(row)), rules=to_rules(spec, tuple(swaps.get(row.id, ()))))
        for row in rows
    ]


def compile_schedule(session: Session, name: str) -> Compiled:
    return compile_schedules(session, [name])[0]


def _taken_swaps(session: Session, schedule_ids: list[int]) -> dict[int, list[rules.Swap]]:
    if not schedule_ids:
        return {}
    requester, taker = aliased(User), aliased(User)
    rows = session.execute(
        select(SwapRequest.schedule_id, SwapRequest.start, SwapRequest.end, requester.username, taker.username)
        .join(requester, SwapRequest.requester_id == requester.id)
        .join(taker, SwapRequest.taker_id == taker.id)
        .where(SwapRequest.schedule_id.in_(schedule_ids), SwapRequest.status == "taken")
        .order_by(SwapRequest.id)
    ).all()
    found: dict[int, list[rules.Swap]] = defaultdict(list)
    for schedule_id, start, end, requester_name, taker_name in rows:
        found[schedule_id].append(rules.Swap(start, end, requester_name, taker_name))
    return found


def people(session: Session, usernames: Iterable[str]) -> dict[str, Person]:
    wanted = set(usernames)
    if not wanted:
        return {}
    rows = session.execute(
        select(User.id, User.username, User.name, User.time_zone).where(User.username.in_(wanted))
    ).all()
    return {username: Person(user_id, username, name, zone) for user_id, username, name, zone in rows}


def _shift(schedule: str, item: rules.OnCallInterval, found: dict[str, Person]) -> Shift | None:
    person = found.get(str(item.user))
    if person is None:  # a user deleted since (the link table normally prevents that)
        return None
    return Shift(schedule, person.id, person.username, person.name, item.layer, item.source, item.start, item.end)


def check_instant(value: datetime, field: str) -> None:
    if value.tzinfo is None:
        raise InvalidInput(
            "Times need a time zone.", errors=[FieldError(f"query.{field}", "needs a time zone (e.g. Z)")]
        )
    if not 1970 <= value.year <= 2200:
        raise InvalidInput("That time is out of range.", errors=[FieldError(f"query.{field}", "years 1970 to 2200")])


def check_range(start: datetime, end: datetime) -> None:
    check_instant(start, "start")
    check_instant(end, "end")
    if end <= start:
        raise InvalidInput("The range is empty.", errors=[FieldError("query.end", "must be after start")])
    if end - start > MAX_WINDOW:
        raise InvalidInput("The range is too long.", errors=[FieldError("query.end", "at most 366 days after start")])


def shifts_many(
    session: Session, *, schedules: Sequence[str] | None = None, start: datetime, end: datetime
) -> dict[str, list[Shift]]:
    """Every shift of these schedules (all when None) overlapping ``[start, end)``, clipped to it, in order of
    start; keyed by schedule name."""
    check_range(start, end)
    compiled = compile_schedules(session, schedules)
    computed = {item.name: rules.final_intervals(item.rules, start, end) for item in compiled}
    found = people(session, {str(i.user) for intervals in computed.values() for i in intervals})
    return {
        name: [shift for item in intervals if (shift := _shift(name, item, found)) is not None]
        for name, intervals in computed.items()
    }


def shifts(session: Session, *, schedule: str, start: datetime, end: datetime) -> list[Shift]:
    """The shifts of one schedule overlapping ``[start, end)``, clipped to it, in order of start."""
    return shifts_many(session, schedules=[schedule], start=start, end=end)[schedule]


def on_call_many(session: Session, *, schedules: Sequence[str] | None = None, at: datetime) -> dict[str, list[OnCall]]:
    """Who is on call at ``at`` for each of these schedules (all when None), each with their whole stretch."""
    check_instant(at, "at")
    compiled = compile_schedules(session, schedules)
    computed = {item.name: rules.on_call_at(item.rules, at, horizon=SHIFT_HORIZON) for item in compiled}
    found = people(session, {str(i.user) for intervals in computed.values() for i in intervals})
    result: dict[str, list[OnCall]] = {}
    for name, intervals in computed.items():
        result[name] = [
            OnCall(name, s.user_id, s.username, s.name, s.layer, s.source, s.start, s.end)
            for item in intervals
            if (s := _shift(name, item, found)) is not None
        ]
    return result


def on_call(session: Session, *, schedule: str, at: datetime) -> list[OnCall]:
    """Who is on call for ``schedule`` at ``at`` (the escalation engine's question), top layer first."""
    return on_call_many(session, schedules=[schedule], at=at)[schedule]


def user_shifts(session: Session, *, username: str, start: datetime, end: datetime) -> list[Shift]:
    """``username``'s shifts on every schedule that names them, overlapping ``[start, end)``, in order of start."""
    check_range(start, end)
    names = session.scalars(
        select(Schedule.name)
        .join(ScheduleUser, ScheduleUser.schedule_id == Schedule.id)
        .join(User, ScheduleUser.user_id == User.id)
        .where(User.username == username)
    ).all()
    swapped_in = session.scalars(
        select(Schedule.name)
        .join(SwapRequest, SwapRequest.schedule_id == Schedule.id)
        .join(User, SwapRequest.taker_id == User.id)
        .where(User.username == username, SwapRequest.status == "taken", SwapRequest.end > start)
    ).all()
    if not names and not swapped_in:
        return []
    found = shifts_many(session, schedules=sorted(set(names) | set(swapped_in)), start=start, end=end)
    mine = [shift for items in found.values() for shift in items if shift.username == username]
    return sorted(mine, key=lambda shift: (shift.start, shift.schedule))


# -------------------------------------------------------------------------------------------- history


def record_history(session: Session, *, schedule: Schedule, now: datetime) -> HistoryMark | None:
    """Write ``schedule``'s history up to ``now`` with its current definition; returns its (locked) mark."""
    mark = history.mark_of(session, schedule.id, lock=True)
    if mark is None:
        return None
    compiled = compile_schedule(session, schedule.name)
    while mark.recorded_through < now:
        _catch_up(session, compiled, mark, now)
    return mark


def _catch_up(session: Session, compiled: Compiled, mark: HistoryMark, now: datetime) -> int:
    users = {person.username: person.id for person in people(session, usernames_in(compiled.rules)).values()}
    return history.catch_up(session, schedule=compiled.row, mark=mark, compiled=compiled.rules, user_ids=users, now=now)


def usernames_in(schedule: rules.Schedule) -> set[str]:
    found = {str(user) for layer in schedule.layers for user in layer.rotation.participants}
    found |= {str(item.user) for item in schedule.overrides}
    found |= {str(swap.taker) for swap in schedule.swaps}
    found |= {str(shift.user) for window in schedule.temporary for shift in window.shifts}
    return found


HISTORY_EVERY = timedelta(minutes=1)


def history_due(session: Session, *, now: datetime, every: timedelta = HISTORY_EVERY) -> bool:
    """Whether some schedule's history is at least ``every`` behind."""
    return (
        session.scalar(select(HistoryMark.schedule_id).where(HistoryMark.recorded_through <= now - every).limit(1))
        is not None
    )


def record_history_due(session: Session, *, now: datetime, every: timedelta = HISTORY_EVERY) -> int:
    """The worker's step: catch up every schedule whose history is at least ``every`` behind; returns the rows
    written. Marks locked by another worker are skipped (PostgreSQL; SQLite writers take turns anyway)."""
    marks = session.scalars(
        select(HistoryMark)
        .where(HistoryMark.recorded_through <= now - every)
        .order_by(HistoryMark.schedule_id)
        .with_for_update(skip_locked=True)
    ).all()
    if not marks:
        return 0
    by_id = {mark.schedule_id: mark for mark in marks}
    names = session.scalars(select(Schedule.name).where(Schedule.id.in_(list(by_id)))).all()
    written = 0
    for compiled in compile_schedules(session, names):
        written += _catch_up(session, compiled, by_id[compiled.row.id], now)
    return written


def recorded_shifts(session: Session, *, schedule: str, start: datetime, end: datetime) -> list[history.RecordedShift]:
    """Who actually was on call over ``[start, end)``, from the shift history (unclipped, in order of start)."""
    check_range(start, end)
    found = session.scalars(select(Schedule).where(Schedule.name == schedule)).one_or_none()
    mark = history.mark_of(session, found.id) if found is not None else None
    shifts = history.read(session, schedule_name=schedule, start=start, end=end, mark=mark)
    if found is None and not shifts:
        raise NotFound(f"There is no schedule {schedule!r} and no history under that name.")
    return shifts


# ------------------------------------------------------------------------------------------- fairness


@dataclass(frozen=True)
class PersonLoad:
    person: Person
    load: rules.Load


@dataclass(frozen=True)
class Fairness:
    schedule: str
    start: datetime
    end: datetime
    recorded_until: datetime | None
    pages_counted: bool
    people: list[PersonLoad]
    notes: list[str]

    def spread(self, figure: str) -> float:
        return rules.spread(getattr(row.load, figure) for row in self.people)

    @property
    def most_loaded(self) -> PersonLoad | None:
        """The person with the most hours on call; None when everyone has the same."""
        if self.spread("hours") == 0:
            return None
        return max(self.people, key=lambda row: (row.load.hours, row.load.off_hours, row.person.username))

    @property
    def least_loaded(self) -> PersonLoad | None:
        """The person with the fewest hours on call; None when everyone has the same."""
        if self.spread("hours") == 0:
            return None
        return min(self.people, key=lambda row: (row.load.hours, row.load.off_hours, row.person.username))


PagesReader = Callable[..., dict[int, list[datetime]]]


def _pages_reader() -> PagesReader | None:
    """``relia.notify.service.pages_by_user`` once the notification domain exists; None until then. Imported
    when asked for, not at import time: the notification domain imports this module for escalation."""
    try:
        module = importlib.import_module("relia.notify.service")
    except ModuleNotFoundError as exc:
        if exc.name in ("relia.notify", "relia.notify.service"):
            return None
        raise
    return getattr(module, "pages_by_user", None)


def fairness(session: Session, *, schedule: str, start: datetime, end: datetime, now: datetime) -> Fairness:
    """Each person's load on ``schedule`` over ``[start, end)``: from the recorded history up to where it is
    written, projected from the current definition after that. Everyone the layers rotate through is listed,
    with anyone else who was on call."""
    check_range(start, end)
    compiled = compile_schedule(session, schedule)
    mark = history.mark_of(session, compiled.row.id)
    recorded_until = min(end, mark.recorded_through) if mark and mark.recorded_through > start else None
    intervals: list[rules.OnCallInterval] = []
    if recorded_until is not None:
        for shift in history.read(session, schedule_name=schedule, start=start, end=recorded_until, mark=mark):
            clipped_start, clipped_end = max(start, shift.start), min(recorded_until, shift.end or recorded_until)
            if clipped_end > clipped_start:
                intervals.append(rules.OnCallInterval(shift.username, clipped_start, clipped_end, shift.source))
    projected_from = max(start, recorded_until or start)
    if projected_from < end:
        intervals += rules.final_intervals(compiled.rules, projected_from, end)
    rotating = [str(user) for layer in compiled.rules.layers for user in layer.rotation.participants]
    found = people(session, {*rotating, *(str(item.user) for item in intervals)})
    notes: list[str] = []
    reader = _pages_reader()
    pages: dict[str, list[datetime]] = {}
    if reader is None:
        notes.append(
            "Pages are not counted yet: the notification domain (relia.notify) is not installed, so every page "
            "count is zero."
        )
    else:
        by_id = reader(session, user_ids=[person.id for person in found.values()], start=start, end=end)
        pages = {person.username: by_id.get(person.id, []) for person in found.values()}
    if start < compiled.row.created_at:
        notes.append(
            f"The schedule was created at {compiled.row.created_at:%Y-%m-%d %H:%M} UTC: its history, and so these "
            "figures, start then."
        )
    if recorded_until is None:
        notes.append("Nothing of this period is recorded yet: all of it is projected from the current definition.")
    elif recorded_until < end:
        notes.append(
            f"Up to {recorded_until:%Y-%m-%d %H:%M} UTC the figures come from the recorded shift history; after "
            "that they are projected from the current definition."
        )
    loads = rules.loads(
        intervals,
        {username: person.time_zone for username, person in found.items()},
        pages,
        people=[username for username in dict.fromkeys(rotating) if username in found],
    )
    rows = [PersonLoad(found[str(user)], load) for user, load in loads.items() if str(user) in found]
    rows.sort(key=lambda row: (-row.load.hours, row.person.username))
    return Fairness(schedule, start, end, recorded_until, reader is not None, rows, notes)
