"""Swaps (request, take, cancel, and who may), the shift history the worker's tick writes (exact handoff times,
edits only ever changing the future, kept after the schedule is deleted), and fairness over a period that is
partly recorded and partly projected, with pages from the notification domain or without it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relia.core import hooks
from relia.core.engine import run_tick
from relia.oncall import service
from tests.api.support import assert_problem, ok
from tests.oncall.support import API, counts, schedule_body, weekly_layer

SWAPS = f"{API}/schedules/payments-primary/swaps"


@pytest.fixture
def weekly(client, org):  # type: ignore[no-untyped-def]
    """payments-primary: alice this week (from Monday 2026-03-02 00:00 UTC), bob the next, and so on."""
    return ok(client.post(f"{API}/schedules", json=schedule_body(), headers=org.headers("alice:write")), 201)


def shifts(client, org, start: str, end: str) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    found = ok(
        client.get(
            f"{API}/schedules/payments-primary/shifts",
            params={"start": start, "end": end},
            headers=org.headers("alice:read"),
        )
    )
    return [(item["user"], item["start"], item["end"], item["source"]) for item in found]


# ---------------------------------------------------------------------------------------------------- swaps


def test_a_swap_is_requested_taken_by_a_team_mate_and_then_cancelled(client, org, weekly, db) -> None:  # type: ignore[no-untyped-def]
    window = {"start": "2026-03-04T00:00:00Z", "end": "2026-03-06T00:00:00Z", "note": "dentist"}

    requested = ok(client.post(SWAPS, json=window, headers=org.headers("alice:write")), 201)
    assert (requested["requester"], requested["status"], requested["taker"]) == ("alice", "open", None)
    assert shifts(client, org, "2026-03-04T00:00:00Z", "2026-03-06T00:00:00Z") == [
        ("alice", "2026-03-04T00:00:00Z", "2026-03-06T00:00:00Z", "layer")  # an open swap changes nothing
    ]
    assert_problem(client.post(f"{SWAPS}/{requested['id']}/take", json={}, headers=org.headers("carol:write")), 403)
    assert_problem(client.post(f"{SWAPS}/{requested['id']}/take", json={}, headers=org.headers("alice:write")), 422)

    taken = ok(client.post(f"{SWAPS}/{requested['id']}/take", json={}, headers=org.headers("bob:write")))
    assert (taken["status"], taken["taker"], taken["decidedBy"]) == ("taken", "bob", "bob")
    assert shifts(client, org, "2026-03-03T00:00:00Z", "2026-03-07T00:00:00Z") == [
        ("alice", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z", "layer"),
        ("bob", "2026-03-04T00:00:00Z", "2026-03-06T00:00:00Z", "swap"),
        ("alice", "2026-03-06T00:00:00Z", "2026-03-07T00:00:00Z", "layer"),
    ]
    assert_problem(client.post(f"{SWAPS}/{requested['id']}/take", json={}, headers=org.headers("bob:write")), 409)
    assert_problem(client.post(f"{SWAPS}/{requested['id']}/cancel", headers=org.headers("carol:write")), 403)

    cancelled = ok(client.post(f"{SWAPS}/{requested['id']}/cancel", headers=org.headers("bob:write")))
    assert cancelled["status"] == "cancelled"
    assert shifts(client, org, "2026-03-04T00:00:00Z", "2026-03-06T00:00:00Z")[0][0] == "alice"
    listed = ok(client.get(SWAPS, headers=org.headers("carol:write")))
    assert [(item["id"], item["status"]) for item in listed] == [(requested["id"], "cancelled")]


def test_a_manager_offers_someone_elses_time_but_a_member_cannot(client, org, weekly) -> None:  # type: ignore[no-untyped-def]
    window = {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z", "requester": "bob"}
    assert_problem(client.post(SWAPS, json={**window, "requester": "alice"}, headers=org.headers("bob:write")), 403)
    offered = ok(client.post(SWAPS, json=window, headers=org.headers("alice:write")), 201)  # alice manages payments
    assert (offered["requester"], offered["createdBy"]) == ("bob", "alice")


@pytest.mark.parametrize(
    ("window", "path"),
    [
        ({"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z"}, "start"),  # bob's week: nothing to swap
        ({"start": "2026-02-20T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),  # over
        ({"start": "2026-03-05T00:00:00Z", "end": "2026-03-04T00:00:00Z"}, "body"),
        ({"start": "2026-03-04T00:00:00Z", "end": "2026-03-05T00:00:00Z", "requester": "zoe"}, "requester"),
    ],
)
def test_a_swap_of_nothing_or_of_the_past_is_refused_and_changes_nothing(client, org, weekly, db, window, path) -> None:  # type: ignore[no-untyped-def]
    before = counts(db)
    problem = assert_problem(client.post(SWAPS, json=window, headers=org.headers("alice:write")), 422)
    assert any(error["path"] == path for error in problem["errors"]), problem
    assert counts(db) == before


# -------------------------------------------------------------------------------------------------- history


def history(client, org, start: str, end: str) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    found = ok(
        client.get(
            f"{API}/schedules/payments-primary/history",
            params={"start": start, "end": end},
            headers=org.headers("alice:read"),
        )
    )
    return [(item["user"], item["start"], item["end"]) for item in found]


def test_the_tick_writes_who_was_on_call_at_the_exact_handoffs_and_edits_only_change_the_future(  # type: ignore[no-untyped-def]
    client, org, weekly, db, clock
) -> None:
    announced: list[tuple[str, str]] = []

    @hooks.subscribe("oncall.shift.began")
    def _began(session, **event):  # type: ignore[no-untyped-def]
        announced.append(("began", event["username"]))

    try:
        clock.set(datetime(2026, 3, 9, 0, 7, tzinfo=UTC))  # seven minutes after the handoff to bob
        run_tick(db, clock)
    finally:
        hooks._subscribers["oncall.shift.began"].remove(_began)

    # The history starts when the schedule was created (09:00 on the 2nd), and the handoff is exact.
    assert history(client, org, "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z") == [
        ("alice", "2026-03-02T09:00:00Z", "2026-03-09T00:00:00Z"),
        ("bob", "2026-03-09T00:00:00Z", None),
    ]
    assert announced == [("began", "alice"), ("began", "bob")]

    # Bob hands his week to carol's rotation from now on; what happened stays as it was.
    body = schedule_body(layers=[weekly_layer(participants=["carol"])])
    del body["name"]
    ok(client.put(f"{API}/schedules/payments-primary", json=body, headers=org.headers("root:admin")))
    clock.advance(timedelta(hours=1))
    run_tick(db, clock)
    assert history(client, org, "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z") == [
        ("alice", "2026-03-02T09:00:00Z", "2026-03-09T00:00:00Z"),
        ("bob", "2026-03-09T00:00:00Z", "2026-03-09T00:07:00Z"),
        ("carol", "2026-03-09T00:07:00Z", None),
    ]

    # Deleting the schedule ends the open shift; the history stays readable under the name.
    clock.advance(timedelta(hours=2))
    assert client.delete(f"{API}/schedules/payments-primary", headers=org.headers("root:admin")).status_code == 204
    assert history(client, org, "2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z")[-1] == (
        "carol",
        "2026-03-09T00:07:00Z",
        "2026-03-09T03:07:00Z",
    )
    assert_problem(
        client.get(f"{API}/schedules/never-was/history", headers=org.headers("alice:read")),
        404,
    )


def test_a_tick_that_runs_again_writes_nothing_twice(client, org, weekly, db, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 3, 20, tzinfo=UTC))
    run_tick(db, clock)
    written = counts(db)["oncall_shift_events"]
    run_tick(db, clock)
    clock.advance(timedelta(seconds=30))  # less than the minute the step waits for
    run_tick(db, clock)
    assert counts(db)["oncall_shift_events"] == written == 5  # alice, bob, alice began; the first two ended


# ------------------------------------------------------------------------------------------------- fairness


def test_fairness_reads_the_history_then_the_projection_and_counts_pages_when_there_are_any(  # type: ignore[no-untyped-def]
    client, org, weekly, db, clock, monkeypatch
) -> None:
    clock.set(datetime(2026, 3, 9, 0, tzinfo=UTC))
    run_tick(db, clock)
    monkeypatch.setattr(service, "_pages_reader", lambda: None)
    params = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-16T00:00:00Z"}

    without_pages = ok(
        client.get(f"{API}/schedules/payments-primary/fairness", params=params, headers=org.headers("alice:read"))
    )

    hours = {row["user"]: row["hours"] for row in without_pages["people"]}
    assert hours == {"alice": 159.0, "bob": 168.0}  # alice's history starts at creation, 09:00 on the 2nd
    assert without_pages["recordedUntil"] == "2026-03-09T00:00:00Z"
    assert (without_pages["mostLoaded"], without_pages["leastLoaded"]) == ("bob", "alice")
    assert without_pages["spread"]["hours"] == 9.0
    assert without_pages["pagesCounted"] is False
    assert any("not installed" in note for note in without_pages["notes"])
    weekend = {row["user"]: row["weekendHours"] for row in without_pages["people"]}
    assert weekend == {"alice": 48.0, "bob": 48.0}

    def pages_by_user(session, *, user_ids, start, end):  # type: ignore[no-untyped-def]
        from sqlalchemy import select

        from relia.catalog.models import User

        ids = dict(session.execute(select(User.username, User.id)).all())
        return {
            ids["bob"]: [datetime(2026, 3, 10, 3, tzinfo=UTC), datetime(2026, 3, 10, 14, tzinfo=UTC)],
            ids["alice"]: [datetime(2026, 3, 12, 3, tzinfo=UTC)],  # bob's week: not a page of this rotation's
        }

    monkeypatch.setattr(service, "_pages_reader", lambda: pages_by_user)
    with_pages = ok(
        client.get(f"{API}/schedules/payments-primary/fairness", params=params, headers=org.headers("alice:read"))
    )
    pages = {row["user"]: (row["pages"], row["nightPages"]) for row in with_pages["people"]}
    assert pages == {"alice": (0, 0), "bob": (2, 1)}
    assert with_pages["pagesCounted"] is True
    assert with_pages["spread"]["pages"] == 2
