"""A snooze that comes back, in a real browser: snoozed from the queue's row menu, gone from the queue, back on
its day (the clock moved forward) and reopened from the queue."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from opportunities.models import Opportunity, OpportunityEvent, Outcome

pytestmark = pytest.mark.browser


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/")


def assert_no_console_problems(console: list[str]) -> None:
    problems = [m for m in console if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]
    assert problems == []


def test_it_brings_a_snoozed_opportunity_back_to_the_queue_on_its_day(
    page, live_server, demo, console, screenshot, monkeypatch
):
    base = live_server.url
    # The queue's first row: the highest score, the newest first among equals.
    opportunity = (
        Opportunity.objects.filter(owner__username="csm1", outcome=Outcome.OPEN).order_by("-score", "-pk").first()
    )
    name = opportunity.account.name
    row = page.locator(f"#queue-row-{opportunity.pk}")
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    sign_in(page, base, "csm1")

    # The row's menu loads its snooze form when asked for; the snooze answers with the row, dimmed.
    page.goto(f"{base}/queue/")
    row.get_by_role("link", name=f"More actions for {name}").click()
    row.get_by_label("Snooze until").fill(tomorrow.isoformat())
    screenshot(page, "queue-snooze-menu")
    row.get_by_role("button", name="Snooze").click()
    expect(page.locator("#messages")).to_contain_text(f"{name} snoozed until {tomorrow:%b %-d}")
    expect(row).to_have_class("queue-row queue-row--done")
    expect(row.locator(".badge--outcome-snoozed")).to_have_text("Snoozed")
    opportunity.refresh_from_db()
    assert (opportunity.outcome, opportunity.snoozed_until) == (Outcome.SNOOZED, tomorrow)

    page.reload()
    expect(page.locator(".queue-table")).to_be_visible()
    expect(row).to_have_count(0)

    # The day comes: the app's clock moves two days on, and the queue shows the opportunity again.
    later = timezone.now() + dt.timedelta(days=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    page.reload()
    expect(row.locator(".badge--outcome-snoozed")).to_have_text("Back from snooze")
    screenshot(page, "queue-back-from-snooze")

    row.get_by_role("button", name="Reopen").click()
    expect(page.locator("#messages")).to_contain_text(f"{name} is back in your queue.")
    expect(row.locator(f".badge--stage-{opportunity.stage}")).to_be_visible()
    expect(row.get_by_role("link", name=f"More actions for {name}")).to_be_visible()
    opportunity.refresh_from_db()
    assert opportunity.outcome == Outcome.OPEN and opportunity.closed_at is None
    assert OpportunityEvent.objects.filter(opportunity=opportunity, kind=OpportunityEvent.Kind.REOPENED).exists()
    assert_no_console_problems(console)


def test_it_snoozes_from_the_queue_without_javascript(browser, live_server, demo, screenshot):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    base = live_server.url
    opportunity = (
        Opportunity.objects.filter(owner__username="csm1", outcome=Outcome.OPEN).order_by("-score", "-pk").first()
    )
    name = opportunity.account.name
    sign_in(page, base, "csm1")

    page.goto(f"{base}/queue/")
    page.locator(f"#queue-row-{opportunity.pk}").get_by_role("link", name=f"More actions for {name}").click()
    expect(page.get_by_role("heading", name=f"More actions for {name}")).to_be_visible()
    screenshot(page, "queue-actions-page")
    page.get_by_role("button", name="Snooze").click()

    expect(page).to_have_url(f"{base}/queue/")
    expect(page.locator("#messages")).to_contain_text(f"{name} snoozed until")
    expect(page.locator(f"#queue-row-{opportunity.pk}")).to_have_count(0)
    opportunity.refresh_from_db()
    assert opportunity.outcome == Outcome.SNOOZED
    context.close()
