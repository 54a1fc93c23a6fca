"""A manager reads the pipeline dashboard in a real browser: the funnel drawn, the period and a CSM changed, the
leaderboard downloaded as CSV."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from opportunities.metrics_views import preset_period
from opportunities.pipeline_selectors import PipelineFilters, pipeline_dashboard
from tests.browser.test_account_journey import sign_in

pytestmark = pytest.mark.browser


def win_rate_text(stats) -> str:
    return "—" if stats.win_rate.rate is None else f"{stats.win_rate.rate}%"


def test_it_lets_a_manager_change_the_period_and_the_csm_with_the_funnel_drawn_each_time(
    page, live_server, demo, console, screenshot
):
    base = live_server.url
    today = timezone.localdate()
    sign_in(page, base, "manager")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pipeline").click()
    expect(page.get_by_role("heading", name="Pipeline", level=1)).to_be_visible()
    funnel_bars = page.locator("[data-pipeline-funnel] svg.main-svg g.point")
    expect(funnel_bars).to_have_count(4, timeout=20_000)

    # A preset swaps the results in place, keeps the period in the address bar, and the funnel is drawn again.
    presets = page.get_by_role("navigation", name="Period presets")
    presets.get_by_role("link", name="Last quarter").click()
    expect(page).to_have_url(re.compile(r"period=last_quarter"))
    expect(presets.get_by_role("link", name="Last quarter")).to_have_attribute("aria-current", "true")
    start, end = preset_period("last_quarter", today=today)
    expect(page.get_by_label("From", exact=True)).to_have_value(start.isoformat())
    stats = pipeline_dashboard(start=start, end=end, today=today)
    expect(page.locator('[data-figure="win-rate"]')).to_have_text(win_rate_text(stats))
    expect(funnel_bars).to_have_count(4, timeout=20_000)

    # Choosing a CSM narrows every figure without a click on Apply, and keeps the period.
    csm = User.objects.get(username="csm1")
    page.get_by_label("CSM", exact=True).select_option(str(csm.pk))
    expect(page).to_have_url(re.compile(rf"csm={csm.pk}"))
    expect(page).to_have_url(re.compile(r"period=last_quarter"))
    mine = pipeline_dashboard(start=start, end=end, today=today, filters=PipelineFilters(owner_id=csm.pk))
    expect(page.locator('[data-figure="open-count"]')).to_have_text(f"{mine.open_count:,}")
    # Casey's row, and one for each account executive she brought onto a deal of the period.
    expect(page.locator(".pipeline-leaderboard tbody tr")).to_have_count(len(mine.leaderboard))
    assert csm.pk in {row.user_id for row in mine.leaderboard}
    expect(funnel_bars).to_have_count(4, timeout=20_000)
    screenshot(page, "pipeline-dashboard-csm")

    # Sorting the leaderboard keeps the filters.
    page.get_by_role("link", name=re.compile(r"^Won")).click()
    expect(page).to_have_url(re.compile(r"sort=-won"))
    expect(page.get_by_role("columnheader", name=re.compile(r"^Won"))).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(rf"csm={csm.pk}"))

    # The leaderboard downloads as CSV for the same period and CSM: a header and the rows shown.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of the CSM leaderboard").click()
    assert re.fullmatch(r"pipeline-leaderboard-\d{8}-\d{8}\.csv", download.value.suggested_filename)
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "csm,worked,won,lost,win_rate_percent,expansion_mrr,avg_cycle_days"
    assert len(lines) == 1 + len(mine.leaderboard)
    assert any(line.startswith(f"{csm.get_full_name() or csm.username},") for line in lines[1:])

    # Back restores the previous results from history, and the funnel is drawn again there too.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"sort="))
    expect(page.get_by_label("CSM", exact=True)).to_have_value(str(csm.pk))
    expect(funnel_bars).to_have_count(4, timeout=20_000)

    page.get_by_role("link", name="Reset").click()
    expect(page).to_have_url(f"{base}/pipeline/")
    expect(funnel_bars).to_have_count(4, timeout=20_000)
    screenshot(page, "pipeline-dashboard")
    assert [line for line in console if line.startswith(("error", "pageerror"))] == []
