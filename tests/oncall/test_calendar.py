"""Calendar subscriptions: a URL with a secret (stored hashed) that anyone may GET without signing in, per
schedule and per person; RFC 5545 with VTIMEZONE, read back with icalendar and recurring-ical-events; a wrong,
rotated or revoked secret gets 404."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from sqlalchemy import select

from relia.oncall.models import CalendarFeed
from tests.api.support import assert_problem, ok
from tests.oncall.support import API, schedule_body, weekly_layer

FEEDS = f"{API}/oncall/calendar-feeds"


def berlin_schedule(client, org) -> None:  # type: ignore[no-untyped-def]
    """Daily 09:00 Berlin handoffs between alice and bob, across the spring-forward change on 29 March."""
    layer = weekly_layer(participants=["alice", "bob"])
    layer["rotation"] = {"participants": ["alice", "bob"], "turn": "1d", "handoff": "2026-03-02T09:00"}
    body = schedule_body(timeZone="Europe/Berlin", displayName="Payments primary", layers=[layer])
    ok(client.post(f"{API}/schedules", json=body, headers=org.headers("alice:write")), 201)


def subscribe(client, org, who: str, schedule: str | None) -> str:  # type: ignore[no-untyped-def]
    created = ok(client.post(FEEDS, json={"schedule": schedule}, headers=org.headers(who)), 201)
    assert created["schedule"] == schedule
    return urlsplit(created["url"]).path


def test_a_schedule_calendar_reads_back_as_its_shifts_in_its_own_zone(client, org, clock) -> None:  # type: ignore[no-untyped-def]
    berlin_schedule(client, org)
    clock.set(datetime(2026, 3, 25, 12, tzinfo=UTC))
    path = subscribe(client, org, "carol:write", "payments-primary")

    response = client.get(path)  # no credentials: the URL is the credential

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    assert [zone["TZID"] for zone in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert calendar["X-WR-CALNAME"] == "On call: Payments primary"
    events = recurring_ical_events.of(calendar).between(datetime(2026, 3, 27), datetime(2026, 4, 1))
    found = sorted((event["DTSTART"].dt, event["DTEND"].dt, str(event["SUMMARY"])) for event in events)
    berlin = ZoneInfo("Europe/Berlin")
    days = [datetime(2026, 3, day, 9, tzinfo=berlin) for day in range(26, 32)] + [
        datetime(2026, 4, 1, 9, tzinfo=berlin)
    ]
    expected_people = ["Alice", "Bob", "Alice", "Bob", "Alice", "Bob"]  # 24 days after the anchor: alice's turn
    assert [(start, end) for start, end, _ in found] == list(itertools.pairwise(days))
    assert [summary for _, _, summary in found] == [f"On call: {name} (Payments primary)" for name in expected_people]
    # The turn across the change is 23 hours; both ends are still 09:00 on the Berlin clock.
    spring = next(event for event in events if event["DTSTART"].dt.day == 28)
    assert spring["DTSTART"].params["TZID"] == "Europe/Berlin"
    length = spring["DTEND"].dt.astimezone(UTC) - spring["DTSTART"].dt.astimezone(UTC)
    assert length.total_seconds() == 23 * 3600
    uids = [str(event["UID"]) for event in events]
    assert len(set(uids)) == len(uids)
    assert client.get(path).content.count(b"BEGIN:VEVENT") == response.content.count(b"BEGIN:VEVENT")
    assert str(calendar.walk("VEVENT")[0]["UID"]) == str(
        icalendar.Calendar.from_ical(client.get(path).content).walk("VEVENT")[0]["UID"]
    )  # stable UIDs: calendar apps update events instead of duplicating them


def test_a_personal_calendar_holds_the_persons_shifts_on_every_schedule_on_their_clock(client, org, db) -> None:  # type: ignore[no-untyped-def]
    berlin_schedule(client, org)
    search = schedule_body("search-primary", team="search", layers=[weekly_layer(participants=["carol", "bob"])])
    ok(client.post(f"{API}/schedules", json=search, headers=org.headers("carol:write")), 201)
    path = subscribe(client, org, "bob:write", None)

    calendar = icalendar.Calendar.from_ical(ok_bytes(client.get(path)))

    summaries = {str(event["SUMMARY"]) for event in calendar.walk("VEVENT")}
    assert summaries == {"On call: Bob (Payments primary)", "On call: Bob (search-primary)"}
    assert calendar["X-WR-TIMEZONE"] == "UTC"  # bob's own time zone
    with db.reader() as session:
        stored = session.scalars(select(CalendarFeed.token_hash)).all()
    secret = path.rsplit("/", 1)[1].removesuffix(".ics")
    assert len(stored) == 1
    assert secret not in stored[0] and len(stored[0]) == 64  # only its SHA-256 is kept


def test_a_wrong_rotated_or_revoked_secret_gets_404(client, org) -> None:  # type: ignore[no-untyped-def]
    berlin_schedule(client, org)
    first = subscribe(client, org, "alice:write", "payments-primary")
    assert client.get(first).status_code == 200

    assert_problem(client.get(f"{API}/oncall/calendars/rcal_not-a-real-secret.ics"), 404)
    assert_problem(client.get(f"{API}/oncall/calendars/{'x' * 99}.ics"), 404)
    second = subscribe(client, org, "alice:write", "payments-primary")
    assert_problem(client.get(first), 404)
    assert client.get(second).status_code == 200
    assert [item["schedule"] for item in ok(client.get(FEEDS, headers=org.headers("alice:read")))] == [
        "payments-primary"
    ]

    revoked = client.delete(FEEDS, params={"schedule": "payments-primary"}, headers=org.headers("alice:write"))
    assert revoked.status_code == 204
    assert_problem(client.get(second), 404)
    again = client.delete(FEEDS, params={"schedule": "payments-primary"}, headers=org.headers("alice:write"))
    assert_problem(again, 404)


def test_a_calendar_url_needs_a_user_with_write_rights(client, org, operator_client) -> None:  # type: ignore[no-untyped-def]
    assert_problem(client.post(FEEDS, json={}, headers=org.headers("alice:read")), 403)
    assert_problem(client.post(FEEDS, json={"schedule": "nope"}, headers=org.headers("alice:write")), 404)
    assert_problem(operator_client.post(FEEDS, json={}), 409)  # the local operator is nobody


def ok_bytes(response) -> bytes:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return response.content
