"""A CSM's day in a real browser: the pipeline flags an account whose play runs automatically, its sequence
gives the CSM a task due today, and the bell tells of the new candidate. The CSM completes the task, reads the
notification and turns the daily digest off."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Notification, NotificationSetting, Task
from opportunities.models import Opportunity
from opportunities.tasks import flag_candidates
from playbooks.models import Play, Rule, SequenceStep
from playbooks.tasks import deliver_due_steps
from tests.factories import AccountFactory, UserFactory, plan
from tests.test_flagging import set_usage

pytestmark = pytest.mark.browser

TASK_TITLE = "Call about their storage"


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/")


def assert_no_console_problems(console: list[str]) -> None:
    problems = [m for m in console if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]
    assert problems == []


@pytest.fixture
def flagged_book(committed_db, eager_celery):
    """Casey's account near its storage limit, an automatic play on the storage rule whose first step gives
    the CSM a task due the day it starts, and the pipeline run over it: flagging, then step delivery."""
    casey = UserFactory(username="casey", first_name="Casey", last_name="Moreno", password="demo", role="CSM")
    account = AccountFactory(owner=casey, name="Acme Analytics", plan=plan("Basic"))
    play = Play.objects.create(name="Storage upgrade", run_mode=Play.RunMode.AUTOMATIC, target_plan=plan("Pro"))
    play.rules.add(Rule.objects.get(name="Storage at 80% or more"))
    SequenceStep.objects.create(
        play=play, position=1, delay_days=0, kind=SequenceStep.Kind.TASK, subject=TASK_TITLE, task_due_days=0
    )
    set_usage(account, "storage_gb", 9.2, slope=0.1)

    flag_candidates.delay(as_of=timezone.localdate().isoformat())
    deliver_due_steps.delay()

    return casey, account


def test_a_csm_completes_the_task_a_play_gave_them_reads_the_news_and_turns_the_digest_off(
    page, live_server, flagged_book, console, screenshot
):
    casey, account = flagged_book
    opportunity = Opportunity.objects.get(account=account)
    task = Task.objects.get(account=account)
    assert (task.assignee, task.source, task.due_on, task.opportunity_id) == (
        casey,
        Task.Source.PLAY,
        timezone.localdate(),
        opportunity.pk,
    )
    notification = Notification.objects.get(recipient=casey, kind=Notification.Kind.NEW_CANDIDATE)
    base = live_server.url
    sign_in(page, base, "casey")

    # The bell learns its count once the page has loaded, and opens on the latest notifications.
    bell = page.locator("#bell")
    expect(bell.locator("#bell-count")).to_have_text("1 unread")
    bell.locator("summary").click()
    expect(bell.locator(".bell__list")).to_contain_text("New candidate: Acme Analytics")
    screenshot(page, "bell-open")

    # The task list: the play's task, due today; one click completes it in place.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    today = page.locator("section.task-group--today")
    row = page.locator(f"#task-row-{task.pk}")
    expect(today.locator(f"#task-row-{task.pk}")).to_contain_text(TASK_TITLE)
    expect(row).to_contain_text("Acme Analytics")
    expect(row).to_contain_text("Play step")
    expect(row.get_by_role("link", name=f"Opportunity #{opportunity.pk}")).to_be_visible()
    screenshot(page, "tasks")
    row.get_by_role("button", name=f"Complete: {TASK_TITLE}").click()
    expect(page.locator("#messages")).to_contain_text(f"Done: {TASK_TITLE}.")
    expect(row).to_have_class("task-row task-row--done")
    task.refresh_from_db()
    assert (task.status, task.completed_by) == (Task.Status.DONE, casey)

    # The notification centre: the new candidate, unread until marked read; the bell follows.
    page.goto(f"{base}/notifications/")
    item = page.locator(f"#notification-{notification.pk}")
    expect(item).to_have_class("notification-row notification-row--unread")
    assert notification.title == f"New candidate: Acme Analytics (score {opportunity.score})"
    expect(item.get_by_role("link", name=notification.title)).to_have_attribute(
        "href", f"/accounts/{account.pk}/#opportunity-{opportunity.pk}"
    )
    screenshot(page, "notifications")
    item.get_by_role("button", name=f"Mark read: {notification.title}").click()
    expect(item).to_have_class("notification-row")
    expect(page.locator("#bell-count")).to_have_class("bell__count bell__count--none")
    notification.refresh_from_db()
    assert notification.read_at is not None

    # The settings, reached from the bell: the daily digest goes off.
    page.locator("#bell summary").click()
    page.locator("#bell-panel").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()
    digest = page.get_by_label("Send me a daily digest by email")
    expect(digest).to_be_checked()
    digest.uncheck()
    screenshot(page, "notification-settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#messages")).to_contain_text("Notification settings saved.")
    expect(page.get_by_label("Send me a daily digest by email")).not_to_be_checked()
    assert NotificationSetting.objects.get(user=casey).daily_digest is False

    # A task added by hand on the account page joins the panel in place.
    page.goto(f"{base}{account.get_absolute_url()}")
    panel = page.locator("#tasks")
    panel.get_by_text("Add a task").click()
    panel.get_by_label("Task").fill("Send the annual pricing")
    panel.get_by_label("Due on").fill((timezone.localdate() + dt.timedelta(days=3)).isoformat())
    panel.get_by_role("button", name="Add task").click()
    expect(page.locator("#messages")).to_contain_text("Task added: Send the annual pricing")
    expect(panel.locator(".task-item").first).to_contain_text("in 3 days")
    panel.screenshot(path=str(screenshot(page, "account").with_name("account-tasks.png")))
    assert Task.objects.filter(account=account, title="Send the annual pricing", created_by=casey).exists()

    # The same pages in the dark.
    page.emulate_media(color_scheme="dark")
    page.goto(f"{base}/tasks/")
    page.locator("details.task-group--done > summary").click()
    expect(page.locator(f"#task-row-{task.pk}")).to_have_class("task-row task-row--done")
    screenshot(page, "tasks-dark")
    page.goto(f"{base}/notifications/")
    screenshot(page, "notifications-dark")
    page.locator("#bell summary").click()
    expect(page.locator("#bell .bell__list")).to_be_visible()
    screenshot(page, "bell-open-dark")
    page.goto(f"{base}/notifications/settings/")
    screenshot(page, "notification-settings-dark")
    page.goto(f"{base}{account.get_absolute_url()}")
    expect(page.locator("#tasks")).to_contain_text(TASK_TITLE)
    page.locator("#tasks").scroll_into_view_if_needed()
    page.locator("#tasks").screenshot(path=str(screenshot(page, "account-dark").with_name("account-tasks-dark.png")))
    assert_no_console_problems(console)


def test_a_csm_completes_a_task_without_javascript(browser, live_server, flagged_book):
    _, account = flagged_book
    task = Task.objects.get(account=account)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    base = live_server.url
    sign_in(page, base, "casey")

    page.goto(f"{base}/tasks/")
    page.locator(f"#task-row-{task.pk}").get_by_role("button", name=f"Complete: {TASK_TITLE}").click()

    expect(page).to_have_url(f"{base}/tasks/")
    expect(page.locator("#messages")).to_contain_text(f"Done: {TASK_TITLE}.")
    task.refresh_from_db()
    assert task.status == Task.Status.DONE
    context.close()
