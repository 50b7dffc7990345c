"""The Schedule kind in config as code (the demo organisation's schedules, refusals that name file, line and
field, idempotent re-apply, export) and the `relia oncall` verbs."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from relia.config import service as config_service
from relia.config.documents import SourceFile
from relia.core.auth import Principal
from relia.oncall import service
from tests.config.support import EXAMPLES, apply_ok, changed, document, example_files, post

SYSTEM = Principal.system("test")


def apply_examples(db, clock) -> None:  # type: ignore[no-untyped-def]
    files = [SourceFile(path.name, path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES.glob("*.yaml"))]
    with db.transaction() as session:
        config_service.apply(session, files, actor=SYSTEM, now=clock.now())


def on_call(db, schedule: str, at: datetime) -> list[tuple[str, str | None, str]]:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return [(item.username, item.layer, item.source) for item in service.on_call(session, schedule=schedule, at=at)]


def test_the_demo_schedules_cover_several_zones_with_dst_an_override_and_covered_slots(db, clock) -> None:  # type: ignore[no-untyped-def]
    apply_examples(db, clock)

    # Follow the sun, northern winter: each region in its own 08:00-16:00, no gaps on a weekday.
    winter = datetime(2026, 12, 2, tzinfo=UTC)  # a Wednesday
    assert on_call(db, "platform-follow-the-sun", winter + timedelta(hours=3))[0][:2] == ("kiri", "apac")
    assert on_call(db, "platform-follow-the-sun", winter + timedelta(hours=12))[0][:2] == ("ada", "emea")
    assert on_call(db, "platform-follow-the-sun", winter + timedelta(hours=20))[0][:2] == ("jack", "americas")
    # Northern summer: London and Los Angeles are an hour earlier in UTC, leaving 23:00-24:00 to the backstop.
    summer = datetime(2026, 7, 8, 23, 30, tzinfo=UTC)
    assert on_call(db, "platform-follow-the-sun", summer)[0][1] == "backstop"
    # Payments: Gopal covers Dara over Christmas (the override), wherever Dara would have been on call.
    with db.reader() as session:
        holiday = service.shifts(
            session,
            schedule="payments-primary",
            start=datetime(2026, 12, 21, 14, tzinfo=UTC),
            end=datetime(2026, 12, 28, 14, tzinfo=UTC),
        )
        weekdays = service.shifts(
            session,
            schedule="storefront-primary",
            start=datetime(2026, 3, 2, 8, tzinfo=UTC),
            end=datetime(2026, 3, 30, 7, tzinfo=UTC),
        )
    assert "dara" not in {shift.username for shift in holiday}
    assert {shift.username for shift in holiday if shift.source == "override"} == {"gopal"}
    # Storefront's weekday rotation advances only on weekdays: 20 weekdays in 4 weeks, shared out evenly.
    turns = Counter(shift.username for shift in weekdays if shift.layer == "weekdays")
    assert sorted(turns.values()) == [6, 7, 7]


def test_a_refused_schedule_names_the_file_line_and_field_and_changes_nothing(client, db, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_token, make_user

    make_user(db, clock, "root", admin=True)
    admin = {"Authorization": f"Bearer {make_token(db, clock, 'root', 'admin')}"}
    apply_ok(client, admin, example_files())
    spec = (
        "  team: payments\n"
        "  layers:\n"
        "    - name: day\n"
        "      rotation: {participants: [dara, zoe], turn: 1w, handoff: '2026-01-05T09:00'}\n"
        "      restrictions:\n"
        "        - {start: '09:00', end: 17:00}\n"
    )

    response = post(client, "apply", admin, {"bad.yaml": document("Schedule", "extra", spec)})

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["file"], error["line"], error["path"]) == ("bad.yaml", 11, "spec.layers.0.restrictions.0.end")
    assert "write times of day in quotes, like '17:00'" in error["message"]
    fixed = spec.replace("end: 17:00", "end: '17:00'")
    response = post(client, "apply", admin, {"bad.yaml": document("Schedule", "extra", fixed)})
    [error] = response.json()["errors"]
    assert (error["line"], error["path"]) == (9, "spec.layers.0.rotation.participants.1")
    assert "refers to User 'zoe', which does not exist" in error["message"]
    with db.reader() as session:
        assert [item.name for item in service.list_schedules(session)[0]] == [
            "growth-primary",
            "payments-primary",
            "platform-follow-the-sun",
            "storefront-primary",
        ]

    again = apply_ok(client, admin, example_files())
    assert changed(again) == []


def test_relia_oncall_who_shifts_and_fairness(relia, clock) -> None:  # type: ignore[no-untyped-def]
    assert relia("apply", "-f", EXAMPLES).exit_code == 0

    who = relia("oncall", "who", "--schedule", "payments-primary", "--at", "2026-12-22T15:00Z")
    assert who.exit_code == 0, who.output
    assert "Gopal Iyer (gopal)" in who.stdout and "override" in who.stdout
    as_json = json.loads(relia("oncall", "who", "--at", "2026-12-22T15:00Z", "-o", "json").stdout)
    assert [entry["schedule"] for entry in as_json] == [
        "growth-primary",
        "payments-primary",
        "platform-follow-the-sun",
        "storefront-primary",
    ]

    shifts = relia(
        "oncall", "shifts", "-s", "storefront-primary", "--start", "2026-03-27T00:00Z", "--end", "2026-03-31T00:00Z"
    )
    assert shifts.exit_code == 0, shifts.output
    assert "Sat 2026-03-28 09:00 CET" in shifts.stdout  # the weekend layer takes over at Saturday 09:00
    assert "Mon 2026-03-30 09:00 CEST" in shifts.stdout  # after the clocks went forward, still 09:00
    listed = json.loads(
        relia(
            "oncall",
            "shifts",
            "-s",
            "storefront-primary",
            "--start",
            "2026-03-27T00:00Z",
            "--end",
            "2026-03-31T00:00Z",
            "--user",
            "hana",
            "-o",
            "json",
        ).stdout
    )
    assert {item["user"] for item in listed} == {"hana"}

    fairness = relia(
        "oncall",
        "fairness",
        "-s",
        "platform-follow-the-sun",
        "--start",
        "2027-01-04T00:00Z",
        "--end",
        "2027-02-01T00:00Z",
    )
    assert fairness.exit_code == 0, fairness.output
    assert "Spread (most - least)" in fairness.stdout
    report = json.loads(
        relia(
            "oncall", "fairness", "-s", "platform-follow-the-sun", "--start", "2027-01-04T00:00Z", "-o", "json"
        ).stdout
    )
    assert {row["user"] for row in report["people"]} == {"ada", "chen", "jack", "kiri"}
    assert sum(row["hours"] for row in report["people"]) == 28 * 24  # someone is always on call

    missing = relia("oncall", "who", "--schedule", "nope")
    assert missing.exit_code == 1
    assert "There is no schedule 'nope'." in missing.stderr
    bad_time = relia("oncall", "who", "--at", "tomorrow")
    assert bad_time.exit_code == 2
    assert "--at 'tomorrow' is not a time" in bad_time.stderr
