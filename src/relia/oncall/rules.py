"""On-call schedule rules: rotations, restrictions, layers, overrides, swaps, temporary schedules, the final
on-call intervals for any range, and the load (fairness) figures. Pure: no I/O, no clock; "now" and every range
are arguments.

Time model
----------
- Instants are timezone-aware datetimes in UTC; every range is half-open ``[start, end)``.
- Handoffs and restriction windows are wall-clock times in a layer's IANA zone, never UTC offsets. A wall-clock
  time happens at the first instant at which the zone's clock shows it or a later time (:func:`to_utc`):

  - an *ambiguous* time (clocks go back) is its first occurrence, so a shift that spans the change lasts an hour
    longer ("overlap during clocks-back", as GoAlert does);
  - a *skipped* time (clocks go forward) is the moment the clocks jump: a 02:30 handoff on the spring-forward day
    in New York happens at 03:00 EDT.

- Turns are whole hours, days or weeks of the wall clock: a daily 09:00 handoff stays at 09:00 across a DST
  change (that turn is 23 or 25 hours long), and an 8-hour rotation from 00:00 hands off at 00:00, 08:00, 16:00.

Composition, at every instant
-----------------------------
Layers are listed top first. Going up from the bottom layer, an *exclusive* layer with someone on call replaces
everyone below it and an *additive* layer adds its person; a layer with nobody on call (outside its restrictions
or its effective dates) changes nothing. Then taken swaps (the taker instead of the requester), in the order they
were offered (as listed), so of two swaps over one shift the first offered holds it; then overrides in order of
start, and last a temporary schedule, which replaces everything inside its window.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import accumulate, pairwise
from typing import Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

UserKey = Hashable
"""Whatever identifies a person; the service uses usernames."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
HOURS_PER_WEEK = 7 * 24

EXCLUSIVE, ADDITIVE = "exclusive", "additive"
WALL_CLOCK, COVERED_SLOTS = "wall-clock", "covered-slots"
REPLACE, ADD, REMOVE = "replace", "add", "remove"
SOURCES = ("layer", "override", "swap", "temporary")

# Working hours and night for the load figures, on each person's own wall clock.
WORKDAY_START, WORKDAY_END = time(9), time(17)
NIGHT_START, NIGHT_END = time(22), time(7)


# --------------------------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Restriction:
    """A window of the wall clock that opens at ``start`` (minutes after midnight) on each of ``days`` (0 is
    Monday) and closes at ``end``: the same day when ``end`` is later, the next day otherwise. ``end == start``
    is a whole day."""

    days: frozenset[int]
    start: int
    end: int

    @property
    def length_minutes(self) -> int:
        return (self.end - self.start) % MINUTES_PER_DAY or MINUTES_PER_DAY


@dataclass(frozen=True)
class Rotation:
    """Participants take turns of ``turn_hours`` wall-clock hours; turn 0 starts at ``handoff`` (a naive
    wall-clock datetime in the layer's zone) with the first participant. ``advance`` is ``wall-clock`` (every
    turn moves to the next person) or ``covered-slots`` (only turns that meet a restriction window do, so
    weekday-only rotations never starve anyone)."""

    participants: tuple[UserKey, ...]
    turn_hours: int
    handoff: datetime
    advance: str = WALL_CLOCK

    def __post_init__(self) -> None:
        if not self.participants:
            raise ValueError("a rotation needs at least one participant")
        if self.turn_hours < 1:
            raise ValueError("a turn is at least one hour")
        if self.handoff.tzinfo is not None:
            raise ValueError("the handoff is a wall-clock time without a UTC offset")
        if self.advance not in (WALL_CLOCK, COVERED_SLOTS):
            raise ValueError(f"unknown advance mode {self.advance!r}")

    @property
    def turn(self) -> timedelta:
        return timedelta(hours=self.turn_hours)

    def turn_start(self, index: int) -> datetime:
        """The wall-clock start of turn ``index`` (negative before the handoff anchor)."""
        return self.handoff + index * self.turn


@dataclass(frozen=True)
class Layer:
    """One rotation in one zone, with optional restrictions and effective dates (instants)."""

    name: str
    rotation: Rotation
    zone: str
    mode: str = EXCLUSIVE
    restrictions: tuple[Restriction, ...] = ()
    effective_from: datetime | None = None
    effective_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.mode not in (EXCLUSIVE, ADDITIVE):
            raise ValueError(f"unknown layer mode {self.mode!r}")


@dataclass(frozen=True)
class Override:
    """``replace``: ``user`` is on call instead of ``replaces`` (instead of everyone when it is None, even in
    a gap); ``add``: ``user`` is on call too; ``remove``: ``user`` is not on call."""

    start: datetime
    end: datetime
    user: UserKey
    mode: str = REPLACE
    replaces: UserKey | None = None

    def __post_init__(self) -> None:
        if self.mode not in (REPLACE, ADD, REMOVE):
            raise ValueError(f"unknown override mode {self.mode!r}")


@dataclass(frozen=True)
class Swap:
    """A taken swap: inside the window, wherever ``requester`` would be on call, ``taker`` is instead."""

    start: datetime
    end: datetime
    requester: UserKey
    taker: UserKey


@dataclass(frozen=True)
class FixedShift:
    user: UserKey
    start: datetime
    end: datetime


@dataclass(frozen=True)
class TemporarySchedule:
    """Inside ``[start, end)`` exactly these shifts are on call; time none of them covers is a gap."""

    start: datetime
    end: datetime
    shifts: tuple[FixedShift, ...] = ()


@dataclass(frozen=True)
class Schedule:
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()
    swaps: tuple[Swap, ...] = ()
    temporary: tuple[TemporarySchedule, ...] = ()


@dataclass(frozen=True)
class OnCallInterval:
    """``user`` is on call over ``[start, end)``, put there by ``source`` (``layer``, ``override``, ``swap`` or
    ``temporary``); ``layer`` names the layer for layer intervals."""

    user: UserKey
    start: datetime
    end: datetime
    source: str
    layer: str | None = None

    def covers(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


# ------------------------------------------------------------------------------------------------- the clock


@lru_cache(maxsize=64)
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    """What a clock in ``zone`` shows at ``instant``, as a naive datetime."""
    return instant.astimezone(zone).replace(tzinfo=None)


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which a clock in ``zone`` shows ``local`` or a later time: an ambiguous time is its
    first occurrence, a skipped time the moment the clocks jump past it."""
    return _to_utc(local, zone)


@lru_cache(maxsize=65536)
def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 is the first occurrence of an ambiguous time (PEP 495).
    candidate = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if wall_clock(candidate, zone) == local:
        return candidate
    # A skipped time. The jump lies between the instants the offsets before and after it give; find it to the
    # second (zones change on whole seconds).
    other = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(candidate, other), max(candidate, other)
    low_second, high_second = int(low.timestamp()), int(high.timestamp())
    while low_second < high_second:
        middle = (low_second + high_second) // 2
        if wall_clock(datetime.fromtimestamp(middle, UTC), zone) >= local:
            high_second = middle
        else:
            low_second = middle + 1
    return datetime.fromtimestamp(high_second, UTC)


# ------------------------------------------------------------------------------------------------- rotations


def turn_index_at(rotation: Rotation, zone: ZoneInfo, instant: datetime) -> int:
    """The turn under way at ``instant``."""
    index = (wall_clock(instant, zone) - rotation.handoff) // rotation.turn
    # The wall clock repeats an hour when clocks go back and skips one when they go forward: step to the turn
    # whose real start and end bracket the instant.
    while to_utc(rotation.turn_start(index), zone) > instant:
        index -= 1
    while to_utc(rotation.turn_start(index + 1), zone) <= instant:
        index += 1
    return index


Turn = tuple[int, datetime, datetime]
"""(index, start, end) of one turn."""


def turns(rotation: Rotation, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Turn]:
    """(index, start, end) of every turn overlapping ``[start, end)``, unclipped; turns that the clocks skip
    entirely (an hour-long turn inside a spring-forward gap) are left out."""
    index = turn_index_at(rotation, zone, start)
    turn_start = to_utc(rotation.turn_start(index), zone)
    while turn_start < end:
        turn_end = to_utc(rotation.turn_start(index + 1), zone)
        if turn_end > turn_start:
            yield index, turn_start, turn_end
        index, turn_start = index + 1, turn_end


def handoffs(rotation: Rotation, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The instants in ``[start, end)`` at which a turn begins."""
    info = zone_info(zone)
    return [turn_start for _, turn_start, _ in turns(rotation, info, start, end) if turn_start >= start]


@dataclass(frozen=True)
class _Coverage:
    """Which turns of one coverage period meet a restriction window, as a prefix count. The pattern repeats
    every ``period`` turns: that many turns span a whole number of weeks, and restrictions repeat weekly."""

    period: int
    covered: int
    prefix: tuple[int, ...]

    def covered_before(self, index: int) -> int:
        """How many covered turns lie in ``[0, index)`` (negative for turns before the anchor)."""
        cycles, offset = divmod(index, self.period)
        return cycles * self.covered + self.prefix[offset]


@lru_cache(maxsize=1024)
def _coverage(rotation: Rotation, restrictions: tuple[Restriction, ...]) -> _Coverage:
    period = HOURS_PER_WEEK // math.gcd(rotation.turn_hours, HOURS_PER_WEEK)
    flags = [_turn_meets_a_window(rotation, restrictions, index) for index in range(period)]
    return _Coverage(period=period, covered=sum(flags), prefix=(0, *accumulate(flags)))


def _turn_meets_a_window(rotation: Rotation, restrictions: tuple[Restriction, ...], index: int) -> bool:
    # Judged on the wall clock, where restrictions repeat exactly every week (real time has DST in it).
    turn_start, turn_end = rotation.turn_start(index), rotation.turn_start(index + 1)
    day = turn_start.date() - timedelta(days=1)
    while day < turn_end.date() + timedelta(days=1):
        for restriction in restrictions:
            if day.weekday() in restriction.days:
                opens = datetime.combine(day, time()) + timedelta(minutes=restriction.start)
                closes = opens + timedelta(minutes=restriction.length_minutes)
                if opens < turn_end and closes > turn_start:
                    return True
        day += timedelta(days=1)
    return False


def participant(layer: Layer, index: int) -> UserKey:
    """Who takes turn ``index`` of the layer's rotation."""
    rotation = layer.rotation
    if rotation.advance == COVERED_SLOTS and layer.restrictions:
        position = _coverage(rotation, layer.restrictions).covered_before(index)
    else:
        position = index
    return rotation.participants[position % len(rotation.participants)]


# ---------------------------------------------------------------------------------------------- restrictions


def restriction_windows(
    restrictions: Sequence[Restriction], zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The restriction windows as instants, clipped to ``[start, end)``, overlapping ones merged."""
    first_day = wall_clock(start, zone).date() - timedelta(days=1)
    last_day = wall_clock(end, zone).date() + timedelta(days=1)
    windows: list[tuple[datetime, datetime]] = []
    day = first_day
    while day <= last_day:
        midnight = datetime.combine(day, time())
        for restriction in restrictions:
            if day.weekday() not in restriction.days:
                continue
            opens = midnight + timedelta(minutes=restriction.start)
            window_start = max(start, to_utc(opens, zone))
            window_end = min(end, to_utc(opens + timedelta(minutes=restriction.length_minutes), zone))
            if window_end > window_start:
                windows.append((window_start, window_end))
        day += timedelta(days=1)
    return _merge(windows)


def _merge(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for window_start, window_end in sorted(windows):
        if merged and window_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], window_end))
        else:
            merged.append((window_start, window_end))
    return merged


# ---------------------------------------------------------------------------------------------------- layers


def layer_intervals(layer: Layer, start: datetime, end: datetime) -> list[OnCallInterval]:
    """Who the layer alone puts on call in ``[start, end)``: its turns cut to its restriction windows and its
    effective dates, in time order and never overlapping."""
    low = max(start, layer.effective_from) if layer.effective_from else start
    high = min(end, layer.effective_until) if layer.effective_until else end
    if low >= high:
        return []
    zone = zone_info(layer.zone)
    windows = restriction_windows(layer.restrictions, zone, low, high) if layer.restrictions else [(low, high)]
    intervals: list[OnCallInterval] = []
    first = 0
    for index, turn_start, turn_end in turns(layer.rotation, zone, low, high):
        while first < len(windows) and windows[first][1] <= turn_start:
            first += 1
        user = None
        position = first
        while position < len(windows) and windows[position][0] < turn_end:
            piece_start = max(turn_start, windows[position][0], low)
            piece_end = min(turn_end, windows[position][1], high)
            if piece_end > piece_start:
                user = participant(layer, index) if user is None else user
                intervals.append(OnCallInterval(user, piece_start, piece_end, "layer", layer.name))
            position += 1
    return intervals


# ----------------------------------------------------------------------------------------------- composition


class _Timed(Protocol):
    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


Timed = TypeVar("Timed", bound=_Timed)


class _Stream(Generic[Timed]):
    """Items with a start and an end, in order of start, read forward as the sweep moves on."""

    def __init__(self, items: Iterable[Timed], start: datetime, end: datetime, *, written_order: bool = False) -> None:
        listed = list(items)
        self.items = sorted((item for item in listed if item.start < end and item.end > start), key=_start_of)
        self._cursor = 0
        # ``active`` answers in the order the items were given rather than by start.
        self._written: dict[int, int] | None = (
            {id(item): index for index, item in enumerate(listed)} if written_order else None
        )

    def active(self, instant: datetime) -> list[Timed]:
        """The items covering ``instant``; instants must not go backwards between calls."""
        items, cursor = self.items, self._cursor
        while cursor < len(items) and items[cursor].end <= instant:
            cursor += 1
        self._cursor = cursor
        found = []
        while cursor < len(items) and items[cursor].start <= instant:
            if items[cursor].end > instant:
                found.append(items[cursor])
            cursor += 1
        if self._written is not None and len(found) > 1:
            written = self._written
            found.sort(key=lambda item: written[id(item)])
        return found


def _start_of(item: _Timed) -> datetime:
    return item.start


def final_intervals(schedule: Schedule, start: datetime, end: datetime) -> list[OnCallInterval]:
    """Who is on call over ``[start, end)`` and why, after layers, swaps, overrides and temporary schedules;
    each person's stretches from one source are merged, and clipped to the range. Sorted by start, then by the
    order of the layers (top first), then by user."""
    if start >= end:
        return []
    layers = [_Stream(layer_intervals(layer, start, end), start, end) for layer in schedule.layers]
    # Swaps apply in the order listed (offered): of two covering one shift, the first offered holds it.
    swaps = _Stream(schedule.swaps, start, end, written_order=True)
    # Overrides apply in order of start; the stable sort keeps the written order among equal starts.
    overrides = _Stream(schedule.overrides, start, end)
    temporary = _Stream(schedule.temporary, start, end)
    boundaries = {start, end}
    for stream in (*layers, swaps, overrides, temporary):
        for item in stream.items:
            boundaries.update((item.start, item.end))
    for window in temporary.items:
        for shift in window.shifts:
            boundaries.update((shift.start, shift.end))
    points = sorted(point for point in boundaries if start <= point <= end)

    layer_rank = {layer.name: rank for rank, layer in enumerate(schedule.layers)}
    opened: dict[tuple[UserKey, str, str | None], datetime] = {}
    result: list[OnCallInterval] = []
    for instant in points[:-1]:
        current = _on_call_at(schedule, layers, swaps, overrides, temporary, instant)
        for key in [key for key in opened if current.get(key[0]) != key[1:]]:
            result.append(OnCallInterval(key[0], opened.pop(key), instant, key[1], key[2]))
        for user, (source, layer_name) in current.items():
            opened.setdefault((user, source, layer_name), instant)
    for (user, source, layer_name), since in opened.items():
        result.append(OnCallInterval(user, since, end, source, layer_name))
    return sorted(result, key=lambda item: (item.start, _source_rank(item, layer_rank), str(item.user)))


def _source_rank(item: OnCallInterval, layer_rank: dict[str, int]) -> int:
    if item.source == "layer":
        return layer_rank.get(item.layer or "", 0) + len(SOURCES)
    return SOURCES.index(item.source)


def _on_call_at(
    schedule: Schedule,
    layers: list[_Stream[OnCallInterval]],
    swaps: _Stream[Swap],
    overrides: _Stream[Override],
    temporary: _Stream[TemporarySchedule],
    instant: datetime,
) -> dict[UserKey, tuple[str, str | None]]:
    """Who is on call at ``instant``: user -> (source, layer)."""
    current: dict[UserKey, tuple[str, str | None]] = {}
    for layer, stream in zip(reversed(schedule.layers), reversed(layers), strict=True):
        active = stream.active(instant)
        if not active:
            continue
        user = active[0].user
        if layer.mode == EXCLUSIVE:
            current = {}
        current[user] = ("layer", layer.name)
    for swap in swaps.active(instant):
        if swap.requester in current:
            del current[swap.requester]
            current.setdefault(swap.taker, ("swap", None))
    for override in overrides.active(instant):
        _apply_override(current, override)
    for window in temporary.active(instant):
        current = {shift.user: ("temporary", None) for shift in window.shifts if shift.start <= instant < shift.end}
    return current


def _apply_override(current: dict[UserKey, tuple[str, str | None]], override: Override) -> None:
    if override.mode == REMOVE:
        current.pop(override.user, None)
    elif override.mode == ADD:
        current.setdefault(override.user, ("override", None))
    elif override.replaces is None:
        kept = current.get(override.user, ("override", None))
        current.clear()
        current[override.user] = kept
    elif override.replaces in current:
        del current[override.replaces]
        current.setdefault(override.user, ("override", None))


def on_call_at(
    schedule: Schedule, instant: datetime, *, horizon: timedelta = timedelta(days=366)
) -> list[OnCallInterval]:
    """Who is on call at ``instant``, each with the whole stretch they are on call, looked for up to
    ``horizon`` either side (a stretch longer than that is reported cut there)."""
    window = max([timedelta(days=1), *(layer.rotation.turn for layer in schedule.layers)])
    while True:
        window = min(window, horizon)
        low, high = instant - window, instant + window
        found = [item for item in final_intervals(schedule, low, high) if item.covers(instant)]
        if window >= horizon or not any(item.start == low or item.end == high for item in found):
            return found
        window *= 4


def next_change(schedule: Schedule, instant: datetime, *, within: timedelta = timedelta(days=62)) -> datetime | None:
    """The first instant after ``instant`` at which who is on call changes, within ``within``."""
    intervals = final_intervals(schedule, instant, instant + within)
    changes = sorted({item.end for item in intervals} | {item.start for item in intervals if item.start > instant})
    limit = instant + within
    return next((change for change in changes if instant < change < limit), None)


# ------------------------------------------------------------------------------------------------ the load


@dataclass
class Load:
    """One person's share of a schedule over a period: hours on call, of which outside working hours
    (09:00-17:00 Monday to Friday on their own clock) and at weekends (Saturday and Sunday on their own
    clock), and pages received while on call, of which at night (22:00-07:00 on their own clock)."""

    hours: float = 0.0
    off_hours: float = 0.0
    weekend_hours: float = 0.0
    pages: int = 0
    night_pages: int = 0
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)


def split_hours(start: datetime, end: datetime, zone: str) -> tuple[float, float, float]:
    """(hours, of which off-hours, of which weekend) of ``[start, end)`` on a clock in ``zone``."""
    info = zone_info(zone)
    marks = {start, end}
    day = wall_clock(start, info).date()
    last = wall_clock(end, info).date() + timedelta(days=1)
    while day <= last:
        for moment in (time(), WORKDAY_START, WORKDAY_END):
            instant = to_utc(datetime.combine(day, moment), info)
            if start < instant < end:
                marks.add(instant)
        day += timedelta(days=1)
    total = off = weekend = 0.0
    ordered = sorted(marks)
    for piece_start, piece_end in pairwise(ordered):
        hours = (piece_end - piece_start).total_seconds() / 3600
        local = wall_clock(piece_start, info)
        total += hours
        if local.weekday() >= 5:
            weekend += hours
            off += hours
        elif not WORKDAY_START <= time(local.hour, local.minute, local.second) < WORKDAY_END:
            off += hours
    return total, off, weekend


def is_night(instant: datetime, zone: str) -> bool:
    local = wall_clock(instant, zone_info(zone))
    moment = time(local.hour, local.minute, local.second)
    return moment >= NIGHT_START or moment < NIGHT_END


def loads(
    intervals: Iterable[OnCallInterval],
    zones: dict[UserKey, str],
    pages: dict[UserKey, list[datetime]],
    people: Iterable[UserKey] = (),
) -> dict[UserKey, Load]:
    """Each person's :class:`Load` from their on-call intervals (merged per person first, so an hour counted
    by two sources counts once), their time zone (UTC when unknown) and the instants they were paged; pages
    count only while the person was on call. ``people`` are listed even with nothing on call."""
    per_user: dict[UserKey, list[tuple[datetime, datetime]]] = {person: [] for person in people}
    for item in intervals:
        per_user.setdefault(item.user, []).append((item.start, item.end))
    result: dict[UserKey, Load] = {}
    for user, spans in per_user.items():
        zone = zones.get(user, "UTC")
        load = Load(intervals=_merge(spans))
        for span_start, span_end in load.intervals:
            hours, off, weekend = split_hours(span_start, span_end, zone)
            load.hours += hours
            load.off_hours += off
            load.weekend_hours += weekend
        for paged_at in pages.get(user, []):
            if any(span_start <= paged_at < span_end for span_start, span_end in load.intervals):
                load.pages += 1
                load.night_pages += is_night(paged_at, zone)
        result[user] = load
    return result


def spread(values: Iterable[float]) -> float:
    """Most loaded minus least loaded (0 for nobody)."""
    found = list(values)
    return max(found) - min(found) if found else 0.0


def local_midnight(day: date, zone: str) -> datetime:
    """When ``day`` begins in ``zone``."""
    return to_utc(datetime.combine(day, time()), zone_info(zone))


__all__ = [
    "ADD",
    "ADDITIVE",
    "COVERED_SLOTS",
    "EXCLUSIVE",
    "REMOVE",
    "REPLACE",
    "WALL_CLOCK",
    "WEEKDAYS",
    "FixedShift",
    "Layer",
    "Load",
    "OnCallInterval",
    "Override",
    "Restriction",
    "Rotation",
    "Schedule",
    "Swap",
    "TemporarySchedule",
    "final_intervals",
    "handoffs",
    "is_night",
    "layer_intervals",
    "loads",
    "local_midnight",
    "next_change",
    "on_call_at",
    "participant",
    "restriction_windows",
    "split_hours",
    "spread",
    "to_utc",
    "turn_index_at",
    "wall_clock",
    "zone_info",
]
