"""The deploy pages without a browser: the list of targets and deployments, one deployment with its steps,
analysis and buttons, the forms (CSRF, rights, refusals shown next to the buttons), and the htmx refresh."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.deploys import support
from tests.deploys.support import read

API = "/api/v1"
PASSWORD = "a long password for deploy pages"


def signed_in(app, org, username: str) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    """A browser-like client signed in as ``username``, and the session's CSRF token."""
    browser = TestClient(app)
    token = org.headers(f"{username}:write")
    changed = browser.put(f"{API}/users/{username}/password", json={"password": PASSWORD}, headers=token)
    assert changed.status_code == 204
    form = browser.get("/login")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    response = browser.post(
        "/login",
        data={"username": username, "password": PASSWORD, "login_csrf": login_csrf, "next": "/deploys"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = browser.get("/deploys")
    assert page.status_code == 200
    return browser, re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


def awaiting(db, clock) -> int:
    target = support.spec(
        adapter={"type": "http", "switch": "http://127.0.0.1:9/switch"},
        promotion={"mode": "manual", "timeout": "1h", "onTimeout": "abort"},
    )
    support.make_target(db, clock, target)
    return support.start(db, clock, version="v2.4.0")


def test_the_list_shows_targets_and_deployments(app, db, clock, org):
    deployment_id = awaiting(db, clock)
    browser, _ = signed_in(app, org, "carol")
    page = browser.get("/deploys")
    assert 'href="/deploys" aria-current="page"' in page.text
    assert f'<a href="/deploys/{deployment_id}">Deployment {deployment_id}</a>' in page.text
    assert "awaiting promotion" in page.text and "v2.4.0" in page.text
    assert "127.0.0.1:9101" in page.text and "127.0.0.1:9102" in page.text
    assert browser.get("/deploys?service=ranker").text.count("No deployments yet.") == 1


def test_a_deployment_page_shows_its_state_steps_and_the_buttons_for_its_team(app, db, clock, org):
    deployment_id = awaiting(db, clock)
    browser, _ = signed_in(app, org, "alice")
    page = browser.get(f"/deploys/{deployment_id}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Deployment 1: <code>v2.4.0</code> to Checkout</h1>" in text
    assert "awaiting promotion" in text and "then it will <strong>abort</strong> (the stated default)" in text
    assert 'formaction="/deploys/1/promote"' in text and 'formaction="/deploys/1/abort"' in text
    assert "/resume" not in text
    for step in ("deploy.started", "deploy.gate.checked", "deploy.deployed", "deploy.promotion.awaiting"):
        assert f"<code>{step}</code>" in text
    assert 'hx-trigger="every 3s' in text  # under way: the live part refreshes

    other_team, _ = signed_in(app, org, "carol")
    refused = other_team.get(f"/deploys/{deployment_id}").text
    assert "formaction" not in refused
    assert "Only members of Payments (or an administrator) may promote" in refused


def test_promote_through_the_form_redirects_and_is_audited(app, db, clock, org):
    deployment_id = awaiting(db, clock)
    browser, csrf = signed_in(app, org, "alice")
    revision = read(db, deployment_id).revision
    response = browser.post(
        f"/deploys/{deployment_id}/promote",
        data={"csrf_token": csrf, "reason": "checked by hand", "revision": revision},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/deploys/{deployment_id}?notice=promote#state-h"
    assert read(db, deployment_id).state == "switching"
    shown = browser.get(response.headers["location"]).text
    assert "Promoted. The release gate is checked again" in shown
    assert "promoted by alice: checked by hand" in shown
    audit = browser.get(f"{API}/audit", headers=org.headers("root:admin")).json()["items"]
    assert (audit[0]["action"], audit[0]["actor"], audit[0]["via"]) == ("promote", "alice", "web")


def test_refusals_are_shown_next_to_the_buttons_and_change_nothing(app, db, clock, org):
    deployment_id = awaiting(db, clock)
    browser, csrf = signed_in(app, org, "alice")
    before = read(db, deployment_id)
    no_csrf = browser.post(f"/deploys/{deployment_id}/promote", data={"csrf_token": "forged"})
    assert no_csrf.status_code == 400 and "did not come from this site" in no_csrf.text
    wrong = browser.post(f"/deploys/{deployment_id}/resume", data={"csrf_token": csrf})
    assert wrong.status_code == 409
    assert 'role="alert"' in wrong.text and "Nothing was changed: Deployment 1: only a paused deployment" in wrong.text
    stale = browser.post(
        f"/deploys/{deployment_id}/promote", data={"csrf_token": csrf, "revision": before.revision - 1}
    )
    assert stale.status_code == 409 and "it changed since you read it" in stale.text
    other_team, other_csrf = signed_in(app, org, "carol")
    forbidden = other_team.post(f"/deploys/{deployment_id}/abort", data={"csrf_token": other_csrf})
    assert forbidden.status_code == 403
    after = read(db, deployment_id)
    assert (after.state, after.revision) == (before.state, before.revision)


def test_abort_through_the_form_is_never_refused_as_stale(app, db, clock, org):
    deployment_id = awaiting(db, clock)
    browser, csrf = signed_in(app, org, "alice")
    response = browser.post(
        f"/deploys/{deployment_id}/abort", data={"csrf_token": csrf, "revision": 1}, follow_redirects=False
    )
    assert response.status_code == 303
    assert read(db, deployment_id).outcome == "aborted"
    finished = browser.get(f"/deploys/{deployment_id}").text
    assert "hx-trigger" not in finished  # over: nothing left to refresh
    assert "aborted before the switch" in finished and "formaction" not in finished


def test_htmx_gets_only_the_live_part(app, db, clock, org):
    deployment_id = awaiting(db, clock)
    browser, _ = signed_in(app, org, "alice")
    partial = browser.get(f"/deploys/{deployment_id}", headers={"HX-Request": "true"})
    assert '<div id="deployment-live"' in partial.text and "<html" not in partial.text
    assert partial.headers["vary"] == "HX-Request, HX-History-Restore-Request"
    restore = browser.get(
        f"/deploys/{deployment_id}", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text


def test_unknown_deployments_and_signed_out_visitors(app, db, clock, org):
    browser, _ = signed_in(app, org, "alice")
    missing = browser.get("/deploys/999")
    assert missing.status_code == 404 and "There is no deployment 999" in missing.text
    anonymous = TestClient(app).get("/deploys/1", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/deploys/1"
