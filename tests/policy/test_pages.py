"""The policy pages without a browser: the policies page, the policy section of a service page, overrides
requested and decided through forms (with CSRF, by someone else), action items closed, the velocity report."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.policy.support import API, Worker, create_slo, exhaust, put_policy

PASSWORD = "a long password for pages"


@pytest.fixture
def worker(db, clock):  # type: ignore[no-untyped-def]
    return Worker(db, clock)


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
        data={"username": username, "password": PASSWORD, "login_csrf": login_csrf, "next": "/policies"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = browser.get("/policies")
    assert page.status_code == 200
    return browser, re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


def test_policies_and_service_pages_show_what_is_in_force(app, client, org, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    browser, _ = signed_in(app, org, "alice")
    quiet = browser.get("/policies")
    assert "No service is frozen" in quiet.text and "built in" in quiet.text
    assert 'href="/policies" aria-current="page"' in quiet.text
    assert "Releasing normally" in browser.get("/services/checkout").text

    exhaust(client, alice, clock, worker)
    frozen = browser.get("/policies")
    assert "checkout-availability has exhausted its error budget" in frozen.text
    assert '<a href="/services/checkout">checkout</a>' in frozen.text
    service_page = browser.get("/services/checkout")
    assert 'id="release-state"' in service_page.text and "Frozen:" in service_page.text
    assert "policy.freeze.started" in service_page.text
    assert "Velocity report of Checkout" in service_page.text


def test_overrides_are_requested_and_approved_through_forms_by_two_people(app, client, org, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    exhaust(client, alice, clock, worker)
    bob, bob_csrf = signed_in(app, org, "bob")
    form = {"service": "checkout", "version": "v9.1", "reason": "the fix for the outage", "duration": "4h"}

    forged = bob.post("/overrides", data={**form, "csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 400
    empty = bob.post("/overrides", data={**form, "reason": "", "csrf_token": bob_csrf}, follow_redirects=False)
    assert empty.status_code == 422 and "Reason" in empty.text and 'aria-invalid="true"' in empty.text
    requested = bob.post("/overrides", data={**form, "csrf_token": bob_csrf}, follow_redirects=False)
    assert requested.status_code == 303 and requested.headers["location"] == "/overrides?notice=requested"
    listing = bob.get("/overrides?notice=requested")
    assert "Override requested" in listing.text and "yours: someone else decides" in listing.text
    override_id = client.get(f"{API}/overrides", headers=alice).json()[0]["id"]

    own = bob.post(f"/overrides/{override_id}/approve", data={"csrf_token": bob_csrf}, follow_redirects=False)
    assert own.status_code == 403 and "second person" in own.text

    approver, alice_csrf = signed_in(app, org, "alice")
    page = approver.get("/overrides")
    assert f'action="/overrides/{override_id}/approve"' in page.text
    assert f'aria-label="Approve override #{override_id} for checkout v9.1"' in page.text
    approved = approver.post(
        f"/overrides/{override_id}/approve", data={"csrf_token": alice_csrf}, follow_redirects=False
    )
    assert approved.status_code == 303
    after = approver.get(approved.headers["location"])
    assert "Override approved" in after.text and "approved" in after.text
    answer = client.post(
        f"{API}/gates/check", headers=alice, json={"service": "checkout", "version": "v9.1", "changeType": "feature"}
    )
    assert answer.json()["decision"] == "warn"


def test_action_items_are_closed_from_the_service_page(app, client, org, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    spec = {
        "scope": {"service": "checkout"},
        "conditions": [{"budgetExhausted": {}}],
        "actions": {"actionItem": {}},
    }
    put_policy(client, alice, "items", spec, 201)
    exhaust(client, alice, clock, worker)
    browser, csrf = signed_in(app, org, "alice")
    page = browser.get("/services/checkout")
    item_id = re.search(r'action="/action-items/(\d+)/close"', page.text).group(1)
    assert "Bring checkout back within its SLOs" in page.text
    closed = browser.post(f"/action-items/{item_id}/close", data={"csrf_token": csrf}, follow_redirects=False)
    assert closed.status_code == 303
    assert "Action item closed." in browser.get(closed.headers["location"]).text
    carol, carol_csrf = signed_in(app, org, "carol")
    refused = carol.post(f"/action-items/{item_id}/close", data={"csrf_token": carol_csrf})
    assert refused.status_code == 403


def test_velocity_page(app, client, org, clock, worker):
    alice = org.headers("alice:write")
    create_slo(client, alice)
    exhaust(client, alice, clock, worker)
    browser, _ = signed_in(app, org, "carol")
    empty = browser.get("/reports/velocity")
    assert empty.status_code == 200 and "Choose a service" in empty.text
    report = browser.get("/reports/velocity", params={"service": "checkout", "period": "1d"})
    assert report.status_code == 200
    assert "slow down" in report.text and "exhausted its error budget" in report.text
    assert 'role="img"' in report.text  # the budget sparkline, drawn without JavaScript
    bad = browser.get("/reports/velocity", params={"service": "checkout", "period": "1y"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    unknown = browser.get("/reports/velocity", params={"service": "nope"})
    assert unknown.status_code == 404
    assert browser.get("/reports/velocity", follow_redirects=False).status_code == 200
    anonymous = TestClient(app).get("/reports/velocity", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
