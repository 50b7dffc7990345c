"""The audit log page: administrators only."""

from __future__ import annotations

import re

import pytest

from tests.browser.support import ADMIN, MEMBER, NO_PLAYWRIGHT, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect


def test_administrator_reads_who_changed_what(page):
    sign_in(page)
    page.goto("/tokens")
    page.get_by_label("Name").fill("audited")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("New token")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    table = page.get_by_role("table", name="Audit log")
    newest = table.locator("tbody tr").first
    expect(newest).to_contain_text("ApiToken")
    expect(newest).to_contain_text("create")
    expect(newest.locator("td").nth(1)).to_have_text(ADMIN)
    expect(newest.locator("td").nth(2)).to_have_text("web")
    expect(table.get_by_role("row").filter(has_text="login")).not_to_have_count(0)

    page.get_by_label("Kind").fill("Service")
    page.get_by_label("Name").fill("checkout")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/audit\?kind=Service&key=checkout$"))
    rows = table.locator("tbody tr")
    expect(rows.first).to_contain_text("config")
    for row in rows.all():
        expect(row.locator("td").nth(4)).to_have_text("Service checkout")
    table.get_by_role("link", name="checkout").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    page.get_by_role("link", name="Every change to Checkout in the audit log").click()
    expect(page).to_have_url(re.compile(r"/audit\?kind=Service&key=checkout$"))


def test_members_cannot_read_the_audit_log(page):
    sign_in(page, MEMBER)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="API tokens")).to_be_visible()
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    page.goto("/services/checkout")
    expect(page.get_by_role("link", name=re.compile("audit log"))).to_have_count(0)
    response = page.goto("/audit")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_role("main")).to_contain_text("Only administrators")
    expect(nav.get_by_role("link", name=f"Signed in as {MEMBER}")).to_be_visible()
