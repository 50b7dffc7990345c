"""The alert group pages in Chromium: from the list to a group, then acknowledge, snooze and resolve it, by
mouse with JavaScript, by keyboard, and without JavaScript; every state readable as words."""

from __future__ import annotations

import re

import pytest

from relia.alerting import demo
from tests.browser.support import ADMIN, MEMBER, NO_PLAYWRIGHT, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect

CHECKOUT = "Checkout 5xx above 2 % on checkout-7d9f-abcde"


@pytest.fixture
def seeded(db, clock) -> None:  # type: ignore[no-untyped-def]
    assert demo.seed(db, clock.now()) == 4


def _open_checkout_group(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    table = page.get_by_role("table", name="Alerts")
    row = table.get_by_role("row").filter(has_text=CHECKOUT)
    expect(row).to_contain_text("triggered")
    expect(row).to_contain_text("critical")
    expect(row).to_contain_text("2 of 2")
    row.get_by_role("link", name=CHECKOUT).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(CHECKOUT)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_acknowledge_snooze_and_resolve_a_group(new_context, seeded, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page, MEMBER)
    _open_checkout_group(page)
    alerts = page.get_by_role("table", name="Alerts")
    expect(alerts.get_by_role("row")).to_have_count(3)  # a header and two alerts
    expect(page.get_by_role("region", name="Delivery log")).to_be_visible()

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_contain_text("Acknowledged: escalation stops for this group.")
    expect(page.get_by_role("heading", level=1).locator("..")).to_contain_text("acknowledged")
    expect(page.get_by_text("by ada at")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    page.get_by_label("Snooze for").select_option("4h")
    page.get_by_role("button", name="Snooze").click()
    expect(page.get_by_role("status")).to_contain_text("Snoozed")
    expect(page.get_by_text("Snoozed until")).to_be_visible()

    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_contain_text("Resolved, with every alert of it that still fired.")
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    history = page.get_by_role("region", name="History")
    for words in ("resolved by ada", "snoozed by ada", "acknowledged by ada"):
        expect(history).to_contain_text(words)

    page.get_by_role("link", name="Alerts", exact=True).first.click()
    expect(page.get_by_role("table", name="Alerts").get_by_role("row").filter(has_text=CHECKOUT)).to_have_count(0)


def test_the_group_page_works_by_keyboard(page, seeded):
    sign_in(page, ADMIN)
    _open_checkout_group(page)
    button = page.get_by_role("button", name="Acknowledge")
    for _ in range(60):
        page.keyboard.press("Tab")
        if button.evaluate("element => element === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Acknowledge button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Acknowledged")
    assert re.search(r"/alerts/\d+\?notice=acknowledged$", page.url)
