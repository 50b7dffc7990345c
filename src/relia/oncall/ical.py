"""iCalendar (RFC 5545) export of shifts: one VEVENT per shift, in a named time zone with its VTIMEZONE.

Calendar apps poll a subscription URL and update events by UID, so a shift keeps its UID as long as its
schedule, person and start stay the same (its end may move: a changed event, not a new one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from icalendar import Calendar, Event

from relia.oncall import rules
from relia.oncall.service import Shift

PRODUCT_ID = "-//Relia//On-call schedules//EN"
# What a subscription shows: the last week (so a shift just over is still there) and the next three months.
FEED_PAST = timedelta(days=7)
FEED_FUTURE = timedelta(days=90)
SOURCE_WORDS = {"layer": "layer", "override": "an override", "swap": "a swap", "temporary": "a temporary schedule"}


def feed_range(now: datetime) -> tuple[datetime, datetime]:
    return now - FEED_PAST, now + FEED_FUTURE


def shift_uid(shift: Shift) -> str:
    key = f"{shift.schedule}|{shift.username}|{shift.start.isoformat()}"
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}@relia"


def render(
    shifts: Sequence[Shift],
    *,
    calendar_name: str,
    time_zone: str,
    now: datetime,
    titles: dict[str, str] | None = None,
) -> bytes:
    """The shifts as a VCALENDAR whose times are on ``time_zone``'s clock (with its VTIMEZONE); ``titles`` maps
    schedule names to what the summaries call them."""
    zone = rules.zone_info(time_zone)
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", calendar_name)
    calendar.add("x-wr-timezone", time_zone)
    # Calendar apps poll subscriptions at their own pace; this asks for about once an hour.
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for shift in shifts:
        schedule_title = (titles or {}).get(shift.schedule, shift.schedule)
        event = Event()
        event.add("uid", shift_uid(shift))
        event.add("dtstamp", now)
        event.add("dtstart", shift.start.astimezone(zone))
        event.add("dtend", shift.end.astimezone(zone))
        event.add("summary", f"On call: {shift.name} ({schedule_title})")
        reason = f"layer {shift.layer}" if shift.source == "layer" else SOURCE_WORDS.get(shift.source, shift.source)
        event.add(
            "description",
            f"{shift.name} ({shift.username}) is on call for {schedule_title}, through {reason}.",
        )
        event.add("categories", ["on-call", shift.schedule])
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    if shifts:
        first = min(shift.start for shift in shifts).astimezone(zone).date() - timedelta(days=1)
        last = max(shift.end for shift in shifts).astimezone(zone).date() + timedelta(days=1)
        calendar.add_missing_timezones(first_date=first, last_date=last)
    else:
        calendar.add_missing_timezones()
    return calendar.to_ical()
