"""Signing in and out, redirects back to the page asked for, and the login form by keyboard alone."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.browser.support import ADMIN, MEMBER, NO_PLAYWRIGHT, PASSWORDS, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect


def test_wrong_password_shows_an_error_and_the_right_one_lands_on_services(page):
    page.goto("/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Relia")
    page.get_by_label("Username or email").fill(ADMIN)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("Unknown user or wrong password")
    expect(page).to_have_url(re.compile(r"/login$"))
    password = page.get_by_label("Password")
    expect(password).to_have_value("")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Username or email")).to_have_value(ADMIN)

    password.fill(PASSWORDS[ADMIN])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/services$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Services")
    expect(page.get_by_role("link", name=f"Signed in as {ADMIN}")).to_be_visible()


def test_sign_in_by_email_as_a_member(page):
    page.goto("/login")
    page.get_by_label("Username or email").fill("ada@acme.example")
    page.get_by_label("Password").fill(PASSWORDS[MEMBER])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/services$"))
    expect(page.get_by_role("link", name=f"Signed in as {MEMBER}")).to_be_visible()


@pytest.mark.parametrize("target", ["/services", "/services?owner=growth&tier=4", "/teams/payments"])
def test_signed_out_visit_goes_to_login_and_back_after_sign_in(page, target):
    page.goto(target)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert page.get_by_label("Username or email").evaluate("el => el === document.activeElement")
    page.get_by_label("Username or email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORDS[ADMIN])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.endswith(target))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    if "owner=growth" in target:
        expect(page.locator("#owner")).to_have_value("growth")
        expect(page.locator("#service-rows tr")).to_have_count(1)


OFFSITE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "/\t/evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("bad", OFFSITE)
def test_next_never_leaves_the_site(new_context, live_server, bad):
    context = new_context()
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page = context.new_page()
    page.goto("/login")
    page.locator("input[name=next]").evaluate("(el, value) => { el.value = value; }", bad)
    page.get_by_label("Username or email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORDS[ADMIN])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).netloc == urlsplit(live_server).netloc, page.url


def test_sign_out_ends_the_session(page):
    sign_in(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # Back to the page seen while signed in: it must come from the server again (no cached copy).
    page.go_back()
    expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)services$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Relia")
    page.goto("/tokens")
    expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)tokens$"))


def test_login_form_by_keyboard_only(page):
    page.goto("/login")
    username = page.get_by_label("Username or email")
    expect(username).to_be_focused()
    page.keyboard.type(MEMBER)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORDS[MEMBER])
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/services$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Services")


def test_login_form_submits_with_enter_in_the_password_field(page):
    page.goto("/login")
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[ADMIN])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/services$"))


def test_an_expired_sign_in_form_says_so_and_the_next_try_works(page):
    page.goto("/login?next=/teams")
    page.context.clear_cookies(name="relia_login_csrf")
    page.get_by_label("Username or email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORDS[ADMIN])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The sign-in form expired")
    expect(page.get_by_label("Username or email")).to_have_value(ADMIN)
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORDS[ADMIN])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/teams$"))
