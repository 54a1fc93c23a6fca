"""An admin sets up an A/B test of a play in a real browser: two variants, start it, read its results."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Account
from playbooks.experiment_services import experiment_assignments_record
from playbooks.models import Assignment, Experiment, Play

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


def test_it_lets_an_admin_create_start_and_read_an_experiment(page, live_server, demo, console, screenshot):
    base = live_server.url
    play = Play.objects.create(
        name="Seats near the limit (A/B)",
        email_subject="{{ account_name }} is using {{ utilization }} of its seats",
        email_body="Hello,\n\nYour team is growing. {{ target_plan }} gives you room for it.",
    )
    sign_in(page, base, "admin")

    page.goto(f"{base}/settings/experiments/")
    expect(page.get_by_role("heading", name="Experiments", level=1)).to_be_visible()
    page.get_by_role("link", name="New experiment").first.click()
    expect(page.get_by_role("heading", name="New experiment", level=1)).to_be_visible()
    expect(page.get_by_label("Control group (%)")).to_have_value("10")
    expect(page.get_by_label("Attribution days")).to_have_value("90")

    page.get_by_label("Play").select_option(label=play.name)
    page.get_by_label("Name", exact=True).fill("Subject line: utilization vs. deadline")
    page.get_by_label("Hypothesis").fill("Naming the date the limit is reached gets more upgrades than the share used.")
    page.locator("#id_variants-0-name").fill("Utilization")
    page.locator("#id_variants-1-name").fill("Deadline")
    second = page.locator(".experiment-variant").nth(1)
    second.get_by_text("Content overrides").click()
    page.locator("#id_variants-1-email_subject").fill("Your seats run out on {{ projected_limit_date }}")
    screenshot(page, "settings-experiment-form")
    page.get_by_role("button", name="Create the experiment").click()

    expect(page).to_have_url(re.compile(r"/settings/experiments/\d+/$"))
    expect(page.locator(".badge--experiment-draft")).to_have_text("Draft")
    expect(page.get_by_role("heading", name="No accounts assigned yet")).to_be_visible()
    page.get_by_role("button", name="Start the experiment").click()
    expect(page.locator(".badge--experiment-running")).to_have_text("Running")
    expect(page.get_by_role("button", name="Stop the experiment")).to_be_visible()

    # The demo book meets the play: every account is assigned, as the flagging run would, 60 days ago so
    # that the demo's recent upgrades fall in the window after assignment.
    experiment = Experiment.objects.get(play=play)
    accounts = list(Account.objects.values_list("pk", flat=True))
    experiment_assignments_record(pairs=[(pk, play.pk) for pk in accounts], at=timezone.now() - dt.timedelta(days=60))
    assert Assignment.objects.filter(experiment=experiment).count() == len(accounts)

    page.reload()
    expect(page.get_by_role("heading", name="Results by arm")).to_be_visible()
    rows = page.locator(".experiment-arms tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Control (holdout)")
    expect(rows.nth(1)).to_contain_text("Utilization")
    expect(rows.nth(2)).to_contain_text("Deadline")
    expect(page.locator(".experiment-kpis .kpi__value").first).to_have_text(str(len(accounts)))
    expect(page.locator("#verdict-heading")).to_be_visible()
    screenshot(page, "settings-experiment-results")

    page.goto(f"{base}/settings/experiments/")
    expect(page.locator(".experiments-table tbody tr")).to_have_count(1)
    expect(page.locator(".experiments-table .badge--experiment-running")).to_be_visible()
    screenshot(page, "settings-experiments")

    assert_no_console_problems(console)
