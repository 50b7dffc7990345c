"""The deploy pages in a browser: from the navigation to a deployment awaiting promotion, promoted and then
aborted by keyboard alone (with and without JavaScript), the refusal for another team, the live part refreshed
by htmx, and structure and contrast as for every page.

Seed: the demo organisation with a blue-green target for edge-gateway (Platform SRE, ada's team) whose
promotion is manual, and a deployment of v3.1.0 waiting for a person (no worker runs here, so it stays put)."""

from __future__ import annotations

import re

import pytest

from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.deploys import service
from relia.deploys.schemas import DeployTargetSpec
from tests.browser.support import MEMBER, NO_PLAYWRIGHT, sign_in
from tests.browser.test_accessibility import CONTRASTS, STRUCTURE_PROBLEMS
from tests.deploys.support import OPERATOR, start

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).expect


def target_spec(service_slug: str) -> DeployTargetSpec:
    return DeployTargetSpec.model_validate(
        {
            "service": service_slug,
            "environments": {"blue": {"upstream": "10.0.0.10:443"}, "green": {"upstream": "10.0.0.11:443"}},
            "adapter": {"type": "http", "switch": "http://127.0.0.1:9/switch"},
            "promotion": {"mode": "manual", "timeout": "2h", "onTimeout": "abort"},
        }
    )


@pytest.fixture
def deployment(db: Database, clock: SimulatedClock) -> int:
    with db.transaction() as session:
        spec = target_spec("edge-gateway")
        service.upsert_target(session, actor=OPERATOR, name="edge-gateway", spec=spec, now=clock.now())
    return start(db, clock, service_slug="edge-gateway", version="v3.1.0")


def tab_to(page, locator, presses: int = 60) -> None:  # type: ignore[no-untyped-def]
    for _ in range(presses):
        page.keyboard.press("Tab")
        if locator.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {locator}")


@pytest.mark.parametrize("javascript", [True, False])
def test_promote_then_abort_by_keyboard(new_context, deployment, javascript):
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page, MEMBER)
    main_nav = page.get_by_role("navigation", name="Main")
    main_nav.get_by_role("link", name="Deploys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deploys")
    expect(main_nav.get_by_role("link", name="Deploys")).to_have_attribute("aria-current", "page")
    targets = page.get_by_role("table", name="Targets")
    expect(targets).to_contain_text("Edge Gateway")
    page.get_by_role("table", name="Recent deployments").get_by_role("link", name=f"Deployment {deployment}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Deployment {deployment}: v3.1.0 to Edge Gateway")
    state = page.locator(".deploy-state")
    expect(state).to_contain_text("‖ awaiting promotion")
    expect(page.get_by_role("region", name="Environments")).to_contain_text("10.0.0.11:443")
    steps = page.get_by_role("list", name="Steps")
    expect(steps.get_by_role("listitem")).to_have_count(5)
    expect(steps).to_contain_text("deploy.promotion.awaiting")

    reason = page.get_by_label(re.compile("^Reason"))
    tab_to(page, reason)
    page.keyboard.type("smoke tests passed")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Promote")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Promoted. The release gate is checked again")
    expect(state).to_contain_text("⇄ switching traffic")
    expect(steps).to_contain_text("promoted by ada: smoke tests passed")

    # Landing on the state heading, the next stops are the reason and the only button left: Abort.
    page.keyboard.press("Tab")
    expect(reason).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Abort")).to_be_focused()
    expect(page.get_by_role("button", name="Promote")).to_have_count(0)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Abort requested")
    expect(state).to_contain_text("■ aborted before the switch")
    expect(page.get_by_role("button", name="Abort")).to_have_count(0)


def test_another_team_reads_but_cannot_decide(page, db, clock):
    with db.transaction() as session:
        service.upsert_target(session, actor=OPERATOR, name="checkout", spec=target_spec("checkout"), now=clock.now())
    deployment = start(db, clock, service_slug="checkout", version="v9")
    sign_in(page, MEMBER)  # ada: Platform SRE, not Payments
    page.goto(f"/deploys/{deployment}")
    expect(page.locator(".refusal")).to_have_text(
        "ⓘ Only members of Payments (or an administrator) may promote, resume or abort this deployment."
    )
    expect(page.get_by_role("button", name="Promote")).to_have_count(0)
    expect(page.get_by_role("button", name="Abort")).to_have_count(0)


def test_the_live_part_refreshes_while_it_runs(page, deployment, db, clock):
    sign_in(page, MEMBER)
    page.goto(f"/deploys/{deployment}")
    state = page.locator(".deploy-state")
    expect(state).to_contain_text("awaiting promotion")
    with db.transaction() as session:  # someone else promotes it, elsewhere
        service.act(session, actor=OPERATOR, deployment_id=deployment, verb="promote", now=clock.now())
    expect(state).to_contain_text("switching traffic", timeout=8000)
    expect(page.get_by_role("list", name="Steps")).to_contain_text("promoted by test-operator")


def test_deploy_pages_have_headings_labels_named_tables_and_status_shapes(new_context, deployment):
    for javascript in (True, False):
        page = new_context(java_script_enabled=javascript).new_page()
        sign_in(page)
        for path in ("/deploys", f"/deploys/{deployment}", "/deploys/999", "/deploys?service=edge-gateway"):
            page.goto(path)
            assert page.evaluate(STRUCTURE_PROBLEMS) == [], f"{path} (JavaScript {javascript})"


def test_deploy_pages_are_readable_in_light_and_dark(new_context, deployment):
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme).new_page()
        sign_in(page)
        for path in ("/deploys", f"/deploys/{deployment}"):
            page.goto(path)
            found = page.evaluate(CONTRASTS)
            low = [(name, round(ratio, 2)) for name, ratio in found["elements"] if ratio < 4.5]
            assert low == [], f"{path} in {scheme}: contrast below 4.5:1"
