"""Keyboard use, page structure (headings, labels, landmarks), status as text and shape, light and dark."""

from __future__ import annotations

import re

import pytest

from tests.browser.support import ADMIN, NO_PLAYWRIGHT, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect

SIGNED_IN_PAGES = [
    "/services",
    "/services?owner=nobody-owns-this",
    "/services/checkout",
    "/services/orders-db",
    "/teams",
    "/teams/platform",
    "/users/ada",
    "/tokens",
    "/audit",
    "/services/no-such-service",
]

# Returns a list of problems with the page's structure; empty when it is fine.
STRUCTURE_PROBLEMS = r"""() => {
  const problems = [];
  const text = (el) => (el.textContent || "").replace(/\s+/g, " ").trim();
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.title.trim()) problems.push("no <title>");
  if (document.querySelectorAll("main").length !== 1) problems.push("not exactly one <main>");
  const h1s = document.querySelectorAll("h1");
  if (h1s.length !== 1) problems.push(`${h1s.length} <h1> elements`);
  let last = 0;
  for (const heading of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    const level = Number(heading.tagName[1]);
    if (level > last + 1) problems.push(`<${heading.tagName}> "${text(heading)}" skips a level`);
    if (!text(heading)) problems.push(`empty <${heading.tagName}>`);
    last = level;
  }
  for (const field of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const named = field.labels.length || field.getAttribute("aria-label");
    if (!named && !field.getAttribute("aria-labelledby")) problems.push(`unlabelled ${field.outerHTML}`);
  }
  for (const control of document.querySelectorAll("a[href], button")) {
    const name = control.getAttribute("aria-label") || text(control);
    if (!name) problems.push(`nameless ${control.outerHTML}`);
  }
  const ids = [...document.querySelectorAll("[id]")].map((el) => el.id);
  const duplicates = ids.filter((id, index) => ids.indexOf(id) !== index);
  if (duplicates.length) problems.push(`duplicate ids: ${duplicates}`);
  for (const attribute of ["aria-labelledby", "aria-describedby"]) {
    for (const el of document.querySelectorAll(`[${attribute}]`)) {
      for (const id of el.getAttribute(attribute).split(/\s+/)) {
        if (!document.getElementById(id)) problems.push(`${attribute} points at missing #${id}`);
      }
    }
  }
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("thead th[scope=col]")) problems.push("a table without column headers");
    if (!(table.getAttribute("aria-labelledby") || table.getAttribute("aria-label") || table.caption)) {
      problems.push("a table without a name");
    }
  }
  // Status and tier: a shape (hidden from screen readers) and words, never colour alone.
  for (const badge of document.querySelectorAll(".status, .tier")) {
    const shape = badge.querySelector("[aria-hidden=true]");
    const words = text(badge).replace(shape ? text(shape) : "", "").trim();
    if (!shape || !text(shape)) problems.push(`status without a shape: "${text(badge)}"`);
    if (!/[a-z]{3}/i.test(words)) problems.push(`status without words: "${text(badge)}"`);
  }
  return problems;
}"""

# The contrast ratio (WCAG 2) of each status, tier and muted text against the page background.
CONTRASTS = r"""() => {
  const rgb = (value) => value.match(/[\d.]+/g).slice(0, 3).map(Number);
  const luminance = (value) => {
    const [r, g, b] = rgb(value).map((c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const opaque = (el) => !/^rgba\(.*, 0\)$|transparent/.test(getComputedStyle(el).backgroundColor);
  const background = getComputedStyle(opaque(document.body) ? document.body : document.documentElement)
    .backgroundColor;
  const selector = ".status, .tier, .link-kind, #service-count, main a, main small, main p";
  return {
    background: luminance(background),
    text: luminance(getComputedStyle(document.body).color),
    elements: [...document.querySelectorAll(selector)].map((el) => {
      const [a, b] = [luminance(getComputedStyle(el).color), luminance(background)];
      return [el.className || el.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
    }),
  };
}"""


def test_tab_from_the_top_reaches_the_skip_link_which_moves_focus_to_main(page):
    sign_in(page)
    page.goto("/services/checkout")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()
    page.keyboard.press("Tab")
    # The next stop is the first link inside main (the breadcrumb), not the site navigation.
    assert page.evaluate("document.activeElement.closest('main') !== null")
    expect(page.locator(":focus")).to_have_text("Services")


def test_filter_and_open_a_service_by_keyboard_alone(page):
    sign_in(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_role("searchbox", name="Search")).to_be_focused()
    page.keyboard.type("iden")
    expect(page.locator("#service-rows tr")).to_have_count(1)
    expect(page.get_by_role("status")).to_have_text("1 service")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Owner")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Tier")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Identity")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/services/identity$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Identity")


def test_create_and_revoke_a_token_by_keyboard_alone(page):
    sign_in(page)
    page.goto("/tokens")
    page.get_by_label("Name").focus()
    page.keyboard.type("keyboard")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Scope")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create token")).to_be_focused()
    page.keyboard.press("Enter")
    # The new secret takes focus, ready to copy.
    expect(page.get_by_label("New token")).to_be_focused()
    revoke = page.get_by_role("button", name="Revoke token keyboard")
    for _ in range(10):
        page.keyboard.press("Tab")
        if revoke.evaluate("el => el === document.activeElement"):
            break
    expect(revoke).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("table", name="Your tokens")).to_contain_text("revoked")


def test_every_page_has_headings_labels_and_named_controls(new_context):
    for javascript in (True, False):
        page = new_context(java_script_enabled=javascript).new_page()
        page.goto("/login")
        assert page.evaluate(STRUCTURE_PROBLEMS) == [], "/login"
        sign_in(page)
        for path in SIGNED_IN_PAGES:
            page.goto(path)
            assert page.evaluate(STRUCTURE_PROBLEMS) == [], f"{path} (JavaScript {javascript})"


def test_status_shape_and_text_survive_an_htmx_swap(page):
    sign_in(page)
    page.get_by_label("Tier").select_option("2")
    expect(page.locator("#service-rows tr")).to_have_count(3)
    expect(page.get_by_role("status")).to_have_text("3 services")
    assert page.evaluate(STRUCTURE_PROBLEMS) == []
    expect(page.locator("#service-rows .tier").first).to_have_text("◇ Tier 2 · important")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_light_and_dark_colour_schemes_are_readable(new_context, scheme):
    page = new_context(color_scheme=scheme).new_page()
    sign_in(page)
    for path in ("/services", "/services/checkout", "/tokens"):
        page.goto(path)
        if path == "/tokens":
            page.get_by_label("Name").fill("contrast")
            page.get_by_role("button", name="Create token").click()
            page.get_by_role("button", name="Revoke token contrast").click()
        found = page.evaluate(CONTRASTS)
        if scheme == "dark":
            assert found["background"] < 0.05 < 0.5 < found["text"], found
        else:
            assert found["background"] > 0.9 > 0.1 > found["text"], found
        low = [(name, round(ratio, 2)) for name, ratio in found["elements"] if ratio < 4.5]
        assert low == [], f"{path} in {scheme}: contrast below 4.5:1"


def test_signed_in_user_is_named_in_the_navigation(page):
    sign_in(page)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Services")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name=f"Signed in as {ADMIN}")).to_be_visible()
    page.goto("/teams")
    expect(nav.get_by_role("link", name="Teams")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Services")).not_to_have_attribute("aria-current", "page")
    page.goto("/teams/growth")
    expect(nav.get_by_role("link", name="Teams")).to_have_attribute("aria-current", "true")
