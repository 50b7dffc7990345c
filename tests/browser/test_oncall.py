"""The on-call pages in a browser: the schedule page's layers and final rotation on a timeline (readable without
JavaScript, by screen readers as lists), moving through the range and getting a calendar URL by keyboard, the
"my on-call" page with a swap request, and page structure and contrast in light and dark.

The demo organisation's schedules from examples/ at the shared clock's time, Monday 2026-03-02 09:00 UTC."""

from __future__ import annotations

import re

import pytest

from tests.browser.support import ADMIN, MEMBER, NO_PLAYWRIGHT, sign_in
from tests.browser.test_accessibility import CONTRASTS, STRUCTURE_PROBLEMS

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect

FOLLOW_THE_SUN = "/oncall/schedules/platform-follow-the-sun"
ONCALL_PAGES = ["/oncall", FOLLOW_THE_SUN, "/oncall/schedules/payments-primary?days=28", "/oncall/me"]


def test_the_schedule_page_shows_each_layer_and_the_final_rotation_on_a_timeline_without_javascript(nojs_page):
    page = nojs_page
    sign_in(page, MEMBER)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="On-call").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("On-call schedules")
    page.get_by_role("link", name="Platform follow-the-sun").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform follow-the-sun")

    # Monday 09:00 UTC is London's working day: the EMEA layer has Ada.
    now = page.get_by_role("region", name="On call now")
    expect(now).to_contain_text("Ada Okafor")
    expect(now).to_contain_text("layer emea")

    timeline = page.get_by_role("figure")
    rows = [
        "Layer apac exclusive, Asia/Singapore",
        "Layer emea exclusive, Europe/London",
        "Layer americas exclusive, America/Los_Angeles",
        "Layer backstop exclusive, UTC",
        "Final rotation who is paged",
    ]
    expect(timeline.get_by_role("heading", level=3)).to_have_text(rows)
    final = timeline.get_by_role("list", name="Final rotation who is paged")
    # A week of weekdays, each with APAC, EMEA and the Americas, and the weekend's backstop between.
    items = final.get_by_role("listitem")
    expect(items.nth(0)).to_contain_text("Chen Wei, Mon 2 Mar 00:00 UTC to Mon 2 Mar 08:00 UTC (through layer apac)")
    expect(items.nth(1)).to_contain_text("Ada Okafor, Mon 2 Mar 08:00 UTC to Mon 2 Mar 16:00 UTC (through layer emea)")
    assert final.get_by_role("listitem").count() >= 16
    labels = final.locator(".timeline-label").all_inner_texts()
    assert {"ada", "chen", "jack"} <= set(labels)
    layer = timeline.get_by_role("list", name="Layer emea exclusive, Europe/London")
    expect(layer.get_by_role("listitem")).to_have_count(5)  # Monday to Friday

    table = page.get_by_role("table", name="Final rotation")
    expect(table.get_by_role("row").nth(2)).to_contain_text("Ada Okafor")
    expect(page.get_by_role("table", name="Layers")).to_contain_text("every turn advances")
    fairness = page.get_by_role("table", name="Fairness")
    expect(fairness).to_contain_text("Spread (most \N{MINUS SIGN} least)")
    expect(fairness.get_by_role("row")).to_have_count(1 + 4 + 1)


def test_move_through_the_timeline_and_get_a_calendar_url_by_keyboard(page):
    sign_in(page, MEMBER)
    page.goto(FOLLOW_THE_SUN)
    following = page.get_by_role("link", name="Next 7 days →")
    following.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?from=2026-03-09&days=7#timeline-h$"))
    expect(page.get_by_role("figure")).to_contain_text("Mon 9 Mar")

    button = page.get_by_role("button", name="Get a calendar URL")
    for _ in range(200):
        page.keyboard.press("Tab")
        if button.evaluate("el => el === document.activeElement"):
            break
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    url = page.get_by_label("Calendar URL")
    expect(url).to_be_focused()
    value = url.input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1/oncall/calendars/rcal_[\w-]+\.ics", value), value
    calendar = page.request.get(value)
    assert calendar.status == 200
    assert calendar.text().startswith("BEGIN:VCALENDAR")
    assert "BEGIN:VTIMEZONE" not in calendar.text()  # the schedule's clock is UTC
    assert "SUMMARY:On call: Ada Okafor (Platform follow-the-sun)" in calendar.text()


def test_my_on_call_page_lists_my_shifts_and_takes_a_swap_request(page):
    sign_in(page, MEMBER)
    page.goto("/oncall/me")
    expect(page.get_by_role("heading", level=1)).to_have_text("My on-call")
    expect(page.get_by_role("region", name="Now")).to_contain_text("on call for Platform follow-the-sun")
    shifts = page.get_by_role("table", name="Your shifts in the next four weeks")
    expect(shifts.get_by_role("row").nth(1)).to_contain_text("Mon 2 Mar 09:00 GMT")  # on Ada's London clock

    # Nothing to swap at night, when APAC has the pager: refused, with the reason, and the form keeps the values.
    page.get_by_label("Schedule").select_option("platform-follow-the-sun")
    page.get_by_label("From").fill("2026-03-03 02:00")
    page.get_by_label("Until").fill("2026-03-03 03:00")
    page.get_by_role("button", name="Request a swap").click()
    expect(page.get_by_role("alert")).to_contain_text("is not on call for platform-follow-the-sun")
    expect(page.get_by_label("From")).to_have_value("2026-03-03 02:00")

    page.get_by_label("From").fill("2026-03-03 09:00")
    page.get_by_label("Until").fill("2026-03-03 12:00")
    page.get_by_label("Note (optional)").fill("school run")
    page.get_by_role("button", name="Request a swap").click()
    expect(page.get_by_role("status")).to_contain_text("Swap requested")
    swaps = page.get_by_role("table", name="Swaps")
    expect(swaps).to_contain_text("school run")
    expect(swaps).to_contain_text("open")
    page.get_by_role("button", name=re.compile("^Cancel the swap")).click()
    expect(page.get_by_role("status")).to_contain_text("Swap cancelled")
    expect(page.get_by_role("table", name="Swaps")).to_contain_text("No swaps.")


def test_the_on_call_pages_have_headings_labels_named_controls_and_enough_contrast(new_context):
    for javascript in (True, False):
        page = new_context(java_script_enabled=javascript).new_page()
        sign_in(page, ADMIN)
        for path in [*ONCALL_PAGES, "/oncall/schedules/no-such-schedule"]:
            page.goto(path)
            assert page.evaluate(STRUCTURE_PROBLEMS) == [], f"{path} (JavaScript {javascript})"
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        sign_in(page, MEMBER)
        for path in ONCALL_PAGES:
            page.goto(path)
            found = page.evaluate(CONTRASTS)
            low = [(name, round(ratio, 2)) for name, ratio in found["elements"] if ratio < 4.5]
            assert low == [], f"{path} in {scheme}: contrast below 4.5:1"
