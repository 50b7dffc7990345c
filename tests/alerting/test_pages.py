"""The alert pages without a browser: the groups list (state as words, shape and colour), a group's page with
its alerts, the acknowledge / snooze / resolve forms (CSRF, post/redirect/get), the delivery log, and the demo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from relia.alerting import demo, pages
from relia.alerting.models import AlertGroup
from relia.config import service as config_service
from relia.config.documents import read_paths
from tests.alerting.support import API, am_alert, am_message, post
from tests.config.support import EXAMPLES
from tests.factories import OPERATOR

PASSWORD = "a long password for pages"


def signed_in(app, org, username: str) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    """A browser-like client signed in as ``username``, and the session's CSRF token."""
    browser = TestClient(app)
    token = org.headers(f"{username}:write")
    assert (
        browser.put(f"{API}/users/{username}/password", json={"password": PASSWORD}, headers=token).status_code == 204
    )
    form = browser.get("/login")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    response = browser.post(
        "/login",
        data={"username": username, "password": PASSWORD, "login_csrf": login_csrf, "next": "/alerts"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = browser.get("/alerts")
    assert page.status_code == 200
    return browser, re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


@pytest.fixture
def group_id(client, org, intake) -> int:  # type: ignore[no-untyped-def]
    alerts = [am_alert({"alertname": "HighLatency", "instance": f"web-{n}"}) for n in (1, 2)]
    post(client, intake.key, "alertmanager", am_message(alerts))
    return client.get(f"{API}/alert-groups", headers=org.headers("alice:read")).json()["items"][0]["id"]


def test_the_list_shows_states_in_words_shape_and_colour(app, org, group_id):
    browser, _ = signed_in(app, org, "bob")
    page = browser.get("/alerts")
    assert 'href="/alerts" aria-current="page"' in page.text
    row = re.search(rf'<tr data-group="{group_id}">.*?</tr>', page.text, re.S).group(0)
    assert f'<a href="/alerts/{group_id}">#{group_id} HighLatency on web-1</a>' in row
    assert '<span class="status status-bad"><span aria-hidden="true">▲</span> triggered</span>' in row
    assert "2 of 2" in row
    assert "No alert groups" in browser.get("/alerts?state=resolved").text
    anonymous = TestClient(app).get("/alerts", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_acknowledge_snooze_and_resolve_through_forms(app, org, group_id, db):
    browser, csrf = signed_in(app, org, "bob")
    page = browser.get(f"/alerts/{group_id}")
    assert page.status_code == 200
    for button in ("Acknowledge", "Snooze", "Resolve"):
        assert f">{button}</button>" in page.text
    assert "No deliveries yet." in page.text  # nobody is paged: the test organisation has no escalation policy
    assert "HighLatency on web-2" in page.text

    forged = browser.post(f"/alerts/{group_id}/acknowledge", data={"csrf_token": "nope"}, follow_redirects=False)
    assert forged.status_code == 400
    acked = browser.post(f"/alerts/{group_id}/acknowledge", data={"csrf_token": csrf}, follow_redirects=False)
    assert acked.status_code == 303 and acked.headers["location"] == f"/alerts/{group_id}?notice=acknowledged"
    after = browser.get(acked.headers["location"])
    assert "Acknowledged: escalation stops for this group." in after.text
    assert "by bob at" in after.text and ">Acknowledge</button>" not in after.text

    snoozed = browser.post(
        f"/alerts/{group_id}/snooze", data={"csrf_token": csrf, "duration": "4h"}, follow_redirects=True
    )
    assert "Snoozed until" in snoozed.text and "◌</span> snoozed" in snoozed.text

    resolved = browser.post(f"/alerts/{group_id}/resolve", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Resolved, with every alert of it that still fired." in resolved.text
    assert "by bob" in resolved.text and ">Resolve</button>" not in resolved.text
    history = re.search(r'<ol class="alert-history">.*?</ol>', resolved.text, re.S).group(0)
    for words in ("resolved by bob", "snoozed by bob", "acknowledged by bob", "opened"):
        assert words in history

    refused = browser.post(f"/alerts/{group_id}/snooze", data={"csrf_token": csrf}, follow_redirects=False)
    assert refused.status_code == 409 and "Nothing was changed" in refused.text


def test_the_delivery_log_shows_what_the_notification_domain_reports(app, org, group_id, monkeypatch):
    monkeypatch.setattr(
        pages,
        "delivery_log",
        lambda session, group: [
            pages._delivery_row(
                {
                    "paged_at": None,
                    "user": "alice",
                    "kind": "email",
                    "contact_method": "work-email",
                    "step": 1,
                    "status": "delivered",
                    "attempts": [{}, {}],
                    "note": "second try",
                }
            )
        ],
    )
    browser, _ = signed_in(app, org, "bob")
    page = browser.get(f"/alerts/{group_id}").text
    log = re.search(r'aria-labelledby="deliveries-h">.*?</table>', page, re.S).group(0)
    assert "alice" in log and "email · work-email" in log and "delivered" in log and "second try" in log


def test_the_demo_opens_live_groups_once(db, clock, org):
    with db.transaction() as session:
        files = read_paths([EXAMPLES / name for name in ("users.yaml", "teams.yaml", "services.yaml", "alerting.yaml")])
        config_service.apply(session, files, actor=OPERATOR, now=clock.now())

    assert demo.seed(db, clock.now()) == 4
    assert demo.seed(db, clock.now()) == 0

    with db.reader() as session:
        found = {group.title: group for group in session.scalars(select(AlertGroup))}
    assert {title: group.state for title, group in found.items()} == {
        "Checkout 5xx above 2 % on checkout-7d9f-abcde": "triggered",
        "Replica orders-db-replica-2 is 95 s behind the primary": "acknowledged",
        "Search p99 latency 1.8 s (objective 0.8 s)": "snoozed",
        "Card authorisations failing at the payment provider (EU region)": "resolved",
    }
    assert found["Replica orders-db-replica-2 is 95 s behind the primary"].acknowledged_by == "ada"
    assert found["Checkout 5xx above 2 % on checkout-7d9f-abcde"].alert_count == 2


def test_every_template_is_in_the_package():
    folder = Path(pages.__file__).resolve().parents[1] / "web" / "templates" / "alerting"
    assert sorted(path.name for path in folder.glob("*.html")) == ["_macros.html", "group.html", "list.html"]
