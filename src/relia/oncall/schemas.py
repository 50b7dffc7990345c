"""The Schedule spec (config kind and API body) and the on-call API's other input and output models.

A schedule belongs to a team (its members may change it) and is made of layers, listed top first. Each layer is
one rotation in one time zone, optionally restricted to windows of the wall clock; overrides and temporary
schedules sit on top. Times of day and handoff anchors are wall-clock times in the layer's zone; override and
temporary-schedule windows are instants (ISO 8601 with a UTC offset).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from relia.core.schemas import ApiModel, Name, OutModel, Slug, Text, TimeZone, Versioned
from relia.oncall import rules

MAX_WINDOW = timedelta(days=366)
TURN_PATTERN = r"^[1-9][0-9]{0,3}[hdw]$"
_TURN_UNITS = {"h": 1, "d": 24, "w": 24 * 7}
MAX_TURN_HOURS = 52 * 24 * 7


def _explain_yaml_sexagesimal(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020; say so instead of "not a string".
    if isinstance(value, int) and not isinstance(value, bool):
        hours, minutes = divmod(value, 60)
        raise ValueError(
            f"write times of day in quotes, like '{hours:02d}:{minutes:02d}' (YAML reads an unquoted "
            f"{hours}:{minutes:02d} as the number {value})"
        )
    return value


ClockTime = Annotated[
    str,
    BeforeValidator(_explain_yaml_sexagesimal),
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="A time of day on the layer's wall clock, HH:MM (24-hour)", examples=["09:00"]),
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Turn = Annotated[
    str,
    StringConstraints(pattern=TURN_PATTERN),
    Field(description="Whole hours (h), days (d) or weeks (w) of the wall clock, e.g. 12h, 1d, 1w", examples=["1w"]),
]


def clock_minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def turn_hours(value: str) -> int:
    return int(value[:-1]) * _TURN_UNITS[value[-1]]


def _check_year(value: datetime) -> datetime:
    # Far-off years are mistakes, and date arithmetic near year 1 or 9999 overflows.
    if not 1970 <= value.year <= 2200:
        raise ValueError("must be between the years 1970 and 2200")
    return value


Instant = Annotated[
    AwareDatetime,
    AfterValidator(_check_year),
    Field(description="ISO 8601 with a UTC offset or Z", examples=["2026-03-02T14:00:00Z"]),
]


def _check_window(start: datetime, end: datetime, what: str) -> None:
    if end <= start:
        raise ValueError(f"{what} must end after it starts")
    if end - start > MAX_WINDOW:
        raise ValueError(f"{what} may last at most 366 days")


# -------------------------------------------------------------------------------------------------- spec


class RestrictionSpec(ApiModel):
    """On each of ``days``, the layer is on call from ``start`` until ``end`` (the next day when ``end`` is
    not later than ``start``; the same time means a whole day)."""

    days: list[Weekday] = Field(default_factory=lambda: list(rules.WEEKDAYS), min_length=1, max_length=7)
    start: ClockTime
    end: ClockTime

    @field_validator("days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each day may appear once")
        return value


class RotationSpec(ApiModel):
    participants: list[Slug] = Field(
        min_length=1, max_length=50, description="Usernames in turn order; a name may appear more than once."
    )
    turn: Turn
    handoff: datetime = Field(
        description="When the first participant's first turn starts: a wall-clock date and time in the layer's "
        "zone, without a UTC offset (e.g. 2026-01-05T09:00). Every later handoff is a whole number of turns "
        "after it on the same clock, so it stays at 09:00 across DST changes.",
        examples=["2026-01-05T09:00:00"],
    )
    advance: Literal["wall-clock", "covered-slots"] = Field(
        default="wall-clock",
        description="`wall-clock`: every turn goes to the next participant. `covered-slots`: only turns the "
        "restrictions leave some time in do, so a weekday-only daily rotation reaches everyone.",
    )

    @field_validator("turn")
    @classmethod
    def _turn_not_too_long(cls, value: str) -> str:
        if turn_hours(value) > MAX_TURN_HOURS:
            raise ValueError("a turn lasts at most 52 weeks")
        return value

    @field_validator("handoff")
    @classmethod
    def _wall_clock(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError(
                "the handoff is a wall-clock time in the layer's time zone: leave out the UTC offset "
                "(e.g. 2026-01-05T09:00)"
            )
        if value.second or value.microsecond:
            raise ValueError("the handoff is a whole minute")
        if not 1970 <= value.year <= 2200:
            raise ValueError("the handoff must be between the years 1970 and 2200")
        return value


class LayerSpec(ApiModel):
    name: Slug
    mode: Literal["exclusive", "additive"] = Field(
        default="exclusive",
        description="`exclusive`: while this layer has someone on call, the layers below it do not. "
        "`additive`: this layer's person is on call as well (a shadow, a second responder).",
    )
    time_zone: TimeZone | None = Field(default=None, description="The layer's clock; default: the schedule's.")
    rotation: RotationSpec
    restrictions: list[RestrictionSpec] = Field(
        default_factory=list,
        max_length=14,
        description="When the layer is on call, on its own clock; none means always.",
    )
    effective_from: Instant | None = Field(default=None, description="The layer applies from this instant.")
    effective_until: Instant | None = Field(default=None, description="The layer applies until this instant.")

    @model_validator(mode="after")
    def _effective_order(self) -> LayerSpec:
        if self.effective_from and self.effective_until and self.effective_until <= self.effective_from:
            raise ValueError("effectiveUntil must be after effectiveFrom")
        return self


class OverrideSpec(ApiModel):
    start: Instant
    end: Instant
    mode: Literal["replace", "add", "remove"] = Field(
        default="replace",
        description="`replace`: `user` is on call instead of `replaces` (instead of everyone when `replaces` is "
        "left out, even where nobody was). `add`: `user` is on call as well. `remove`: `user` is not on call.",
    )
    user: Slug
    replaces: Slug | None = None
    reason: Text = ""

    @model_validator(mode="after")
    def _consistent(self) -> OverrideSpec:
        _check_window(self.start, self.end, "an override")
        if self.replaces is not None and self.mode != "replace":
            raise ValueError("`replaces` belongs to replace overrides only")
        if self.replaces is not None and self.replaces == self.user:
            raise ValueError("a user cannot replace themself")
        return self


class FixedShiftSpec(ApiModel):
    user: Slug
    start: Instant
    end: Instant

    @model_validator(mode="after")
    def _ordered(self) -> FixedShiftSpec:
        _check_window(self.start, self.end, "a shift")
        return self


class TemporaryScheduleSpec(ApiModel):
    start: Instant
    end: Instant
    shifts: list[FixedShiftSpec] = Field(default_factory=list, max_length=200)
    reason: Text = ""

    @model_validator(mode="after")
    def _shifts_inside(self) -> TemporaryScheduleSpec:
        _check_window(self.start, self.end, "a temporary schedule")
        for shift in self.shifts:
            if shift.start < self.start or shift.end > self.end:
                raise ValueError("every shift of a temporary schedule lies inside its start and end")
        return self


class ScheduleSpec(ApiModel):
    display_name: Name | None = Field(default=None, description="Shown instead of the name where given.")
    team: Slug = Field(description="The owning team: its members and managers may change the schedule.")
    time_zone: TimeZone = Field(default="UTC", description="The default clock of the layers, and of the pages.")
    description: Text = ""
    layers: list[LayerSpec] = Field(
        min_length=1, max_length=10, description="Top first: an exclusive layer hides the layers below it."
    )
    overrides: list[OverrideSpec] = Field(default_factory=list, max_length=200)
    temporary_schedules: list[TemporaryScheduleSpec] = Field(
        default_factory=list,
        max_length=20,
        description="Each replaces everything else (layers, swaps, overrides) inside its window.",
    )

    @field_validator("layers")
    @classmethod
    def _unique_layer_names(cls, value: list[LayerSpec]) -> list[LayerSpec]:
        names = [layer.name for layer in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"layer names must be unique; repeated: {', '.join(repeated)}")
        return value

    @field_validator("temporary_schedules")
    @classmethod
    def _temporary_apart(cls, value: list[TemporaryScheduleSpec]) -> list[TemporaryScheduleSpec]:
        ordered = sorted(value, key=lambda item: item.start)
        for earlier, later in pairwise(ordered):
            if later.start < earlier.end:
                raise ValueError("temporary schedules must not overlap each other")
        return value

    def usernames(self) -> list[tuple[str, str]]:
        """(field path, username) of every user the spec names."""
        found: list[tuple[str, str]] = []
        for index, layer in enumerate(self.layers):
            for position, username in enumerate(layer.rotation.participants):
                found.append((f"layers.{index}.rotation.participants.{position}", username))
        for index, override in enumerate(self.overrides):
            found.append((f"overrides.{index}.user", override.user))
            if override.replaces:
                found.append((f"overrides.{index}.replaces", override.replaces))
        for index, window in enumerate(self.temporary_schedules):
            for position, shift in enumerate(window.shifts):
                found.append((f"temporarySchedules.{index}.shifts.{position}.user", shift.user))
        return found


class ScheduleCreate(ScheduleSpec):
    name: Slug


def to_rules(spec: ScheduleSpec, swaps: tuple[rules.Swap, ...] = ()) -> rules.Schedule:
    """The pure-rules view of a spec; users are keyed by username."""
    layers = tuple(
        rules.Layer(
            name=layer.name,
            rotation=rules.Rotation(
                participants=tuple(layer.rotation.participants),
                turn_hours=turn_hours(layer.rotation.turn),
                handoff=layer.rotation.handoff,
                advance=layer.rotation.advance,
            ),
            zone=layer.time_zone or spec.time_zone,
            mode=layer.mode,
            restrictions=tuple(
                rules.Restriction(
                    days=frozenset(rules.WEEKDAYS.index(day) for day in item.days),
                    start=clock_minutes(item.start),
                    end=clock_minutes(item.end),
                )
                for item in layer.restrictions
            ),
            effective_from=layer.effective_from,
            effective_until=layer.effective_until,
        )
        for layer in spec.layers
    )
    overrides = tuple(
        rules.Override(item.start, item.end, item.user, item.mode, item.replaces) for item in spec.overrides
    )
    temporary = tuple(
        rules.TemporarySchedule(
            item.start,
            item.end,
            tuple(rules.FixedShift(shift.user, shift.start, shift.end) for shift in item.shifts),
        )
        for item in spec.temporary_schedules
    )
    return rules.Schedule(layers=layers, overrides=overrides, swaps=swaps, temporary=temporary)


# ------------------------------------------------------------------------------------------------ output

Source = Literal["layer", "override", "swap", "temporary"]


class OnCallOut(OutModel):
    schedule: str
    user: str = Field(description="The username")
    name: str = Field(description="The person's display name")
    source: Source = Field(description="What put them on call")
    layer: str | None = Field(description="The layer, for source `layer`")
    shift_start: datetime = Field(description="When this stretch on call began (looked for up to 366 days back)")
    shift_end: datetime = Field(description="When it ends (looked for up to 366 days ahead)")


class ShiftOut(OutModel):
    schedule: str
    user: str
    name: str
    source: Source
    layer: str | None
    start: datetime
    end: datetime


class ScheduleOut(Versioned):
    name: str
    team: str
    spec: dict[str, Any]
    on_call: list[OnCallOut] = Field(description="Who is on call now")


class ScheduleOnCallOut(OutModel):
    schedule: str
    on_call: list[OnCallOut]


class HistoryShiftOut(OutModel):
    schedule: str
    user: str
    source: Source
    layer: str | None
    start: datetime
    end: datetime | None = Field(description="None while the shift is still under way")


class PersonLoadOut(OutModel):
    user: str
    name: str
    time_zone: str
    hours: float = Field(description="Hours on call in the period")
    off_hours: float = Field(description="Of those, hours outside 09:00-17:00 Monday to Friday on their clock")
    weekend_hours: float = Field(description="Of those, hours on Saturday or Sunday on their clock")
    pages: int = Field(description="Pages received while on call for this schedule")
    night_pages: int = Field(description="Of those, pages between 22:00 and 07:00 on their clock")


class SpreadOut(OutModel):
    hours: float
    off_hours: float
    weekend_hours: float
    pages: int
    night_pages: int


class FairnessOut(OutModel):
    schedule: str
    start: datetime
    end: datetime
    recorded_until: datetime | None = Field(
        description="The period up to here is read from the recorded shift history; the rest is projected "
        "from the schedule as it is defined now"
    )
    pages_counted: bool = Field(description="False while pages cannot be read yet (see notes)")
    people: list[PersonLoadOut]
    spread: SpreadOut = Field(description="Most loaded minus least loaded, per figure, among the people listed")
    most_loaded: str | None
    least_loaded: str | None
    notes: list[str]


class SwapCreate(ApiModel):
    start: Instant
    end: Instant
    requester: Slug | None = Field(
        default=None, description="Whose on-call time is offered; default you (team managers may name anyone)."
    )
    note: Text = ""

    @model_validator(mode="after")
    def _ordered(self) -> SwapCreate:
        _check_window(self.start, self.end, "a swap")
        return self


class SwapTake(ApiModel):
    taker: Slug | None = Field(
        default=None, description="Who takes the time; default you (team managers may name a team member)."
    )


SwapStatus = Literal["open", "taken", "cancelled"]


class SwapOut(OutModel):
    id: int
    schedule: str
    requester: str
    taker: str | None
    start: datetime
    end: datetime
    status: SwapStatus
    note: str
    created_at: datetime
    created_by: str
    decided_at: datetime | None
    decided_by: str | None


class FeedCreate(ApiModel):
    schedule: Slug | None = Field(
        default=None, description="The schedule to subscribe to; left out: your own shifts on every schedule."
    )


class FeedOut(OutModel):
    schedule: str | None
    created_at: datetime


class FeedCreated(FeedOut):
    url: str = Field(description="Subscribe to this in a calendar app. It is shown once; anyone with it can read it.")
