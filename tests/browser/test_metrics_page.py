"""A manager reads the revenue metrics in a real browser: period presets, formula tips, a drill-down."""

import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.revenue_selectors import revenue_metrics
from opportunities.metrics_views import preset_period

pytestmark = pytest.mark.browser


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/")


def test_it_lets_a_manager_change_the_period_read_a_formula_and_drill_into_a_figure(
    page, live_server, demo, console, screenshot
):
    base = live_server.url
    sign_in(page, base, "manager")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("heading", name="Revenue metrics", level=1)).to_be_visible()
    expect(page.locator(".metric-card")).to_have_count(15)

    # A preset swaps the figures in place and keeps the period in the address bar.
    presets = page.get_by_role("navigation", name="Period presets")
    presets.get_by_role("link", name="Last quarter").click()
    expect(page).to_have_url(re.compile(r"period=last_quarter"))
    expect(presets.get_by_role("link", name="Last quarter")).to_have_attribute("aria-current", "true")
    start, end = preset_period("last_quarter", today=timezone.localdate())
    expect(page.get_by_label("From", exact=True)).to_have_value(start.isoformat())
    expect(page.get_by_label("To", exact=True)).to_have_value(end.isoformat())
    # The charts are drawn again for the new period: five kinds of bars for each of the quarter's 3 months.
    trend_bars = page.locator('[data-metrics-chart="trends"] .main-svg g.point')
    expect(trend_bars).to_have_count(5 * 3, timeout=20_000)
    expect(page.locator('[data-metrics-chart="cohort-upgraded"] .main-svg').first).to_be_attached()

    # A custom period through the form: the last twelve months again, by hand.
    start, end = preset_period("last_12_months", today=timezone.localdate())
    page.get_by_label("From", exact=True).fill(start.isoformat())
    page.get_by_label("To", exact=True).fill(end.isoformat())
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"start={start.isoformat()}&end={end.isoformat()}"))
    metrics = revenue_metrics(start=start, end=end)
    expect(trend_bars).to_have_count(5 * 12, timeout=20_000)
    expect(page.locator("#card-customers_at_start .metric-card__value")).to_contain_text(
        f"{metrics.customers_at_start:,}"
    )

    # The formula and its inputs show on keyboard focus as well as on hover.
    ndr_tip = page.locator("#tip-ndr")
    expect(ndr_tip).to_be_hidden()
    page.locator("#card-mrr_at_start .metric-card__value").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#card-ndr .metric-card__value")).to_be_focused()
    expect(ndr_tip).to_be_visible()
    expect(ndr_tip).to_contain_text("MRR at start")
    page.locator("#card-ndr .metric-card__value").blur()
    expect(ndr_tip).to_be_hidden()
    page.locator("#card-arpu").hover()
    expect(page.locator("#tip-arpu")).to_be_visible()
    screenshot(page, "metrics-formula")

    # Drill into the figure with the most movements behind it (the demo book decides which).
    key = "expansion_mrr" if metrics.upgrade_rows else "customers_at_start"
    rows = metrics.upgrade_rows if metrics.upgrade_rows else metrics.cohort_rows
    page.locator(f"#card-{key} .metric-card__value").click()
    expect(page).to_have_url(re.compile(rf"drill={key}"))
    drill = page.locator("#drill")
    expect(drill.get_by_role("heading", level=2)).to_be_visible()
    expect(drill.locator("tbody tr")).to_have_count(min(len(rows), 50))
    page.mouse.move(0, 0)
    screenshot(page, "metrics")

    # The drill-down's rows download as CSV, all of them, for the same period.
    with page.expect_download() as download:
        drill.get_by_role("link", name="CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("account,external_id,owner,date")
    assert len(lines) == 1 + len(rows)

    # A period that ends before it starts is explained in place.
    page.get_by_label("From", exact=True).fill(end.isoformat())
    page.get_by_label("To", exact=True).fill(start.isoformat())
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_contain_text("The last day is before the first.")
    screenshot(page, "metrics-invalid")
    page.go_back()
    expect(page).to_have_url(re.compile(rf"drill={key}"))

    # The account link leads to the account page.
    first = drill.locator("tbody th a").first
    name = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()

    # The browser logs the refused period's 422 itself; nothing else may go wrong.
    problems = [m for m in console if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]
    assert [m for m in problems if "status of 422" not in m] == []


def test_it_turns_a_csm_away_from_the_metrics(page, live_server, demo):
    sign_in(page, live_server.url, "csm1")

    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Metrics")).to_have_count(0)
    response = page.goto(f"{live_server.url}/metrics/")
    assert response.status == 403
    expect(page.get_by_text("Metrics are for managers")).to_be_visible()
