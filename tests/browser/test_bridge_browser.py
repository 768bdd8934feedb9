"""The Bridge in headless Chromium against a real gateway, worker and broker, with the Sock Shop
example project: every view loads, a person approves a promotion and sees the delivery continue,
aborts a running sequence, finds the violated target of a failed quality gate and sees a
remediation's actions. Each view is saved as a screenshot in test-artifacts/bridge/.

The tests share one environment (gateway, worker, broker, browser) but each attempt of each test
works in a project of its own (`project` fixture) and sets up the runs it looks at, so neither the
order nor a rerun changes what a test sees. Waiting for the agents has no fixed budget: a wait goes on
while they produce events (`BridgeEnv.wait_while_busy`), so a busy machine only makes it longer.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.browser.browser import Browser, BrowserError
from tests.browser.conftest import SERVICE, BridgeEnv, log_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# A page reached after a form post (the gateway publishes to Kafka first): generous for a busy machine.
PAGE_MS = 60_000


def shown(browser: Browser, selector: str, text: str) -> Callable[[int], bool]:
    """A check for `BridgeEnv.wait_while_busy`: does `selector` show `text` within `ms` (live updates)?"""
    def check(ms: int) -> bool:
        try:
            browser.wait_text(selector, text, ms)
        except BrowserError:
            return False
        return True

    return check


def wait_shown(env: BridgeEnv, browser: Browser, selector: str, text: str) -> None:
    env.wait_while_busy(shown(browser, selector, text), f"{text!r} in {selector}")


def no_page_errors(browser: Browser) -> None:
    problems = browser.problems()
    assert problems == [], f"the page logged errors: {problems}"


def test_login_then_dashboard(bridge_env: BridgeEnv, browser: Browser, project: str) -> None:
    browser.goto(bridge_env.url("/bridge/dashboard"))
    assert "/bridge/login" in browser.url(), "without a session the Bridge asks for the token"
    browser.screenshot(bridge_env.artifacts / "01-login.png")
    browser.fill("css=#token", "not-the-token")
    browser.click("role=button[name='Log in']")
    assert "not the API token" in browser.text("role=alert")
    assert all("401" in problem for problem in browser.problems()), "only the refused login is an error"
    browser.fill("css=#token", bridge_env.token)
    browser.click("role=button[name='Log in']")
    browser.wait_url(r"/bridge/dashboard$")
    tiles = browser.texts("css=.tile")
    tile = next((text for text in tiles if project in text), None)
    assert tile is not None, f"no tile for {project}: {tiles}"
    assert "dev" in tile and "production" in tile, tile
    browser.screenshot(bridge_env.artifacts / "02-dashboard.png")
    no_page_errors(browser)


def test_trigger_a_delivery_approve_it_and_see_it_continue(bridge_env: BridgeEnv, browser: Browser, project: str) -> None:
    log_in(browser, bridge_env)
    browser.goto(bridge_env.url(f"/bridge/project/{project}/environment"))
    # The trigger form: a delivery of an image into dev.
    browser.check("css=input[name=kind][value=delivery]")
    browser.select("css=select[name=stage]", "dev")
    browser.select("css=select[name=service]", SERVICE)
    browser.fill("css=input[name=image]", "docker.io/keptnexamples/carts:0.13.1")
    browser.fill("css=textarea[name=labels]", "buildId=17")
    browser.click("role=button[name='Trigger']")
    url = browser.wait_url(r"/sequence/[0-9a-f-]{36}$", PAGE_MS)
    assert "delivery of carts in dev triggered" in browser.text("css=[data-notice]")
    # dev and staging pass (staging's approval is automatic on pass); production waits for a person.
    wait_shown(bridge_env, browser, "css=section.run[data-stage=production]", "waiting for approval")
    staging = browser.text("css=section.run[data-stage=staging]")
    assert "succeeded" in staging and "tidegate-approver" in staging, staging
    no_page_errors(browser)

    browser.goto(bridge_env.url(f"/bridge/project/{project}/environment"))
    card = "css=article.service-card[data-stage=production]"
    wait_shown(bridge_env, browser, card, "Approval pending")
    assert "carts:0.13.1" in browser.text(card)
    dev_card = browser.text("css=article.service-card[data-stage=dev]")
    assert "carts:0.13.1" in dev_card, "dev shows the deployed image"
    assert "pass" in dev_card, "dev shows its last evaluation"
    browser.screenshot(bridge_env.artifacts / "03-environment-approval-pending.png")

    browser.click(f"{card} >> role=button[name='Approve']")
    assert "approved: carts in production" in browser.text("css=[data-notice]")
    browser.goto(url)
    # The sequence continues: production deploys and releases, without reloading the page.
    wait_shown(bridge_env, browser, "css=section.run[data-stage=production]", "succeeded")
    approval_row = browser.text("css=section.run[data-stage=production] tr[data-task=approval]")
    assert "tidegate-bridge" in approval_row, approval_row
    release_row = browser.text("css=section.run[data-stage=production] tr[data-task=release]")
    assert "pass" in release_row, release_row
    browser.screenshot(bridge_env.artifacts / "04-sequence-timeline.png")
    no_page_errors(browser)


def test_abort_a_running_sequence(bridge_env: BridgeEnv, browser: Browser, project: str) -> None:
    log_in(browser, bridge_env)
    context = bridge_env.trigger_delivery(project, "docker.io/keptnexamples/carts:0.13.2", {"scenario": "hang"})
    browser.goto(bridge_env.url(f"/bridge/project/{project}/sequence/{context}"))
    wait_shown(bridge_env, browser, "css=section.run[data-stage=dev] tr[data-task=deployment]", "running")
    browser.click("role=button[name='Abort']")
    assert any("Abort this sequence" in text for text in browser.dialogs()), "abort asks for confirmation"
    assert "abort sent" in browser.text("css=[data-notice]")
    wait_shown(bridge_env, browser, "css=.sequence-head h1", "aborted")
    assert browser.count("role=button[name='Abort']") == 0, "a finished sequence offers no controls"
    browser.screenshot(bridge_env.artifacts / "05-sequence-aborted.png")

    browser.goto(bridge_env.url(f"/bridge/project/{project}/sequences?state=aborted"))
    rows = browser.texts("css=table.list tbody tr")
    assert rows and all("aborted" in row for row in rows), rows
    assert browser.count(f"css=tr[data-context='{context}']") == 1
    browser.goto(bridge_env.url(f"/bridge/project/{project}/sequences?state=finished"))
    assert browser.count(f"css=tr[data-context='{context}']") == 0, "the state filter leaves the aborted run out"
    browser.goto(bridge_env.url(f"/bridge/project/{project}/sequences"))
    browser.screenshot(bridge_env.artifacts / "06-sequences.png")
    no_page_errors(browser)


def test_failed_evaluation_shows_the_violated_targets(bridge_env: BridgeEnv, browser: Browser, project: str) -> None:
    log_in(browser, bridge_env)
    # A passing evaluation, then one whose SLIs break the quality gate, both through the trigger form.
    for labels, result in (("", "pass"), ("scenario=slow", "fail")):
        browser.goto(bridge_env.url(f"/bridge/project/{project}/environment"))
        browser.check("css=input[name=kind][value=evaluation]")
        browser.select("css=select[name=stage]", "staging")
        browser.fill("css=input[name=timeframe]", "5m")
        browser.fill("css=textarea[name=labels]", labels)
        browser.click("role=button[name='Trigger']")
        browser.wait_url(r"/sequence/[0-9a-f-]{36}$", PAGE_MS)
        wait_shown(bridge_env, browser, "css=section.run[data-stage=staging] tr[data-task=evaluation]", result)

    browser.goto(bridge_env.url(f"/bridge/project/{project}/evaluations?stage=staging&service={SERVICE}"))
    score_cells = browser.count("css=tr.score-row td.heat")
    assert score_cells == 2, "the passing evaluation and the failing one"
    assert browser.count("css=tr.score-row td.heat-fail") == 1
    assert browser.count("css=svg.chart circle") == 2
    browser.screenshot(bridge_env.artifacts / "07-evaluations-heatmap.png")

    browser.click("css=tr.score-row td.heat-fail a")
    verdict = browser.text("css=[data-verdict]")
    assert verdict.startswith("fail: the key SLI Error rate failed"), verdict
    violations = browser.text("css=[data-violations]")
    assert "Error rate" in violations and "<=0.01" in violations, violations
    assert "Response time P95 (s)" in violations and "<0.5" in violations, violations
    error_rate = browser.text("css=tr[data-sli=error_rate]")
    assert "key sli" in error_rate.lower() and "violated" in error_rate, error_rate
    p95 = browser.text("css=tr[data-sli=response_time_p95]")
    assert "2" in p95.split("\t"), f"the weight of the p95 objective is shown: {p95!r}"
    browser.screenshot(bridge_env.artifacts / "08-evaluation-breakdown.png")

    browser.fill("css=#reason", "the load generator was broken")
    browser.click("role=button[name='Invalidate']")
    assert "invalidated" in browser.text("css=[data-notice]")
    wait_shown(bridge_env, browser, "css=main", "the load generator was broken")
    no_page_errors(browser)


def test_remediation_shows_actions_and_results(bridge_env: BridgeEnv, browser: Browser, project: str) -> None:
    log_in(browser, bridge_env)
    bridge_env.send_event({
        "type": "sh.keptn.event.production.remediation.triggered",
        "source": "browser-test",
        "data": {
            "project": project, "stage": "production", "service": SERVICE,
            "problem": {"State": "OPEN", "ProblemID": "p-1", "problemTitle": "response_time_p95",
                        "rootCause": "response_time_p95", "ImpactedEntity": SERVICE},
        },
    })
    browser.goto(bridge_env.url(f"/bridge/project/{project}/remediations"))
    # The remediator picks the first action of remediation.yaml for this problem; the action provider
    # reports it done; the re-evaluation is scheduled 30 s later (triggeredAfter), so it is not there yet.
    wait_shown(bridge_env, browser, "css=article.remediation", "Scale up")
    wait_shown(bridge_env, browser, "css=article.remediation td.action-result", "pass")
    remediation = browser.text("css=article.remediation")
    assert "response_time_p95" in remediation and "open" in remediation, remediation
    assert "Add one replica of the carts service" in remediation
    # The re-evaluation is due 30 s after the action: on a busy machine it may have come already.
    re_evaluation = browser.text("css=article.remediation td.re-evaluation")
    assert re_evaluation == "not yet" or re_evaluation.startswith("pass · "), re_evaluation
    browser.screenshot(bridge_env.artifacts / "09-remediations.png")
    no_page_errors(browser)

    # The dashboard now sums it all up: the runs above, newest first.
    browser.goto(bridge_env.url("/bridge/dashboard"))
    recent = browser.texts("css=table.list tbody tr")
    assert recent and "remediation" in recent[0], recent
    browser.screenshot(bridge_env.artifacts / "10-dashboard-with-runs.png")
    no_page_errors(browser)
