"""The catalog pages: the service list and its filters (with and without JavaScript), service, team and user
pages."""

from __future__ import annotations

import re

import pytest

from tests.browser.support import MEMBER, NO_PLAYWRIGHT, examples, sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect


def _rows(page):
    return page.locator("#service-rows tr")


def _listed_slugs(page) -> list[str]:
    return _rows(page).locator("th code").all_inner_texts()


def test_service_list_shows_every_service_with_owner_and_tier_as_text(page):
    services, teams = examples("Service"), examples("Team")
    sign_in(page)
    expect(_rows(page)).to_have_count(len(services))
    expect(page.get_by_role("status")).to_have_text(f"{len(services)} services")
    assert _listed_slugs(page) == sorted(services)
    for slug, spec in services.items():
        row = _rows(page).filter(has=page.locator("code", has_text=re.compile(f"^{slug}$")))
        cells = row.locator("th, td")
        expect(cells.nth(0)).to_contain_text(spec["name"])
        expect(cells.nth(1)).to_have_text(teams[spec["owner"]]["name"])
        expect(cells.nth(2)).to_contain_text(f"Tier {spec['tier']}")
        for dependency in spec.get("dependsOn", []):
            expect(cells.nth(3).get_by_role("link", name=dependency, exact=True)).to_be_visible()


def test_filters_narrow_the_list_in_place_with_javascript(page):
    sign_in(page)
    page.evaluate("window.reliaMarker = 'same document'")
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        page.get_by_role("searchbox", name="Search").fill("pay")
    expect(_rows(page)).to_have_count(1)
    assert _listed_slugs(page) == ["payments-api"]
    expect(page).to_have_url(re.compile(r"/services\?q=pay"))
    expect(page.get_by_role("status")).to_have_text("1 service")

    page.get_by_role("searchbox", name="Search").fill("")
    page.get_by_label("Owner").select_option(label="Growth")
    expect(_rows(page)).to_have_count(2)
    assert _listed_slugs(page) == ["notifications", "recommendations"]
    page.get_by_label("Tier").select_option("4")
    expect(_rows(page)).to_have_count(1)
    assert _listed_slugs(page) == ["recommendations"]
    expect(page).to_have_url(re.compile(r"owner=growth.*tier=4"))

    page.get_by_label("Tier").select_option("1")
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page)).to_contain_text("No services match")
    expect(page.get_by_role("status")).to_have_text("No services match")
    # Never a full page load: the same document (and its JavaScript state) throughout.
    assert page.evaluate("window.reliaMarker") == "same document"


def test_enter_in_the_search_field_filters_in_place(page):
    sign_in(page)
    page.evaluate("window.reliaMarker = 'same document'")
    search = page.get_by_role("searchbox", name="Search")
    search.focus()
    page.keyboard.type("stor")
    page.keyboard.press("Enter")
    expect(_rows(page)).to_have_count(1)
    assert _listed_slugs(page) == ["web-storefront"]
    assert page.evaluate("window.reliaMarker") == "same document"


def test_filters_work_without_javascript(nojs_page):
    page = nojs_page
    sign_in(page)
    expect(_rows(page)).to_have_count(len(examples("Service")))
    page.get_by_label("Owner").select_option(label="Payments")
    page.get_by_label("Tier").select_option("1")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/services\?q=&owner=payments&tier=1$"))
    expect(_rows(page)).to_have_count(2)
    assert _listed_slugs(page) == ["checkout", "payments-api"]
    expect(page.get_by_label("Owner")).to_have_value("payments")

    page.get_by_role("searchbox", name="Search").fill("check")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page).to_have_url(re.compile(r"q=check"))
    assert _listed_slugs(page) == ["checkout"]
    expect(page.get_by_role("status")).to_have_text("1 service")


def test_back_after_filtering_restores_the_whole_page(page):
    """htmx asks the server for a page missing from its history cache with HX-Request set: the answer must
    be the whole page, not the table rows alone."""
    sign_in(page)
    page.get_by_label("Owner").select_option(label="Growth")
    expect(_rows(page)).to_have_count(2)
    page.get_by_label("Owner").select_option(label="Storefront")
    expect(_rows(page)).to_have_count(3)
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    page.go_back()
    expect(page).to_have_url(re.compile(r"owner=growth"))
    expect(_rows(page)).to_have_count(2)
    expect(page.get_by_role("heading", level=1)).to_have_text("Services")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_label("Owner")).to_be_visible()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_service_page_shows_links_dependencies_and_dependents(new_context, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page)
    page.get_by_role("link", name="Checkout", exact=True).click()
    expect(page).to_have_url(re.compile(r"/services/checkout$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    expect(page).to_have_title("Checkout · Relia")
    expect(page.get_by_text("Turns a basket into an order and a payment.")).to_be_visible()
    expect(page.get_by_role("main").get_by_role("link", name="Payments", exact=True)).to_have_attribute(
        "href", "/teams/payments"
    )
    expect(page.get_by_role("main")).to_contain_text("Tier 1 · critical")

    links = page.get_by_role("list", name="Links")
    expect(links.get_by_role("link", name="Runbook")).to_have_attribute(
        "href", "https://wiki.acme.example/runbooks/checkout"
    )
    expect(links.get_by_role("listitem")).to_have_count(3)
    expect(links).to_contain_text("runbook")

    depends_on = page.get_by_role("list", name="Depends on")
    expect(depends_on.get_by_role("link")).to_have_text(
        ["Identity", "Orders Database", "Payments API", "Product Catalog"]
    )
    used_by = page.get_by_role("list", name="Used by")
    expect(used_by.get_by_role("link")).to_have_text(["Web Storefront"])

    depends_on.get_by_role("link", name="Payments API").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payments API")
    expect(page.get_by_role("list", name="Used by").get_by_role("link")).to_have_text(["Checkout"])
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Services").click()
    expect(page).to_have_url(re.compile(r"/services$"))


def test_service_without_dependents_says_so(page):
    sign_in(page)
    page.goto("/services/recommendations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Recommendations")
    expect(page.get_by_role("main")).to_contain_text("Nothing depends on this service.")
    expect(page.get_by_role("main")).to_contain_text("Tier 4 · low")


def test_unknown_service_is_a_readable_404_inside_the_layout(page):
    sign_in(page)
    response = page.goto("/services/no-such-service")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("no-such-service")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Services")).to_be_visible()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_team_page_shows_members_with_roles_and_time_zones_and_services(new_context, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    users, team = examples("User"), examples("Team")["platform"]
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Teams").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Teams")
    page.get_by_role("link", name="Platform SRE").click()
    expect(page).to_have_url(re.compile(r"/teams/platform$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform SRE")

    members = page.get_by_role("table", name="Members")
    expect(members.locator("tbody tr")).to_have_count(len(team["members"]))
    for member in team["members"]:
        user = users[member["user"]]
        row = members.get_by_role("row").filter(has=page.get_by_role("link", name=user["name"]))
        expect(row.locator("td").nth(0)).to_contain_text(member.get("role", "member"))
        expect(row.locator("td").nth(1)).to_have_text(user["timeZone"])

    owned = sorted(spec["name"] for spec in examples("Service").values() if spec["owner"] == "platform")
    expect(page.get_by_role("list", name="Services").get_by_role("link")).to_have_text(owned)
    page.get_by_role("link", name="Ada Okafor").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Okafor")
    expect(page.get_by_role("main")).to_contain_text("Europe/London")


def test_a_member_sees_the_same_catalog(page):
    sign_in(page, MEMBER)
    expect(_rows(page)).to_have_count(len(examples("Service")))
    page.goto("/teams/payments")
    expect(page.get_by_role("heading", level=1)).to_have_text("Payments")


def test_contact_addresses_are_shown_to_the_user_and_administrators_only(new_context):
    member = new_context().new_page()
    sign_in(member, MEMBER)
    member.goto("/users/jack")
    contacts = member.get_by_role("list", name="Contact methods")
    expect(contacts.get_by_role("listitem")).to_have_count(2)
    expect(contacts).to_contain_text("team-webhook")
    expect(contacts).not_to_contain_text("hooks.acme.example")
    expect(contacts).to_contain_text("address shown only to jack and administrators")
    member.get_by_role("link", name=f"Signed in as {MEMBER}").click()
    expect(member.get_by_role("list", name="Contact methods")).to_contain_text("ntfys://ntfy.sh/acme-ada-pager")

    admin = new_context().new_page()
    sign_in(admin)
    admin.goto("/users/jack")
    expect(admin.get_by_role("list", name="Contact methods")).to_contain_text("https://hooks.acme.example/pager/jack")
