"""The SLO pages: the list worst first (with and without JavaScript), one SLO's chart, burn rates, forecast,
warnings and events, budget adjustments (added, withdrawn, refused), by keyboard, readable in light and dark.

The SLOs and their states are those of ``slo_support`` (one in each state) next to the examples' SLOs (no
data), seeded once into a template database that each test copies."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from relia.catalog.models import Team, TeamMembership, User
from relia.core.db import Database
from tests.browser.slo_support import SEEDED, expected_order, seed_slos
from tests.browser.support import MEMBER, NO_PLAYWRIGHT, examples, sign_in
from tests.browser.test_accessibility import CONTRASTS, STRUCTURE_PROBLEMS

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect

TIMES = "\N{MULTIPLICATION SIGN}"  # as in burn rates: "8.00" TIMES
SLO_PAGES = [
    "/slos",
    "/slos?state=healthy",
    "/slos?service=nothing-here",
    "/slos/checkout-submit",
    "/slos/search-latency",
    "/slos/identity-login",
    "/slos/edge-synthetics",
    "/slos/refunds-availability",
    "/slos/no-such-slo",
    "/services/checkout",
]


@pytest.fixture(scope="session")
def slo_template(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo organisation plus the SLOs of ``slo_support``, evaluated once."""
    path = tmp_path_factory.mktemp("browser-slo-template") / "slos.db"
    shutil.copy(demo_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        seed_slos(database)
    finally:
        database.dispose()
    return path


@pytest.fixture
def database_url(tmp_path: Path, slo_template: Path) -> str:
    path = tmp_path / "relia.db"
    shutil.copy(slo_template, path)
    return f"sqlite:///{path}"


def _listed(page) -> list[str]:
    return page.locator("#slo-results tbody.slo-rows").evaluate_all("bodies => bodies.map(b => b.dataset.slo)")


def _slo_rows(page, name: str):
    return page.locator(f'#slo-results tbody[data-slo="{name}"]')


def test_list_shows_every_slo_worst_first_with_state_words_and_shapes(page):
    everything = expected_order()
    sign_in(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="SLOs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("SLOs")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="SLOs")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("status")).to_have_text(f"{len(everything)} SLOs")
    # At risk (it pages) comes before healthy although it has more budget left: worst state first.
    assert _listed(page) == [name for name, _ in everything]
    shapes = {"exhausted": "✖", "at risk": "▲", "healthy": "●", "no data": "◌", "not evaluated yet": "○"}
    for name, state in everything:
        expect(_slo_rows(page, name).locator(".slo-state").first).to_have_text(f"{shapes[state]} {state}")
    budgets = {"refunds-availability": "-200 %", "checkout-submit": "79.6 %", "identity-login": "no data"}
    for name, budget in budgets.items():
        expect(_slo_rows(page, name).locator(".slo-budget")).to_have_text(budget)
    expect(_slo_rows(page, "search-latency").locator(".slo-budget")).to_have_text(["60 %", "80 %"])
    expect(_slo_rows(page, "checkout-submit").locator(".slo-alerts")).to_have_text("◆ page ◇ ticket")
    expect(_slo_rows(page, "refunds-availability").locator(".slo-alerts")).to_have_text("◇ ticket")
    expect(_slo_rows(page, "search-latency").locator(".slo-alerts").first).to_have_text("none")
    checkout = _slo_rows(page, "checkout-submit")
    expect(checkout.get_by_role("link", name="Checkout", exact=True)).to_have_attribute("href", "/services/checkout")
    expect(checkout.locator("td")).to_have_text(
        ["Checkout", "default", "99 %", "99.796 %", "79.6 %", "▲ at risk", "◆ page ◇ ticket"]
    )
    expect(_slo_rows(page, "search-latency").locator("td").nth(1)).to_have_text("Fast searches (≤ 0.3 s)")


def test_filters_narrow_the_list_in_place_with_javascript(page):
    total = len(expected_order())
    sign_in(page)
    page.goto("/slos")
    page.evaluate("window.reliaMarker = 'same document'")
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        page.get_by_label("State").select_option(label="at risk")
    expect(page.get_by_role("status")).to_have_text(f"1 of {total} SLOs")
    assert _listed(page) == ["checkout-submit"]
    expect(page).to_have_url(re.compile(r"/slos\?service=&state=at_risk$"))
    page.get_by_label("Service").select_option(label="Search")
    expect(page.get_by_role("status")).to_have_text("No SLOs match")
    expect(page.locator("#slo-results")).to_contain_text("No SLOs match. Show all SLOs")
    page.get_by_label("State").select_option(label="Any state")
    search = [name for name, _ in expected_order("search")]
    expect(page.get_by_role("status")).to_have_text(f"{len(search)} of {total} SLOs")
    assert _listed(page) == search
    assert page.evaluate("window.reliaMarker") == "same document"


def test_filters_work_without_javascript_and_from_the_service_page(nojs_page):
    page = nojs_page
    sign_in(page)
    page.goto("/services/checkout")
    table = page.get_by_role("table", name="SLOs")
    expect(table.locator('tbody[data-slo="checkout-submit"] .slo-state')).to_have_text("▲ at risk")
    expect(table.locator('tbody[data-slo="checkout-submit"] .slo-budget')).to_have_text("79.6 %")
    page.get_by_role("link", name="Checkout on the SLO list").click()
    expect(page).to_have_url(re.compile(r"/slos\?service=checkout$"))
    assert _listed(page) == [name for name, _ in expected_order("checkout")]
    page.get_by_label("Service").select_option(label="Any service")
    page.get_by_label("State").select_option(label="not evaluated yet")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/slos\?service=&state=pending$"))
    assert _listed(page) == ["edge-synthetics"]
    measured = {spec["service"] for spec in examples("SLO").values()} | {service for _, service, _ in SEEDED}
    unmeasured = sorted(set(examples("Service")) - measured)[0]
    page.goto(f"/services/{unmeasured}")
    expect(page.get_by_role("region", name="SLOs")).to_contain_text("No SLOs for this service yet.")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_slo_page_shows_the_chart_burn_rates_forecast_warnings_and_events(new_context, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page)
    page.goto("/slos")
    page.get_by_role("link", name="Checkout submissions succeed").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout submissions succeed")
    definition = page.get_by_role("region", name="Definition")
    expect(definition).to_contain_text("rolling 1d")
    expect(definition).to_contain_text("Last sample: 2026-03-02 08:59 UTC")

    chart = page.locator(".burn-chart")
    if javascript:
        # uPlot replaced the server's SVG with a canvas, named by the same summary.
        expect(chart.locator("canvas").first).to_be_visible()
        expect(chart.locator("svg")).to_have_count(0)
        expect(chart.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^Budget remaining: 90 %"))
    else:
        svg = chart.get_by_role("img", name="Error budget remaining for default")
        expect(svg).to_be_visible()
        assert svg.locator("path.chart-line").get_attribute("d").count("L") > 200
        expect(chart.locator("canvas")).to_have_count(0)
    expect(page.locator("figcaption")).to_contain_text("79.6 % at the latest point")

    burn = page.get_by_role("table", name="Burn rates")
    page_slow = burn.get_by_role("row").filter(has_text="page-slow")
    expect(page_slow.locator("td")).to_have_text(
        ["12m", f"8.00{TIMES}", "1m", f"8.00{TIMES}", f"6{TIMES} (error ratio 6 %)", "▲ firing"]
    )
    expect(burn.get_by_role("row").filter(has_text="page-quick")).to_contain_text("can never fire")
    forecast = page.locator(".forecast")
    expect(forecast.first).to_contain_text(
        f"At the last hour's burn rate (2.6{TIMES}), the remaining budget would be spent in"
    )
    expect(forecast.nth(1)).to_contain_text("the budget would be overspent by")
    expect(page.get_by_role("region", name="Warnings")).to_contain_text("the short window rounds to 0 minutes")
    events = page.get_by_role("table", name="Recent events")
    expect(events.get_by_role("row").nth(1)).to_contain_text("slo.alert.fired")
    expect(events).to_contain_text("Page alert on checkout-submit")


def test_add_and_withdraw_a_budget_adjustment(page):
    sign_in(page)
    page.goto("/slos/checkout-submit")
    adjustments = page.get_by_role("table", name="Budget adjustments")
    expect(adjustments).to_contain_text("No budget adjustments.")

    # A mistake is reported next to the form, which keeps what was typed.
    page.get_by_label("Start (UTC)").fill("2026-03-02 09:00")
    page.get_by_label("End (UTC)").fill("2026-03-02 08:40")
    page.get_by_label("Reason").fill("Bad deploy, rolled back")
    page.get_by_role("button", name="Add adjustment").click()
    expect(page.get_by_role("alert")).to_have_text("✖ End: end must be after start")
    expect(page.get_by_label("Start (UTC)")).to_have_value("2026-03-02 09:00")
    expect(page.get_by_label("Start (UTC)")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Start (UTC)").fill("2026-03-02 08:40")
    page.get_by_label("End (UTC)").fill("2026-03-02T09:00Z")
    page.get_by_role("button", name="Add adjustment").click()
    expect(page).to_have_url(re.compile(r"/slos/checkout-submit\?notice=added#adjustments-h$"))
    expect(page.get_by_role("status")).to_contain_text("Budget adjustment added")
    row = adjustments.get_by_role("row").filter(has_text="Bad deploy, rolled back")
    expect(row.locator("td")).to_have_text(
        [
            "2026-03-02 08:40",
            "2026-03-02 09:00",
            "Bad deploy, rolled back",
            "admin on 2026-03-02 09:00",
            "● in effect",
            "Withdraw",
        ]
    )
    expect(page.get_by_role("table", name="Recent events")).to_contain_text("slo.adjustment.added")

    row.get_by_role("button", name="Withdraw the adjustment from 2026-03-02 08:40: Bad deploy, rolled back").click()
    expect(page.get_by_role("status")).to_contain_text("Budget adjustment withdrawn")
    expect(row).to_contain_text("withdrawn 2026-03-02 09:00")
    expect(row.get_by_role("button")).to_have_count(0)


def test_adjustments_are_refused_politely_outside_the_owning_team(page, db):
    sign_in(page, MEMBER)  # ada: Platform SRE, not Payments
    page.goto("/slos/checkout-submit")
    expect(page.locator("#adjustment-refusal")).to_have_text(
        "ⓘ Only members of Payments (or an administrator) may add or withdraw budget adjustments."
    )
    expect(page.get_by_role("button", name="Add adjustment")).to_have_count(0)

    # A page opened while ada was in the owning team: she has left it when she submits.
    page.goto("/slos/identity-login")
    page.get_by_label("Start (UTC)").fill("2026-03-02 06:00")
    page.get_by_label("End (UTC)").fill("2026-03-02 07:00")
    page.get_by_label("Reason").fill("Planned failover test")
    with db.transaction() as session:
        ada = session.scalars(select(User).where(User.username == MEMBER)).one()
        platform = session.scalars(select(Team).where(Team.slug == "platform")).one()
        session.execute(
            delete(TeamMembership).where(TeamMembership.user_id == ada.id, TeamMembership.team_id == platform.id)
        )
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Add adjustment").click()
    assert posted.value.status == 403
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Nothing was changed: Only members of the owning team (or an administrator)")
    expect(alert).to_be_focused()
    expect(page.get_by_role("table", name="Budget adjustments")).to_contain_text("No budget adjustments.")
    expect(page.locator("#adjustment-refusal")).to_contain_text("Only members of Platform SRE")


def test_add_and_withdraw_an_adjustment_by_keyboard_alone(page):
    sign_in(page)
    page.goto("/slos/identity-login")
    jump = page.get_by_role("navigation", name="On this page").get_by_role("link", name="Budget adjustments")
    for _ in range(30):
        page.keyboard.press("Tab")
        if jump.evaluate("el => el === document.activeElement"):
            break
    expect(jump).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#adjustments-h$"))
    page.keyboard.press("Tab")
    expect(page.get_by_label("Start (UTC)")).to_be_focused()
    page.keyboard.type("2026-03-02 07:00")
    page.keyboard.press("Tab")
    expect(page.get_by_label("End (UTC)")).to_be_focused()
    page.keyboard.type("2026-03-02 07:30")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Reason")).to_be_focused()
    page.keyboard.type("Keyboard maintenance")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add adjustment")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Budget adjustment added")

    # The page lands on the adjustments: the next stop is the new adjustment's Withdraw button.
    page.keyboard.press("Tab")
    withdraw = page.get_by_role("button", name=re.compile("^Withdraw the adjustment from 2026-03-02 07:00"))
    expect(withdraw).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Budget adjustment withdrawn")


def test_slo_pages_have_headings_labels_named_tables_and_status_shapes(new_context):
    for javascript in (True, False):
        page = new_context(java_script_enabled=javascript).new_page()
        sign_in(page)
        for path in SLO_PAGES:
            page.goto(path)
            assert page.evaluate(STRUCTURE_PROBLEMS) == [], f"{path} (JavaScript {javascript})"


def test_slo_pages_are_readable_in_light_and_dark(new_context):
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        sign_in(page)
        for path in ("/slos", "/slos/checkout-submit", "/slos/edge-synthetics"):
            page.goto(path)
            found = page.evaluate(CONTRASTS)
            low = [(name, round(ratio, 2)) for name, ratio in found["elements"] if ratio < 4.5]
            assert low == [], f"{path} in {scheme}: contrast below 4.5:1"
