"""A deliberately naive reference for the on-call rules, to test ``relia.oncall.rules`` against.

It answers "who is on call at this instant?" for one instant at a time, straight from the definitions, without
the rules' sweep, turn iteration, window merging or coverage period:

- The wall-clock rule ("a local time happens at the first instant the clock shows it or later") means that at
  instant ``u`` every wall-clock moment up to the *highest reading the clock has shown so far* has happened.
  So a turn has begun, or a restriction window has opened, exactly when that running maximum has reached its
  wall-clock start. The reference finds the running maximum by sampling the clock over the previous two hours
  on a quarter-hour grid: the test zones jump at most an hour back, and every time in the tests falls on that
  grid, so the sampled maximum decides every comparison exactly.
- Covered-slots rotations count covered turns one by one from the anchor.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import cache

from relia.oncall import rules

GRID = timedelta(minutes=15)
LOOK_BACK = 8  # quarter hours: two hours


def running_wall_clock(instant: datetime, zone: str) -> datetime:
    """The highest wall-clock reading shown in ``zone`` up to ``instant`` (which lies on the grid)."""
    info = rules.zone_info(zone)
    return max((instant - step * GRID).astimezone(info).replace(tzinfo=None) for step in range(LOOK_BACK + 1))


def _in_window(reading: datetime, restrictions: tuple[rules.Restriction, ...]) -> bool:
    for day_offset in (0, 1):
        day = reading.date() - timedelta(days=day_offset)
        for restriction in restrictions:
            if day.weekday() in restriction.days:
                opens = datetime.combine(day, time()) + timedelta(minutes=restriction.start)
                if opens <= reading < opens + timedelta(minutes=restriction.length_minutes):
                    return True
    return False


def _turn_covered(layer: rules.Layer, index: int) -> bool:
    rotation = layer.rotation
    start, end = rotation.turn_start(index), rotation.turn_start(index + 1)
    moment = start
    while moment < end:  # every minute of the turn, on the wall clock
        if _in_window(moment, layer.restrictions):
            return True
        moment += timedelta(minutes=15)
    return False


def layer_user(layer: rules.Layer, instant: datetime) -> object | None:
    if layer.effective_from and instant < layer.effective_from:
        return None
    if layer.effective_until and instant >= layer.effective_until:
        return None
    reading = running_wall_clock(instant, layer.zone)
    if layer.restrictions and not _in_window(reading, layer.restrictions):
        return None
    rotation = layer.rotation
    index = (reading - rotation.handoff) // rotation.turn
    position = index
    if rotation.advance == rules.COVERED_SLOTS and layer.restrictions:
        position = _covered_count(layer, index)
    return rotation.participants[position % len(rotation.participants)]


@cache
def _covered_count(layer: rules.Layer, index: int) -> int:
    """Covered turns in [0, index), counted one by one; negative for turns before the anchor."""
    turns = range(min(0, index), max(0, index))
    return (1 if index >= 0 else -1) * sum(_turn_covered(layer, turn) for turn in turns)


def on_call(schedule: rules.Schedule, instant: datetime) -> dict[object, tuple[str, str | None]]:
    current: dict[object, tuple[str, str | None]] = {}
    for layer in reversed(schedule.layers):
        user = layer_user(layer, instant)
        if user is None:
            continue
        if layer.mode == rules.EXCLUSIVE:
            current = {}
        current[user] = ("layer", layer.name)
    for swap in schedule.swaps:
        if swap.start <= instant < swap.end and swap.requester in current:
            del current[swap.requester]
            current.setdefault(swap.taker, ("swap", None))
    for override in sorted(schedule.overrides, key=lambda item: item.start):
        if not override.start <= instant < override.end:
            continue
        if override.mode == rules.REMOVE:
            current.pop(override.user, None)
        elif override.mode == rules.ADD:
            current.setdefault(override.user, ("override", None))
        elif override.replaces is None:
            current = {override.user: current.get(override.user, ("override", None))}
        elif override.replaces in current:
            del current[override.replaces]
            current.setdefault(override.user, ("override", None))
    for window in schedule.temporary:
        if window.start <= instant < window.end:
            current = {shift.user: ("temporary", None) for shift in window.shifts if shift.start <= instant < shift.end}
    return current
