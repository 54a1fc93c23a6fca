"""The content security policy holds in a real browser: every main page, its charts and its HTMX swaps run
without a single violation, under a policy that allows no inline script."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Account, Plan
from playbooks.models import Rule
from tests.browser.test_account_journey import CHART_TIMEOUT_MS, sign_in

pytestmark = pytest.mark.browser

# Runs before any script of the page (Playwright injects it outside the page's policy): every violation the
# browser reports, as "directive blocked-uri source:line".
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def watched(page: Page, console: list[str]) -> Page:
    page.add_init_script(COLLECT_VIOLATIONS)
    return page


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def visit(page: Page, url: str, *, chart: str | None = None) -> None:
    """Open `url`, check the policy it was served with, and wait for its chart to be drawn."""
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    policy = directives(response.headers["content-security-policy"])
    assert "'unsafe-inline'" not in policy["script-src"], url
    assert "'unsafe-eval'" not in policy["script-src"], url
    assert any(source.startswith("'nonce-") for source in policy["script-src"]), url
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"], url
    if chart:
        expect(page.locator(f"{chart} svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")


def assert_no_violations(page: Page, console: list[str], where: str) -> None:
    violations = page.evaluate("window.__csp")
    problems = [m for m in console if "Content Security Policy" in m or m.startswith(("error", "pageerror"))]
    assert (violations, problems) == ([], []), where


def sign_out(page: Page) -> None:
    page.context.clear_cookies()


def test_every_main_page_runs_without_a_policy_violation(watched, live_server, demo, console):
    page, base = watched, live_server.url

    sign_in(page, base, "csm1")
    account = (
        Account.objects.filter(owner__username="csm1", snapshots__isnull=False, opportunities__outcome="open")
        .distinct()
        .first()
    )
    for url, chart in [
        (f"{base}/", None),
        (f"{base}/queue/", None),
        (f"{base}/accounts/", None),
        (f"{base}{account.get_absolute_url()}", "[data-usage-chart]"),
    ]:
        visit(page, url, chart=chart)
        assert_no_violations(page, console, url)
    # HTMX swaps: a note added to the timeline, the queue's filters and a row's menu.
    visit(page, f"{base}{account.get_absolute_url()}", chart="[data-usage-chart]")
    page.get_by_label("Add a note").fill("Called them: the team grows in January.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline")).to_contain_text("the team grows in January")
    visit(page, f"{base}/queue/")
    page.get_by_role("link", name="More").first.click()
    expect(page.get_by_label("Snooze until").first).to_be_visible()
    assert_no_violations(page, console, "csm1's swaps")

    sign_out(page)
    sign_in(page, base, "manager")
    for url, chart in [
        (f"{base}/", None),
        (f"{base}/accounts/imports/", None),
        (f"{base}/metrics/", "[data-metrics-chart]"),
        (f"{base}/pipeline/", "[data-pipeline-funnel]"),
    ]:
        visit(page, url, chart=chart)
        assert_no_violations(page, console, url)

    sign_out(page)
    sign_in(page, base, "admin")
    for url in [
        f"{base}/settings/",
        f"{base}/settings/plans/",
        f"{base}/settings/plans/{Plan.objects.get(name='Pro').pk}/",
        f"{base}/settings/metrics/",
        f"{base}/settings/audit/",
        f"{base}/settings/plays/",
        f"{base}/settings/experiments/",
        f"{base}/settings/rules/",
    ]:
        visit(page, url)
        assert_no_violations(page, console, url)
    # The rules editor's backtest is swapped in by htmx and drawn by a plotly.js loaded on demand.
    visit(page, f"{base}/settings/rules/{Rule.objects.order_by('pk').first().pk}/")
    page.get_by_role("button", name="Run backtest").click()
    expect(page.locator("[data-backtest-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    assert_no_violations(page, console, "rules editor with its backtest")


def test_it_would_notice_an_inline_script(watched, live_server, console):
    """The watch above can fail: an inline script is blocked, reported and counted."""
    page = watched
    visit(page, f"{live_server.url}/login/")

    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__ran = true";
          document.body.append(script);
        }"""
    )

    expect(page.locator("body")).to_be_visible()
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("window.__ran === undefined")
    assert page.evaluate("window.__csp")[0].startswith("script-src")
    assert any(re.search(r"Content Security Policy", message) for message in console)
