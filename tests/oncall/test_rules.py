"""The on-call rules by example: DST around a 09:00 handoff in Berlin and New York, skipped and repeated
handoff times, restriction windows that cross a clock change, the covered-slots advance, layer composition,
overrides, swaps, temporary schedules, whole stretches, and the load figures."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from relia.oncall import rules

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def daily(
    zone: str, people: tuple[str, ...] = ("ana", "ben", "cy"), *, at: tuple[int, int] = (9, 0), **layer
) -> rules.Layer:  # type: ignore[no-untyped-def]
    handoff = datetime(2026, 1, 5, *at)  # a Monday
    return rules.Layer("daily", rules.Rotation(people, 24, handoff), zone, **layer)


def spans(intervals: list[rules.OnCallInterval]) -> list[tuple[str, datetime, datetime]]:
    return [(str(item.user), item.start, item.end) for item in intervals]


# ------------------------------------------------------------------------------------------------------ DST


@pytest.mark.parametrize(
    ("zone", "before", "change", "after", "hours"),
    [
        # Spring forward: the turn that spans the change is 23 hours long; 09:00 stays 09:00.
        (BERLIN, utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7), 23),
        (NEW_YORK, utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13), 23),
        # Fall back: 25 hours.
        (BERLIN, utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8), 25),
        (NEW_YORK, utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14), 25),
    ],
)
def test_a_daily_09_00_handoff_stays_at_09_00_across_a_clock_change(zone, before, change, after, hours) -> None:  # type: ignore[no-untyped-def]
    layer = daily(zone)
    found = rules.layer_intervals(layer, before, after)

    assert [(item.start, item.end) for item in found] == [(before, change), (change, after)]
    assert (change - before) == timedelta(hours=hours)
    for item in found:
        assert rules.wall_clock(item.start, rules.zone_info(zone)).time().hour == 9
    assert rules.handoffs(layer.rotation, zone, before, after) == [before, change]


def test_the_rotation_keeps_its_order_through_both_changes_of_a_year() -> None:
    layer = daily(NEW_YORK)
    found = rules.layer_intervals(layer, utc(2026, 1, 5, 14), utc(2027, 1, 5, 14))

    assert len(found) == 365
    assert [item.user for item in found[:4]] == ["ana", "ben", "cy", "ana"]
    assert all(item.user == ("ana", "ben", "cy")[index % 3] for index, item in enumerate(found))
    assert all(earlier.end == later.start for earlier, later in itertools.pairwise(found))
    assert {rules.wall_clock(item.start, rules.zone_info(NEW_YORK)).hour for item in found} == {9}


def test_a_weekly_monday_09_00_handoff_across_spring_forward() -> None:
    layer = rules.Layer("weekly", rules.Rotation(("ana", "ben"), 168, datetime(2026, 3, 2, 9)), BERLIN)

    found = rules.layer_intervals(layer, utc(2026, 3, 2, 8), utc(2026, 4, 6, 7))

    assert spans(found) == [
        ("ana", utc(2026, 3, 2, 8), utc(2026, 3, 9, 8)),
        ("ben", utc(2026, 3, 9, 8), utc(2026, 3, 16, 8)),
        ("ana", utc(2026, 3, 16, 8), utc(2026, 3, 23, 8)),
        ("ben", utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)),  # 167 hours: the clocks went forward on the 29th
        ("ana", utc(2026, 3, 30, 7), utc(2026, 4, 6, 7)),
    ]


def test_a_handoff_in_the_skipped_hour_happens_when_the_clocks_jump() -> None:
    layer = daily(NEW_YORK, at=(2, 30))

    found = rules.layer_intervals(layer, utc(2026, 3, 7, 7, 30), utc(2026, 3, 9, 6, 30))

    # 02:30 EST on the 7th; 02:30 does not exist on the 8th, so 03:00 EDT (07:00 UTC); 02:30 EDT on the 9th.
    assert [(item.start, item.end) for item in found] == [
        (utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7)),
        (utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)),
    ]
    assert rules.to_utc(datetime(2026, 3, 8, 2, 30), rules.zone_info(NEW_YORK)) == utc(2026, 3, 8, 7)


def test_a_handoff_in_the_repeated_hour_happens_at_its_first_occurrence() -> None:
    layer = daily(NEW_YORK, at=(1, 30))

    found = rules.layer_intervals(layer, utc(2026, 10, 31, 5, 30), utc(2026, 11, 2, 6, 30))

    # 01:30 EDT (05:30 UTC) on 1 November, not 01:30 EST an hour later; that turn lasts 25 hours.
    assert [(item.start, item.end) for item in found] == [
        (utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30)),
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),
    ]


@pytest.mark.parametrize(
    ("zone", "day", "opens", "closes", "hours"),
    [
        # A night window 22:00-06:00 that spans spring forward is 7 hours long, one spanning fall back 9.
        (BERLIN, 28, utc(2026, 3, 28, 21), utc(2026, 3, 29, 4), 7),
        (NEW_YORK, 7, utc(2026, 3, 8, 3), utc(2026, 3, 8, 10), 7),
    ],
)
def test_a_night_window_across_spring_forward(zone, day, opens, closes, hours) -> None:  # type: ignore[no-untyped-def]
    night = rules.Restriction(EVERY_DAY, 22 * 60, 6 * 60)
    found = rules.restriction_windows(
        [night], rules.zone_info(zone), opens - timedelta(hours=1), closes + timedelta(hours=1)
    )

    assert (opens, closes) in found
    assert closes - opens == timedelta(hours=hours)


def test_a_night_window_across_fall_back_lasts_nine_hours() -> None:
    night = rules.Restriction(EVERY_DAY, 22 * 60, 6 * 60)
    for zone, opens, closes in (
        (BERLIN, utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)),
        (NEW_YORK, utc(2026, 11, 1, 2), utc(2026, 11, 1, 11)),
    ):
        found = rules.restriction_windows([night], rules.zone_info(zone), opens, closes)
        assert found == [(opens, closes)]
        assert closes - opens == timedelta(hours=9)


def test_a_restricted_layer_is_on_call_only_inside_its_windows_on_its_own_clock() -> None:
    office = rules.Restriction(WEEKDAYS, 9 * 60, 17 * 60)
    layer = daily(BERLIN, restrictions=(office,))

    found = rules.layer_intervals(layer, utc(2026, 3, 27, 0), utc(2026, 3, 31, 0))

    # Friday in CET, the weekend not at all, Monday in CEST (81 and 84 days after the anchor: ana's turns).
    assert spans(found) == [
        ("ana", utc(2026, 3, 27, 8), utc(2026, 3, 27, 16)),
        ("ana", utc(2026, 3, 30, 7), utc(2026, 3, 30, 15)),
    ]


# ------------------------------------------------------------------------------------------ covered slots


def test_covered_slots_give_every_participant_turns_on_a_weekday_only_daily_rotation() -> None:
    """GoAlert #55: 14 people, a daily rotation, weekday-only rules. Advancing on the wall clock, the 4 whose
    turns always land on a weekend never go on call; advancing only on covered turns, everyone does, evenly."""
    people = tuple(f"p{index:02d}" for index in range(14))
    office = rules.Restriction(WEEKDAYS, 9 * 60, 17 * 60)
    start, end = utc(2026, 1, 5), utc(2026, 1, 5) + timedelta(weeks=14)

    def on_call(advance: str) -> dict[str, int]:
        layer = rules.Layer(
            "day", rules.Rotation(people, 24, datetime(2026, 1, 5, 9), advance), "UTC", restrictions=(office,)
        )
        counts = dict.fromkeys(people, 0)
        for item in rules.layer_intervals(layer, start, end):
            counts[str(item.user)] += 1
        return counts

    wall_clock, covered = on_call(rules.WALL_CLOCK), on_call(rules.COVERED_SLOTS)

    assert sorted(person for person, days in wall_clock.items() if days == 0) == ["p05", "p06", "p12", "p13"]
    assert set(covered.values()) == {5}  # 70 weekdays over 14 people


def test_covered_slots_count_back_before_the_anchor_too() -> None:
    office = rules.Restriction(WEEKDAYS, 9 * 60, 17 * 60)
    layer = rules.Layer(
        "day",
        rules.Rotation(("ana", "ben", "cy"), 24, datetime(2026, 1, 12, 9), rules.COVERED_SLOTS),
        "UTC",
        restrictions=(office,),
    )

    found = rules.layer_intervals(layer, utc(2026, 1, 5), utc(2026, 1, 17))

    # The week before the anchor ends with cy on the Friday, so the anchor's Monday is ana's again.
    assert [str(item.user) for item in found] == ["ben", "cy", "ana", "ben", "cy", "ana", "ben", "cy", "ana", "ben"]


# ------------------------------------------------------------------------------------------- composition


def test_an_exclusive_layer_hides_the_layers_below_it_and_an_additive_one_adds_its_person() -> None:
    office = rules.Restriction(WEEKDAYS, 9 * 60, 17 * 60)
    base = rules.Layer("base", rules.Rotation(("night",), 168, datetime(2026, 1, 5)), "UTC")
    day = rules.Layer("day", rules.Rotation(("day",), 168, datetime(2026, 1, 5)), "UTC", restrictions=(office,))
    shadow = rules.Layer(
        "shadow",
        rules.Rotation(("trainee",), 168, datetime(2026, 1, 5)),
        "UTC",
        mode=rules.ADDITIVE,
        restrictions=(office,),
    )
    schedule = rules.Schedule((shadow, day, base))

    found = rules.final_intervals(schedule, utc(2026, 3, 2), utc(2026, 3, 3))

    assert [(str(i.user), i.start, i.end, i.layer) for i in found] == [
        ("night", utc(2026, 3, 2), utc(2026, 3, 2, 9), "base"),
        ("trainee", utc(2026, 3, 2, 9), utc(2026, 3, 2, 17), "shadow"),
        ("day", utc(2026, 3, 2, 9), utc(2026, 3, 2, 17), "day"),
        ("night", utc(2026, 3, 2, 17), utc(2026, 3, 3), "base"),
    ]


def test_a_layer_applies_only_between_its_effective_dates() -> None:
    old = rules.Layer(
        "old", rules.Rotation(("ana",), 24, datetime(2026, 1, 5)), "UTC", effective_until=utc(2026, 3, 2, 12)
    )
    new = rules.Layer(
        "new", rules.Rotation(("ben",), 24, datetime(2026, 1, 5)), "UTC", effective_from=utc(2026, 3, 2, 12)
    )

    found = rules.final_intervals(rules.Schedule((new, old)), utc(2026, 3, 2), utc(2026, 3, 3))

    assert spans(found) == [
        ("ana", utc(2026, 3, 2), utc(2026, 3, 2, 12)),
        ("ben", utc(2026, 3, 2, 12), utc(2026, 3, 3)),
    ]


def base_schedule(**changes) -> rules.Schedule:  # type: ignore[no-untyped-def]
    layer = rules.Layer("week", rules.Rotation(("ana", "ben"), 168, datetime(2026, 3, 2)), "UTC")
    return rules.Schedule((layer,), **changes)


def test_overrides_replace_one_person_everyone_add_and_remove() -> None:
    day = (utc(2026, 3, 3), utc(2026, 3, 4))
    cases = {
        "replace ana": (rules.Override(*day, "cy", rules.REPLACE, "ana"), {"cy"}),
        "replace ben (not on call)": (rules.Override(*day, "cy", rules.REPLACE, "ben"), {"ana"}),
        "replace everyone": (rules.Override(*day, "cy"), {"cy"}),
        "add": (rules.Override(*day, "cy", rules.ADD), {"ana", "cy"}),
        "remove": (rules.Override(*day, "ana", rules.REMOVE), set()),
    }
    for name, (override, expected) in cases.items():
        found = rules.final_intervals(base_schedule(overrides=(override,)), *day)
        assert {str(item.user) for item in found} == expected, name
        assert all(item.source == ("layer" if item.user == "ana" else "override") for item in found), name


def test_a_replace_override_covers_a_gap() -> None:
    office = rules.Restriction(WEEKDAYS, 9 * 60, 17 * 60)
    layer = rules.Layer("day", rules.Rotation(("ana",), 168, datetime(2026, 3, 2)), "UTC", restrictions=(office,))
    override = rules.Override(utc(2026, 3, 2, 17), utc(2026, 3, 2, 20), "cy")

    found = rules.final_intervals(rules.Schedule((layer,), overrides=(override,)), utc(2026, 3, 2), utc(2026, 3, 3))

    assert spans(found) == [
        ("ana", utc(2026, 3, 2, 9), utc(2026, 3, 2, 17)),
        ("cy", utc(2026, 3, 2, 17), utc(2026, 3, 2, 20)),
    ]


def test_a_taken_swap_gives_the_requesters_time_in_its_window_to_the_taker() -> None:
    swap = rules.Swap(utc(2026, 3, 4), utc(2026, 3, 11, 12), "ana", "cy")

    found = rules.final_intervals(base_schedule(swaps=(swap,)), utc(2026, 3, 2), utc(2026, 3, 16))

    assert [(str(i.user), i.start, i.end, i.source) for i in found] == [
        ("ana", utc(2026, 3, 2), utc(2026, 3, 4), "layer"),
        ("cy", utc(2026, 3, 4), utc(2026, 3, 9), "swap"),
        ("ben", utc(2026, 3, 9), utc(2026, 3, 16), "layer"),  # ben's own week is not part of ana's swap
    ]


def test_of_two_swaps_over_one_shift_the_first_offered_holds_it_whatever_their_starts() -> None:
    # Offered first (listed first: the service lists them by id) but starting later than the second.
    first_offered = rules.Swap(utc(2026, 3, 5), utc(2026, 3, 8), "ana", "cy")
    second_offered = rules.Swap(utc(2026, 3, 4), utc(2026, 3, 9), "ana", "dee")

    schedule = base_schedule(swaps=(first_offered, second_offered))

    found = rules.final_intervals(schedule, utc(2026, 3, 2), utc(2026, 3, 9))

    assert [(str(i.user), i.start, i.end, i.source) for i in found] == [
        ("ana", utc(2026, 3, 2), utc(2026, 3, 4), "layer"),
        ("dee", utc(2026, 3, 4), utc(2026, 3, 5), "swap"),
        ("cy", utc(2026, 3, 5), utc(2026, 3, 8), "swap"),
        ("dee", utc(2026, 3, 8), utc(2026, 3, 9), "swap"),
    ]


def test_overrides_apply_after_swaps_and_a_temporary_schedule_replaces_everything() -> None:
    swap = rules.Swap(utc(2026, 3, 2), utc(2026, 3, 9), "ana", "cy")
    override = rules.Override(utc(2026, 3, 3), utc(2026, 3, 4), "dee", rules.REPLACE, "cy")
    temporary = rules.TemporarySchedule(
        utc(2026, 3, 5), utc(2026, 3, 6), (rules.FixedShift("eve", utc(2026, 3, 5, 6), utc(2026, 3, 5, 18)),)
    )
    schedule = base_schedule(swaps=(swap,), overrides=(override,), temporary=(temporary,))

    found = rules.final_intervals(schedule, utc(2026, 3, 2), utc(2026, 3, 7))

    assert [(str(i.user), i.start, i.end, i.source) for i in found] == [
        ("cy", utc(2026, 3, 2), utc(2026, 3, 3), "swap"),
        ("dee", utc(2026, 3, 3), utc(2026, 3, 4), "override"),
        ("cy", utc(2026, 3, 4), utc(2026, 3, 5), "swap"),
        ("eve", utc(2026, 3, 5, 6), utc(2026, 3, 5, 18), "temporary"),  # the rest of the window is a gap
        ("cy", utc(2026, 3, 6), utc(2026, 3, 7), "swap"),
    ]


def test_on_call_at_reports_the_whole_stretch_and_who_comes_next() -> None:
    schedule = base_schedule()

    [found] = rules.on_call_at(schedule, utc(2026, 5, 13, 12))

    assert (found.user, found.start, found.end) == ("ana", utc(2026, 5, 11), utc(2026, 5, 18))  # week 10
    assert rules.next_change(schedule, utc(2026, 5, 13, 12)) == utc(2026, 5, 18)
    lonely = rules.Schedule((rules.Layer("only", rules.Rotation(("ana",), 24, datetime(2026, 1, 5)), "UTC"),))
    [always] = rules.on_call_at(lonely, utc(2026, 5, 13), horizon=timedelta(days=30))
    assert (always.start, always.end) == (utc(2026, 4, 13), utc(2026, 6, 12))  # cut at the horizon


# ------------------------------------------------------------------------------------------------- loads


def test_split_hours_counts_off_hours_and_weekends_on_the_persons_clock() -> None:
    # Friday 2026-03-06 12:00 to Monday 10:00 in New York (EST): 70 hours; 5 working hours Friday, 1 Monday.
    total, off, weekend = rules.split_hours(utc(2026, 3, 6, 17), utc(2026, 3, 9, 14), NEW_YORK)

    assert total == pytest.approx(69)  # one hour fewer: the clocks went forward on Sunday
    assert weekend == pytest.approx(47)
    assert off == pytest.approx(69 - 5 - 1)


def test_loads_count_pages_only_while_on_call_and_night_pages_on_the_persons_clock() -> None:
    intervals = [rules.OnCallInterval("ana", utc(2026, 3, 2), utc(2026, 3, 3), "layer", "week")]
    pages = {"ana": [utc(2026, 3, 2, 3), utc(2026, 3, 2, 12), utc(2026, 3, 4)]}

    loads = rules.loads(intervals, {"ana": BERLIN}, pages, people=["ana", "ben"])

    assert loads["ana"].hours == pytest.approx(24)
    assert (loads["ana"].pages, loads["ana"].night_pages) == (2, 1)  # 04:00 Berlin is night; 13:00 is not
    assert loads["ben"].hours == 0
    assert rules.spread(load.hours for load in loads.values()) == pytest.approx(24)


# ------------------------------------------------------------------------------------------------- purity


def test_the_rules_import_nothing_with_io_and_never_read_the_clock() -> None:
    import ast
    from pathlib import Path

    from tests.slo.test_purity import CLOCK_CALLS
    from tests.test_layers import IO_MODULES, imports_of

    path = Path(rules.__file__)
    with_io = [name for name in imports_of(path) if any(name == m or name.startswith(m + ".") for m in IO_MODULES)]
    assert with_io == []
    assert [name for name in imports_of(path) if name.startswith("relia.") and name != "relia.oncall.rules"] == []
    calls = [
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS
    ]
    assert calls == []
