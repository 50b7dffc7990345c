"""The paging pages in a browser: an escalation policy's steps, the services it pages for and a change saved
from the page (with a refused one shown next to the form), and a person setting their own notification rules
by keyboard alone, with and without JavaScript."""

from __future__ import annotations

import pytest

from tests.browser.support import ADMIN, MEMBER, NO_PLAYWRIGHT, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect


def test_an_escalation_policy_shows_its_steps_and_services_and_takes_a_change(page):
    sign_in(page, ADMIN)
    page.goto("/escalation-policies")
    expect(page.get_by_role("heading", level=1)).to_have_text("Escalation policies")
    page.get_by_role("link", name="checkout-critical", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("checkout-critical")

    steps = page.get_by_role("region", name="Steps")
    expect(steps.get_by_role("listitem").first).to_contain_text("whoever is on call in platform-follow-the-sun")
    expect(steps).to_contain_text("the steps run 3 more times")
    # Platform holds the pager of checkout, a payments service, through this policy.
    expect(page.get_by_role("region", name="Pages for")).to_contain_text("checkout")

    spec = page.get_by_label("Steps, repeats and acknowledgement timeout")
    spec.fill(spec.input_value().replace("wait: 3m", "wait: -3m"))
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("alert")).to_contain_text("Not saved")
    expect(page.get_by_label("Steps, repeats and acknowledgement timeout")).to_have_attribute("aria-invalid", "true")

    spec = page.get_by_label("Steps, repeats and acknowledgement timeout")
    spec.fill(spec.input_value().replace("wait: -3m", "wait: 4m"))
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_role("region", name="Steps")).to_contain_text("Wait 4m")
    expect(page.get_by_role("region", name="History")).to_contain_text("by admin")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_person_sets_their_notification_rules_by_keyboard(new_context, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page, MEMBER)
    page.goto(f"/users/{MEMBER}/notifications")
    expect(page.get_by_role("heading", level=1)).to_have_text("How Ada Okafor is paged")

    page.get_by_label("Contact method of rule 1").focus()
    page.get_by_label("Contact method of rule 1").select_option("work-email")
    page.get_by_label("Delay of rule 1").fill("0m")
    page.get_by_label("Contact method of rule 2").select_option("phone-push")
    page.get_by_label("Delay of rule 2").fill("5m")
    page.get_by_role("button", name="Save rules").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_be_visible()
    now = page.get_by_role("region", name="What a page does now").get_by_role("listitem")
    expect(now).to_have_text([r"At once: work-email (email)", r"5 min later: phone-push (ntfy)"])
