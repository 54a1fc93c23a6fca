"""A CSM works an upsell end to end in a real browser: queue, account page, qualify, present, email, won."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Account, MrrMovement
from opportunities import selectors
from opportunities.models import Opportunity, OpportunityEvent, Outcome, Stage
from playbooks.models import Play

pytestmark = pytest.mark.browser

CHART_TIMEOUT_MS = 20_000


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/")


def assert_no_console_problems(console: list[str]) -> None:
    problems = [m for m in console if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]
    assert problems == []


def test_it_takes_a_csm_from_the_queue_to_a_won_upgrade(page, live_server, demo, console, screenshot):
    base = live_server.url
    sign_in(page, base, "csm1")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queue").click()
    expect(page.locator(".queue-table")).to_be_visible()
    screenshot(page, "queue")

    # Filtering swaps the results in place and keeps the filter in the address bar. The demo book decides
    # whether csm1's earliest open opportunity waits in Identify or in Qualify.
    early = (
        Opportunity.objects.filter(
            owner__username="csm1", outcome=Outcome.OPEN, stage__in=[Stage.IDENTIFY, Stage.QUALIFY]
        )
        .order_by("-stage")
        .first()
    )
    stage = early.stage
    page.locator("#id_stage").select_option(stage)
    expect(page).to_have_url(re.compile(rf"stage={stage}"))
    expect(page.locator(f".queue-table tbody .badge--stage-{stage}").first).to_be_visible()
    stages = page.locator(".queue-table tbody [class*=badge--stage-]")
    assert stages.count() == page.locator(f".queue-table tbody .badge--stage-{stage}").count()

    link = page.locator(".queue-table tbody th.account-cell > a").first
    name = link.inner_text()
    link.click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    expect(page.locator("[data-usage-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    # The timeline comes in after the page: its loading line gives way to the entries.
    expect(page.locator("#timeline-entries .timeline__item").first).to_be_visible()
    expect(page.locator("#timeline-entries .timeline__loading")).to_have_count(0)
    # Narrowed to billing and back, in place.
    filters = page.locator(".timeline-filter")
    filters.get_by_role("link", name="Billing").click()
    expect(filters.locator('[aria-current="true"]')).to_have_text("Billing")
    expect(page.locator("#timeline-entries .timeline__item:not(.timeline__item--mrr)")).to_have_count(0)
    filters.get_by_role("link", name="Everything").click()
    expect(page.locator("#timeline-entries .timeline__item").first).to_be_visible()
    opportunity = Opportunity.objects.get(account__name=name, outcome=Outcome.OPEN)
    account = opportunity.account

    # Qualify: need and budget answered, then on to Present.
    work = page.locator("#work")
    if opportunity.stage == Stage.IDENTIFY:
        work.get_by_role("button", name="Start qualifying").click()
    work.get_by_label("Need confirmed?").select_option("yes")
    work.get_by_label("Budget confirmed?").select_option("yes")
    work.get_by_label("Decision maker").fill("Dana, CFO")
    work.get_by_label("Business goals").fill("Onboard the new analytics team")
    work.get_by_role("button", name="Save and move to Present").click()
    expect(page.locator("#present-form")).to_be_visible()

    # Present: ROI computed by the server, a trial of the target plan.
    work.get_by_label("Value proposition").fill("Room for the analytics team without overage fees.")
    work.get_by_label("Hours saved per month").fill("12")
    work.get_by_label("Hourly cost").fill("55")
    work.get_by_label("Overage or risk avoided / month").fill("120")
    work.get_by_label("Offer a trial of the target plan").check()
    work.get_by_role("button", name="Save and compute ROI").click()
    expect(page.locator("#roi-note")).to_contain_text("12 hours a month saved")
    opportunity.refresh_from_db()
    assert opportunity.trial_ends_on is not None and opportunity.roi_note

    # The email, drafted from the template: preview, then send. The demo's plays touched the account lately;
    # no gap between touches here, so that this email is the CSM's own call.
    Play.objects.update(min_days_between_touches=0)
    page.locator(".email-draft > summary").click()
    work.get_by_label("To").fill("dana@example.com")
    work.get_by_role("button", name="Preview").click()
    expect(page.locator(".email-preview")).to_contain_text(name)
    work.get_by_role("button", name="Send").click()
    expect(page.locator("#messages")).to_contain_text("Email sent to dana@example.com")
    assert [message.to for message in mail.outbox] == [["dana@example.com"]]
    assert OpportunityEvent.objects.filter(opportunity=opportunity, kind="email_sent").exists()
    expect(page.locator("#timeline")).to_contain_text("Email sent")
    screenshot(page, "account-page-present")

    page.locator("#present-form").get_by_role("button", name="Save and move to Close").click()
    expect(page.locator(".stepper__step--current")).to_have_text("Close")

    # Close as won with the prefilled plan and MRR change.
    page.locator("#close-form").get_by_label("Won").check()
    page.locator("#close-form").get_by_label("Actual MRR change").fill("70")
    target = opportunity.target_plan
    page.locator("#close-form").get_by_role("button", name="Record the outcome").click()
    expect(page.locator("#messages")).to_contain_text(f"Won: {name} is on {target.name} now.")

    account_after = Account.objects.get(pk=account.pk)
    assert account_after.plan == target
    assert account_after.mrr == account.mrr + Decimal(70)
    assert MrrMovement.objects.filter(account=account, source="opportunity").exists()
    assert Opportunity.objects.get(pk=opportunity.pk).stage == Stage.CLOSE

    page.reload()
    expect(page.locator("#work")).to_contain_text("No open opportunity")
    screenshot(page, "account-page-won")

    page.goto(f"{base}/queue/")
    expect(page.locator(".queue-table")).to_be_visible()
    assert name not in page.locator(".queue-table tbody th.account-cell > a").all_inner_texts()
    assert_no_console_problems(console)


def test_it_lets_a_csm_close_an_opportunity_as_lost_with_a_reason(page, live_server, demo, console, screenshot):
    base = live_server.url
    page.emulate_media(color_scheme="dark")
    opportunity = Opportunity.objects.filter(owner__username="csm1", outcome=Outcome.OPEN).order_by("-score").first()
    sign_in(page, base, "csm1")
    page.goto(f"{base}{opportunity.account.get_absolute_url()}")

    expect(page.locator("[data-usage-chart] svg.main-svg").first).to_be_visible(timeout=CHART_TIMEOUT_MS)
    screenshot(page, "account-page-work-dark")
    close = page.locator("#close-form")
    if not close.is_visible():
        page.locator(".close-box > summary").click()
    close.get_by_label("Lost").check()
    close.get_by_label("Reason").select_option(index=1)
    close.get_by_label("Detail").fill("Budget frozen until next year")
    close.get_by_role("button", name="Record the outcome").click()

    expect(page.locator("#messages")).to_contain_text("closed as lost")
    expect(page.locator("#work .closed-summary")).to_contain_text("Budget frozen until next year")
    expect(page.locator("#timeline")).to_contain_text("Lost:")
    opportunity.refresh_from_db()
    assert opportunity.outcome == Outcome.LOST and opportunity.lost_reason is not None

    # On to the account that followed it in the queue, without going back to the list.
    csm1 = opportunity.account.owner
    following = selectors.next_in_queue(user=csm1, after=opportunity, today=timezone.localdate())
    page.locator("#work").get_by_role("link", name="Next in the queue").first.click()
    expect(page).to_have_url(f"{base}{following.account.get_absolute_url()}")
    expect(page.locator("h1")).to_have_text(following.account.name)
    assert_no_console_problems(console)
