"""An admin writes a rule in a real browser: the preview follows the threshold, the backtest draws its chart."""

import dataclasses

import pytest
from playwright.sync_api import expect

from accounts.models import Metric
from playbooks.facts import flagged_by_rules, stored_facts
from playbooks.models import Rule
from playbooks.rules import RuleSpec
from tests.browser.test_account_journey import CHART_TIMEOUT_MS, assert_no_console_problems, sign_in

pytestmark = pytest.mark.browser


def flagged_today(spec: RuleSpec) -> int:
    return flagged_by_rules([spec], stored_facts())[spec.id].count


def test_it_lets_an_admin_watch_the_preview_follow_a_threshold_and_run_the_backtest(
    page, live_server, demo, console, screenshot
):
    base = live_server.url
    storage = Metric.objects.get(key="storage_gb")
    at_30 = RuleSpec(id=0, name="Storage filling up", weight=25, metric_key="storage_gb", min_utilization=0.3)
    at_95 = dataclasses.replace(at_30, min_utilization=0.95)
    expected_30, expected_95 = flagged_today(at_30), flagged_today(at_95)
    assert expected_30 > expected_95  # the demo book has accounts between 30% and 95% of their storage

    sign_in(page, base, "admin")
    page.goto(f"{base}/settings/rules/")
    expect(page.get_by_role("heading", name="Rules and thresholds")).to_be_visible()
    expect(page.locator(".rules-table tbody tr")).to_have_count(Rule.objects.count())
    screenshot(page, "rules-list")

    page.get_by_role("link", name="New rule").click()
    page.wait_for_url(f"{base}/settings/rules/new/")  # loaded: htmx listens to the form from here on
    page.get_by_label("Name").fill("Storage filling up")
    page.get_by_label("Metric").select_option(str(storage.pk))
    page.get_by_label("Utilization at least (%)").fill("30")
    count = page.locator("#preview [data-preview-count]")
    expect(count).to_have_text(f"{expected_30:,}")

    page.get_by_label("Utilization at least (%)").fill("95")
    expect(count).to_have_text(f"{expected_95:,}")
    expect(page.locator("#preview")).to_contain_text("Storage at 95% of the limit or more")
    screenshot(page, "rules-editor-preview")
    assert not Rule.objects.filter(name="Storage filling up").exists()  # previews save nothing

    # Without a metric the utilization threshold means nothing: the preview says which field to fix.
    page.get_by_label("Metric").select_option("")
    expect(page.locator("#preview")).to_contain_text(
        "Metric: Choose the metric that the utilization and days-to-limit thresholds look at."
    )
    screenshot(page, "rules-editor-invalid")

    page.get_by_label("Metric").select_option(str(storage.pk))
    page.get_by_label("Utilization at least (%)").fill("30")
    expect(count).to_have_text(f"{expected_30:,}")
    page.get_by_role("button", name="Run backtest").click()
    expect(page.locator(".rules-backtest__table tbody tr")).to_have_count(6)
    expect(page.locator("[data-backtest-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    page.locator(".rules-backtest").scroll_into_view_if_needed()
    screenshot(page, "rules-editor-backtest")

    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("heading", name="Storage filling up", level=1)).to_be_visible()
    rule = Rule.objects.get(name="Storage filling up")
    assert rule.min_utilization == 0.3
    expect(page.locator("#preview [data-preview-count]")).to_have_text(f"{expected_30:,}")
    screenshot(page, "rules-editor-saved")
    assert_no_console_problems(console)
