"""The on-call API on SQLite and PostgreSQL: schedules (create, read, replace, delete, versions, rights), bad
input refused with field paths and nothing changed, who is on call, shifts, the batch questions, and the
entry points other domains call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relia.oncall import service
from tests.api.support import assert_problem, ok
from tests.oncall.support import API, counts, schedule_body, versions, weekly_layer


def create(client, org, body=None, who: str = "alice:write"):  # type: ignore[no-untyped-def]
    return ok(client.post(f"{API}/schedules", json=body or schedule_body(), headers=org.headers(who)), 201)


# ------------------------------------------------------------------------------------------------ lifecycle


def test_create_read_replace_and_delete_a_schedule(client, org, db) -> None:  # type: ignore[no-untyped-def]
    created = create(client, org)
    assert (created["name"], created["team"], created["version"]) == ("payments-primary", "payments", 1)
    assert created["spec"]["layers"][0]["rotation"] == {
        "participants": ["alice", "bob"],
        "turn": "1w",
        "handoff": "2026-03-02T00:00:00",
        "advance": "wall-clock",
    }
    [now] = created["onCall"]
    assert (now["user"], now["source"], now["layer"]) == ("alice", "layer", "primary")
    assert (now["shiftStart"], now["shiftEnd"]) == ("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z")

    response = client.get(f"{API}/schedules/payments-primary", headers=org.headers("carol:write"))
    assert ok(response)["spec"] == created["spec"]
    assert response.headers["ETag"] == '"1"'

    replaced = schedule_body(layers=[weekly_layer(participants=["bob", "alice"])])
    del replaced["name"]
    updated = client.put(
        f"{API}/schedules/payments-primary", json=replaced, headers={**org.headers("bob:write"), "If-Match": '"1"'}
    )
    assert ok(updated)["version"] == 2
    assert updated.json()["onCall"][0]["user"] == "bob"

    listed = ok(client.get(f"{API}/schedules", headers=org.headers("alice:read")))
    assert [item["name"] for item in listed["items"]] == ["payments-primary"]

    stale = client.delete(
        f"{API}/schedules/payments-primary", headers={**org.headers("alice:write"), "If-Match": '"1"'}
    )
    assert_problem(stale, 412)
    assert client.delete(f"{API}/schedules/payments-primary", headers=org.headers("alice:write")).status_code == 204
    assert_problem(client.get(f"{API}/schedules/payments-primary", headers=org.headers("alice:read")), 404)
    audit = ok(client.get(f"{API}/audit", params={"kind": "Schedule"}, headers=org.headers("root:admin")))["items"]
    assert [entry["action"] for entry in audit] == ["delete", "update", "create"]


def test_only_the_teams_members_and_administrators_change_a_schedule(client, org, db) -> None:  # type: ignore[no-untyped-def]
    before = counts(db)
    assert_problem(client.post(f"{API}/schedules", json=schedule_body(), headers=org.headers("carol:write")), 403)
    assert_problem(client.post(f"{API}/schedules", json=schedule_body(), headers=org.headers("alice:read")), 403)
    assert counts(db) == before

    create(client, org, who="bob:write")  # a member, not a manager
    body = schedule_body(description="changed")
    del body["name"]
    assert_problem(client.put(f"{API}/schedules/payments-primary", json=body, headers=org.headers("carol:write")), 403)
    moved = {**body, "team": "search"}
    assert_problem(client.put(f"{API}/schedules/payments-primary", json=moved, headers=org.headers("bob:write")), 403)
    assert_problem(client.delete(f"{API}/schedules/payments-primary", headers=org.headers("carol:write")), 403)
    assert versions(db) == {"payments-primary": 1}
    assert ok(client.put(f"{API}/schedules/payments-primary", json=moved, headers=org.headers("root:admin")))[
        "team"
    ] == ("search")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"team": "nobody"}, "team"),
        ({"layers": [weekly_layer(participants=["alice", "zoe"])]}, "layers.0.rotation.participants.1"),
        ({"layers": [weekly_layer(), weekly_layer()]}, "body.layers"),
        ({"layers": []}, "body.layers"),
        ({"layers": [{**weekly_layer(), "mode": "sideways"}]}, "body.layers.0.mode"),
        (
            {"layers": [{**weekly_layer(), "rotation": {**weekly_layer()["rotation"], "turn": "1M"}}]},
            "body.layers.0.rotation.turn",
        ),
        (
            {
                "layers": [
                    {**weekly_layer(), "rotation": {**weekly_layer()["rotation"], "handoff": "2026-03-02T09:00Z"}}
                ]
            },
            "body.layers.0.rotation.handoff",
        ),
        (
            {"layers": [weekly_layer(restrictions=[{"start": "9:00", "end": "17:00"}])]},
            "body.layers.0.restrictions.0.start",
        ),
        (
            {"layers": [weekly_layer(restrictions=[{"start": 540, "end": "17:00"}])]},
            "body.layers.0.restrictions.0.start",
        ),
        ({"layers": [weekly_layer(timeZone="Mars/Olympus")]}, "body.layers.0.timeZone"),
        (
            {"overrides": [{"start": "2026-03-03T00:00Z", "end": "2026-03-02T00:00Z", "user": "bob"}]},
            "body.overrides.0",
        ),
        (
            {"overrides": [{"start": "2026-03-03T00:00", "end": "2026-03-04T00:00Z", "user": "bob"}]},
            "body.overrides.0.start",
        ),
        (
            {
                "overrides": [
                    {
                        "start": "2026-03-03T00:00Z",
                        "end": "2026-03-04T00:00Z",
                        "user": "bob",
                        "mode": "add",
                        "replaces": "alice",
                    }
                ]
            },
            "body.overrides.0",
        ),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_input_is_refused_with_the_field_path_and_changes_nothing(client, org, db, change, path) -> None:  # type: ignore[no-untyped-def]
    create(client, org)
    before = (counts(db), versions(db))
    body = {**schedule_body(), **change}

    created = client.post(f"{API}/schedules", json={**body, "name": "another"}, headers=org.headers("alice:write"))
    del body["name"]
    replaced = client.put(f"{API}/schedules/payments-primary", json=body, headers=org.headers("alice:write"))

    assert_problem(created, 422, path=path)
    assert_problem(replaced, 422, path=path)
    assert (counts(db), versions(db)) == before


def test_an_unquoted_yaml_time_gets_an_explanation(client, org) -> None:  # type: ignore[no-untyped-def]
    body = schedule_body(layers=[weekly_layer(restrictions=[{"start": "09:00", "end": 1020}])])
    problem = assert_problem(client.post(f"{API}/schedules", json=body, headers=org.headers("alice:write")), 422)
    assert "write times of day in quotes, like '17:00'" in problem["errors"][0]["message"]


def test_a_name_is_taken_once_and_a_user_on_a_schedule_cannot_be_deleted(client, org, db) -> None:  # type: ignore[no-untyped-def]
    create(client, org)
    assert_problem(client.post(f"{API}/schedules", json=schedule_body(), headers=org.headers("alice:write")), 409)
    assert_problem(client.delete(f"{API}/users/bob", headers=org.headers("root:admin")), 409)
    assert ok(client.get(f"{API}/users/bob", headers=org.headers("root:admin")))["username"] == "bob"


# ---------------------------------------------------------------------------------------------- questions


def test_who_is_on_call_at_an_instant_and_over_a_range(client, org) -> None:  # type: ignore[no-untyped-def]
    office = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    body = schedule_body(
        timeZone="Europe/Berlin",
        layers=[
            weekly_layer("office", ["carol"], restrictions=[office]),
            weekly_layer("around-the-clock", ["alice", "bob"], timeZone="UTC"),
        ],
    )
    create(client, org, body, who="root:admin")
    headers = org.headers("alice:read")

    at_ten = ok(
        client.get(f"{API}/schedules/payments-primary/on-call", params={"at": "2026-03-03T10:00:00Z"}, headers=headers)
    )
    at_night = ok(
        client.get(f"{API}/schedules/payments-primary/on-call", params={"at": "2026-03-03T22:00:00Z"}, headers=headers)
    )
    assert [(item["user"], item["layer"], item["shiftStart"], item["shiftEnd"]) for item in at_ten] == [
        ("carol", "office", "2026-03-03T08:00:00Z", "2026-03-03T16:00:00Z")  # 09:00-17:00 CET
    ]
    assert [(item["user"], item["layer"]) for item in at_night] == [("alice", "around-the-clock")]

    shifts = ok(
        client.get(
            f"{API}/schedules/payments-primary/shifts",
            params={"start": "2026-03-06T00:00:00Z", "end": "2026-03-10T00:00:00Z"},
            headers=headers,
        )
    )
    assert [(item["user"], item["start"], item["end"]) for item in shifts] == [
        ("alice", "2026-03-06T00:00:00Z", "2026-03-06T08:00:00Z"),
        ("carol", "2026-03-06T08:00:00Z", "2026-03-06T16:00:00Z"),
        ("alice", "2026-03-06T16:00:00Z", "2026-03-09T00:00:00Z"),
        ("bob", "2026-03-09T00:00:00Z", "2026-03-09T08:00:00Z"),
        ("carol", "2026-03-09T08:00:00Z", "2026-03-09T16:00:00Z"),
        ("bob", "2026-03-09T16:00:00Z", "2026-03-10T00:00:00Z"),
    ]
    default = ok(client.get(f"{API}/schedules/payments-primary/shifts", headers=headers))
    assert default[0]["start"] == "2026-03-02T09:00:00Z"  # from now, four weeks
    assert default[-1]["end"] == "2026-03-30T09:00:00Z"


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "query.end"),
        ({"start": "2026-03-02T00:00:00Z", "end": "2027-03-10T00:00:00Z"}, "query.end"),
        ({"start": "2026-03-02T00:00:00", "end": "2026-03-03T00:00:00Z"}, "query.start"),
        ({"start": "0001-01-01T00:00:00Z", "end": "2026-03-03T00:00:00Z"}, "query.start"),
        ({"start": "yesterday"}, "query.start"),
    ],
)
def test_a_bad_range_is_refused_with_its_field(client, org, params, path) -> None:  # type: ignore[no-untyped-def]
    create(client, org)
    response = client.get(f"{API}/schedules/payments-primary/shifts", params=params, headers=org.headers("alice:read"))
    assert_problem(response, 422, path=path)


def test_the_batch_questions_answer_for_many_schedules_at_once(client, org) -> None:  # type: ignore[no-untyped-def]
    create(client, org)
    create(
        client,
        org,
        schedule_body("search-primary", team="search", layers=[weekly_layer(participants=["carol"])]),
        "carol:write",
    )
    headers = org.headers("alice:read")

    who = ok(client.get(f"{API}/oncall/who", headers=headers))
    assert [(item["schedule"], [person["user"] for person in item["onCall"]]) for item in who] == [
        ("payments-primary", ["alice"]),
        ("search-primary", ["carol"]),
    ]
    one = ok(
        client.get(
            f"{API}/oncall/who", params={"schedule": "search-primary", "at": "2026-03-20T00:00:00Z"}, headers=headers
        )
    )
    assert [item["schedule"] for item in one] == ["search-primary"]
    shifts = ok(
        client.get(
            f"{API}/oncall/shifts",
            params=[
                ("schedule", "payments-primary"),
                ("schedule", "search-primary"),
                ("start", "2026-03-02T00:00:00Z"),
                ("end", "2026-03-16T00:00:00Z"),
            ],
            headers=headers,
        )
    )
    assert [(item["schedule"], item["user"]) for item in shifts] == [
        ("payments-primary", "alice"),
        ("payments-primary", "bob"),
        ("search-primary", "carol"),
    ]
    mine = ok(client.get(f"{API}/oncall/users/bob/shifts", headers=headers))
    assert [(item["schedule"], item["start"]) for item in mine] == [
        ("payments-primary", "2026-03-09T00:00:00Z"),
        ("payments-primary", "2026-03-23T00:00:00Z"),
    ]
    assert_problem(client.get(f"{API}/oncall/who", params={"schedule": "nope"}, headers=headers), 404)


def test_the_service_entry_points_other_domains_call(db, org, clock) -> None:  # type: ignore[no-untyped-def]
    from relia.oncall.schemas import ScheduleCreate
    from tests.factories import OPERATOR

    with db.transaction() as session:
        service.create_schedule(
            session, actor=OPERATOR, data=ScheduleCreate.model_validate(schedule_body()), now=clock.now()
        )
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with db.reader() as session:
        [found] = service.on_call(session, schedule="payments-primary", at=at)
        many = service.on_call_many(session, schedules=None, at=at)
        shifts = service.shifts(session, schedule="payments-primary", start=at, end=at + timedelta(days=7))
        batch = service.shifts_many(session, start=at, end=at + timedelta(days=7))
        bob_id = found.user_id

    assert (found.username, found.layer, found.source) == ("bob", "primary", "layer")
    assert (found.shift_start, found.shift_end) == (datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC))
    assert many == {"payments-primary": [found]}
    assert [(shift.username, shift.user_id, shift.start, shift.end) for shift in shifts] == [
        ("bob", bob_id, at, datetime(2026, 3, 16, tzinfo=UTC)),
        ("alice", shifts[1].user_id, datetime(2026, 3, 16, tzinfo=UTC), at + timedelta(days=7)),
    ]
    assert batch == {"payments-primary": shifts}
