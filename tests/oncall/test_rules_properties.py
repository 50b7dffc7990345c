"""Property tests: the rules' final on-call intervals agree, at every quarter hour, with the naive reference in
``tests/oncall/reference.py``, for generated schedules (several zones, DST changes, both layer modes, both
advance modes, restrictions, effective dates, overrides, swaps and temporary schedules)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relia.oncall import rules
from tests.oncall import reference

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Australia/Lord_Howe"]
USERS = ["ana", "ben", "cy", "dee"]
TURN_HOURS = [1, 3, 8, 12, 24, 48, 72, 168, 336]
# Each zone with a day in 2026 on which its clocks change (a quiet day for the zones without DST).
CLOCK_CHANGES = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Australia/Lord_Howe", date(2026, 10, 4)),
    ("Asia/Kolkata", date(2026, 6, 15)),
    ("UTC", date(2026, 6, 15)),
]
QUARTER = timedelta(minutes=15)

# Times of day, often between 01:00 and 04:00 where the clocks change, so handoffs and windows land in the
# skipped and the repeated hours.
quarter_of_day = st.integers(0, 95).map(lambda quarter: quarter * 15) | st.integers(4, 15).map(lambda q: q * 15)


@st.composite
def instants(draw: st.DrawFn, around: datetime, spread_hours: int) -> datetime:
    return around + draw(st.integers(-spread_hours * 4, spread_hours * 4)) * QUARTER


@st.composite
def layers(draw: st.DrawFn, name: str, range_start: datetime, zone: str) -> rules.Layer:
    participants = tuple(draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=4)))
    turn_hours = draw(st.sampled_from(TURN_HOURS))
    handoff_day = range_start.replace(tzinfo=None, hour=0, minute=0) + timedelta(days=draw(st.integers(-21, 21)))
    handoff = handoff_day + timedelta(minutes=draw(quarter_of_day))
    restrictions = tuple(
        draw(
            st.lists(
                st.builds(
                    rules.Restriction,
                    days=st.frozensets(st.integers(0, 6), min_size=1),
                    start=quarter_of_day,
                    end=quarter_of_day,
                ),
                max_size=3,
            )
        )
    )
    effective_from = draw(st.none() | instants(range_start, 72))
    effective_until = draw(st.none() | instants(range_start, 120))
    return rules.Layer(
        name=name,
        rotation=rules.Rotation(
            participants, turn_hours, handoff, draw(st.sampled_from([rules.WALL_CLOCK, rules.COVERED_SLOTS]))
        ),
        zone=draw(st.sampled_from([zone, zone, *ZONES])),
        mode=draw(st.sampled_from([rules.EXCLUSIVE, rules.ADDITIVE])),
        restrictions=restrictions,
        effective_from=effective_from,
        effective_until=effective_until,
    )


@st.composite
def windows(draw: st.DrawFn, range_start: datetime) -> tuple[datetime, datetime]:
    start = draw(instants(range_start, 96))
    return start, start + draw(st.integers(1, 4 * 48)) * QUARTER


@st.composite
def schedules(draw: st.DrawFn, range_start: datetime, zone: str) -> rules.Schedule:
    layer_count = draw(st.integers(1, 3))
    built = tuple(draw(layers(f"layer-{index}", range_start, zone)) for index in range(layer_count))
    everyone = [*USERS, "zed"]
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        start, end = draw(windows(range_start))
        mode = draw(st.sampled_from([rules.REPLACE, rules.ADD, rules.REMOVE]))
        replaces = draw(st.none() | st.sampled_from(USERS)) if mode == rules.REPLACE else None
        overrides.append(rules.Override(start, end, draw(st.sampled_from(everyone)), mode, replaces))
    swaps = []
    for _ in range(draw(st.integers(0, 2))):
        start, end = draw(windows(range_start))
        swaps.append(rules.Swap(start, end, draw(st.sampled_from(USERS)), draw(st.sampled_from(everyone))))
    temporary = []
    if draw(st.booleans()):
        start, end = draw(windows(range_start))
        shifts = []
        for _ in range(draw(st.integers(0, 3))):
            shift_start = start + draw(st.integers(0, 20)) * QUARTER
            shift_end = min(end, shift_start + draw(st.integers(1, 40)) * QUARTER)
            if shift_end > shift_start:
                shifts.append(rules.FixedShift(draw(st.sampled_from(everyone)), shift_start, shift_end))
        temporary.append(rules.TemporarySchedule(start, end, tuple(shifts)))
    return rules.Schedule(built, tuple(overrides), tuple(swaps), tuple(temporary))


@st.composite
def cases(draw: st.DrawFn) -> tuple[rules.Schedule, datetime, datetime]:
    zone, day = draw(st.sampled_from(CLOCK_CHANGES))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + draw(st.integers(-3 * 96, 96)) * QUARTER
    end = start + draw(st.integers(1, 5 * 96)) * QUARTER
    return draw(schedules(start, zone)), start, end


def _at(intervals: list[rules.OnCallInterval], instant: datetime) -> dict[object, tuple[str, str | None]]:
    found: dict[object, tuple[str, str | None]] = {}
    for item in intervals:
        if item.covers(instant):
            assert item.user not in found, f"{item.user} is on call twice at {instant}"
            found[item.user] = (item.source, item.layer)
    return found


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_final_intervals_agree_with_the_reference_at_every_quarter_hour(case) -> None:  # type: ignore[no-untyped-def]
    schedule, start, end = case
    intervals = rules.final_intervals(schedule, start, end)

    assert all(earlier.start <= later.start for earlier, later in itertools.pairwise(intervals))
    for item in intervals:
        assert start <= item.start < item.end <= end
        assert item.source in ("layer", "override", "swap", "temporary")
    instant = start
    while instant < end:
        assert _at(intervals, instant) == reference.on_call(schedule, instant), instant
        instant += QUARTER


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_each_layer_alone_agrees_with_the_reference(case) -> None:  # type: ignore[no-untyped-def]
    schedule, start, end = case
    for layer in schedule.layers:
        intervals = rules.layer_intervals(layer, start, end)
        for earlier, later in itertools.pairwise(intervals):
            assert earlier.end <= later.start  # one person at a time, in order
        instant = start
        while instant < end:
            covering = [item.user for item in intervals if item.covers(instant)]
            expected = reference.layer_user(layer, instant)
            assert covering == ([] if expected is None else [expected]), (layer, instant)
            instant += QUARTER


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(0, 96))
def test_on_call_at_reports_whole_stretches(case, offset: int) -> None:  # type: ignore[no-untyped-def]
    schedule, start, _ = case
    instant = start + offset * QUARTER
    found = rules.on_call_at(schedule, instant, horizon=timedelta(days=40))
    wide = rules.final_intervals(schedule, instant - timedelta(days=40), instant + timedelta(days=40))
    assert sorted(found, key=lambda item: str(item.user)) == sorted(
        (item for item in wide if item.covers(instant)), key=lambda item: str(item.user)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 95))
def test_splitting_the_range_changes_nothing_but_the_cut(case, cut: int) -> None:  # type: ignore[no-untyped-def]
    schedule, start, end = case
    middle = min(end - QUARTER, start + cut * QUARTER)
    if middle <= start:
        return
    whole = rules.final_intervals(schedule, start, end)
    parts = rules.final_intervals(schedule, start, middle) + rules.final_intervals(schedule, middle, end)
    instant = start
    while instant < end:
        assert _at(whole, instant) == _at(parts, instant)
        instant += QUARTER
