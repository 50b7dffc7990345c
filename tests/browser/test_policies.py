"""The policy pages in a browser: a frozen service on the policies and service pages, an override requested by
one person and approved by another (by keyboard, and without JavaScript), the velocity report; structure and
contrast as for every page.

Seed: the demo organisation, with identity's SLO ``identity-sign-in`` (99.99 % over 30 days) fed an hour at
1 % errors, so its budget is spent many times over and the built-in default policy freezes identity."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.policy import jobs as policy_jobs
from relia.slo import service as slo_service
from relia.slo.evaluator import Evaluator
from relia.slo.schemas import EventBatch
from tests.browser.slo_support import NOW, OPERATOR
from tests.browser.support import MEMBER, NO_PLAYWRIGHT, sign_in
from tests.browser.test_accessibility import CONTRASTS, STRUCTURE_PROBLEMS

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect

POLICY_PAGES = [
    "/policies",
    "/overrides",
    "/reports/velocity",
    "/reports/velocity?service=identity&period=7d",
    "/reports/velocity?service=identity&period=1y",
    "/services/identity",
]


def seed_frozen_identity(db: Database) -> None:
    start = NOW - timedelta(hours=1)
    points = [
        {"timestamp": (start + timedelta(minutes=index)).isoformat(), "bad": 10, "total": 1000} for index in range(60)
    ]
    with db.transaction() as session:
        slo_service.ingest(
            session,
            actor=OPERATOR,
            name="identity-sign-in",
            batch=EventBatch.model_validate({"points": points}),
            now=NOW,
        )
    clock = SimulatedClock(NOW)
    Evaluator().tick(db, clock)
    policy_jobs.evaluate(db, clock)


@pytest.fixture(scope="session")
def policy_template(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser-policy-template") / "policies.db"
    shutil.copy(demo_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        seed_frozen_identity(database)
    finally:
        database.dispose()
    return path


@pytest.fixture
def database_url(tmp_path: Path, policy_template: Path) -> str:
    path = tmp_path / "relia.db"
    shutil.copy(policy_template, path)
    return f"sqlite:///{path}"


def test_a_frozen_service_shows_on_the_policies_and_service_pages(page):
    sign_in(page, MEMBER)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Policies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Budget policies")
    restrictions = page.get_by_role("table", name="Freezes, required approvals and warnings")
    # The default freeze and the organisation-wide warning both hold identity; the freeze is listed first.
    expect(restrictions.get_by_role("row").nth(1)).to_contain_text("identity")
    expect(restrictions.get_by_role("row").nth(1)).to_contain_text("✖ frozen")
    expect(page.get_by_role("article", name="default built in")).to_contain_text(
        "identity-sign-in has exhausted its error budget"
    )
    restrictions.get_by_role("link", name="identity").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Identity")
    expect(page.locator("#release-state")).to_contain_text("Frozen:")
    expect(page.locator("#pager-state")).to_have_text("With its usual escalation.")


def test_an_override_is_requested_by_one_person_and_approved_by_another(new_context):
    requester = new_context().new_page()
    sign_in(requester, MEMBER)  # ada, Platform SRE, which owns identity
    requester.goto("/overrides")
    expect(requester.get_by_role("region", name="Awaiting approval")).to_contain_text("No override is waiting")
    requester.get_by_label("Service").select_option("identity")
    requester.get_by_label("Version").fill("v4.2.1")
    requester.get_by_label("Usable for").select_option("1d")
    requester.get_by_label("Why it cannot wait").fill("Fixes the sign-in outage")
    requester.get_by_role("button", name="Request override").click()
    expect(requester).to_have_url(re.compile(r"/overrides\?notice=requested$"))
    expect(requester.get_by_role("status")).to_contain_text("Override requested")
    pending = requester.get_by_role("table", name="Awaiting approval")
    expect(pending).to_contain_text("v4.2.1")
    expect(pending).to_contain_text("yours: someone else decides")
    expect(pending.get_by_role("button")).to_have_count(0)

    # The administrator approves it by keyboard alone, in a browser without JavaScript.
    approver = new_context(java_script_enabled=False).new_page()
    sign_in(approver)
    approver.goto("/overrides")
    approve = approver.get_by_role("button", name=re.compile(r"^Approve override #\d+ for identity v4\.2\.1$"))
    for _ in range(40):
        approver.keyboard.press("Tab")
        if approve.evaluate("el => el === document.activeElement"):
            break
    expect(approve).to_be_focused()
    approver.keyboard.press("Enter")
    expect(approver.get_by_role("status")).to_contain_text("Override approved")
    decided = approver.get_by_role("table", name="Decided and expired")
    expect(decided).to_contain_text("✔ approved by admin")
    expect(approver.get_by_role("table", name="Awaiting approval")).to_have_count(0)


def test_the_velocity_report_says_slow_down(page, nojs_page):
    sign_in(page, MEMBER)
    page.goto("/services/identity")
    page.get_by_role("link", name="Velocity report of Identity").click()
    expect(page.get_by_label("Service")).to_have_value("identity")
    page.get_by_label("Period").select_option("7d")
    page.get_by_role("button", name="Show report").click()
    expect(page).to_have_url(re.compile(r"/reports/velocity\?service=identity&period=7d$"))
    expect(page.locator("#verdict")).to_have_text("Verdict: ▼ slow down")
    expect(page.get_by_role("region", name="identity over the last 7d")).to_contain_text("exhausted its error budget")
    budgets = page.get_by_role("table", name="Error budget left")
    expect(budgets.get_by_role("row").nth(1)).to_contain_text("identity-sign-in")
    expect(page.get_by_role("region", name="Freezes")).to_contain_text("and frozen now")

    sign_in(nojs_page)
    nojs_page.goto("/reports/velocity")
    nojs_page.get_by_label("Service").select_option("identity")
    nojs_page.get_by_role("button", name="Show report").click()
    expect(nojs_page.locator("#verdict")).to_have_text("Verdict: ▼ slow down")


def test_policy_pages_have_structure_and_contrast(new_context):
    for javascript in (True, False):
        page = new_context(java_script_enabled=javascript).new_page()
        sign_in(page)
        for path in POLICY_PAGES:
            page.goto(path)
            assert page.evaluate(STRUCTURE_PROBLEMS) == [], f"{path} (JavaScript {javascript})"
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        sign_in(page)
        for path in ("/policies", "/overrides", "/reports/velocity?service=identity", "/services/identity"):
            page.goto(path)
            found = page.evaluate(CONTRASTS)
            low = [(name, round(ratio, 2)) for name, ratio in found["elements"] if ratio < 4.5]
            assert low == [], f"{path} in {scheme}: contrast below 4.5:1"
