"""API tokens in the web UI: created and shown once, listed, revoked, with and without JavaScript."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from tests.browser.support import ADMIN, MEMBER, NO_PLAYWRIGHT, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect


def _api_status(base_url: str, token: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/api/v1/services?limit=1", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_create_a_token_shown_once_then_revoke_it(new_context, live_server, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_role("table", name="Your tokens")).to_contain_text("No tokens yet.")

    page.get_by_label("Name").fill("ci-pipeline")
    page.get_by_label("Scope").select_option("write")
    page.get_by_role("button", name="Create token").click()

    created = page.get_by_role("status")
    expect(created).to_contain_text("ci-pipeline")
    expect(created).to_contain_text("shown only once")
    secret_field = page.get_by_label("New token")
    secret = secret_field.input_value()
    assert secret.startswith("relia_"), secret
    expect(secret_field).to_have_attribute("readonly", "")
    assert _api_status(live_server, secret) == 200

    table = page.get_by_role("table", name="Your tokens")
    row = table.get_by_role("row").filter(has_text="ci-pipeline")
    expect(row).to_contain_text("write")
    expect(row).to_contain_text("active")

    # Loading the page again never shows the secret.
    page.goto("/tokens")
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_label("New token")).to_have_count(0)
    assert secret not in page.content()
    expect(row).to_contain_text("active")

    row.get_by_role("button", name="Revoke token ci-pipeline").click()
    expect(page).to_have_url(re.compile(r"/tokens$"))
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    assert _api_status(live_server, secret) == 401


def test_reloading_after_creating_does_not_create_a_second_token(page):
    sign_in(page)
    page.goto("/tokens")
    page.get_by_label("Name").fill("once")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("New token")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_label("New token")).to_have_count(0)
    expect(page.get_by_role("table", name="Your tokens").locator("tbody tr")).to_have_count(1)


def test_an_invalid_name_is_reported_next_to_the_form(page):
    sign_in(page)
    page.goto("/tokens")
    page.get_by_label("Name").fill("   ")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("New token")).to_have_count(0)
    expect(page.get_by_role("table", name="Your tokens")).to_contain_text("No tokens yet.")


@pytest.mark.parametrize(("username", "scopes"), [(ADMIN, ["read", "write", "admin"]), (MEMBER, ["read", "write"])])
def test_scopes_offered_match_the_user(page, username, scopes):
    sign_in(page, username)
    page.goto("/tokens")
    expect(page.get_by_label("Scope").locator("option")).to_have_text(scopes)
