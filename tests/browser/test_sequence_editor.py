"""Automated plays in a real browser: an admin writes a play's sequence step by step, then a CSM starts the play
on an account and pauses it."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Account
from playbooks.models import Enrollment, Play, SequenceStep
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_account_journey import assert_no_console_problems, sign_in
from tests.factories import plan

pytestmark = pytest.mark.browser


def shot(page: Page, screenshot, name: str, *, element: str | None = None) -> None:
    """The full page through the suite's fixture, and the element alone (easier to look at) next to it."""
    screenshot(page, name)
    if element:
        # Clipped from a full-page capture taken from the top, so the sticky top bar stays where it belongs.
        box = page.locator(element).evaluate(
            "e => { const r = e.getBoundingClientRect();"
            " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }"
        )
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-detail.png"), full_page=True, clip=box)


def add_step(page: Page, *, day: str, kind: str, subject: str = "", body: str = "") -> None:
    form = page.locator("#step-form")
    expect(form.get_by_role("heading", name="Add a step")).to_be_visible()
    form.get_by_label("Day", exact=True).fill(day)
    form.get_by_label("Step", exact=True).select_option(label=kind)
    if subject:
        form.get_by_label("Subject or title").fill(subject)
    if body:
        form.get_by_label("Body", exact=True).fill(body)
    form.get_by_role("button", name="Add the step").click()


def timeline(page: Page) -> list[str]:
    return [" ".join(text.split()) for text in page.locator(".sequence-timeline__step").all_inner_texts()]


def test_an_admin_writes_a_sequence_and_a_csm_starts_and_pauses_it(page, live_server, demo, console, screenshot):
    base = live_server.url
    # The previews posted while typing and the form's own posts never overlap, so none of them fails.
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 500 else None)
    play = Play.objects.create(
        name="Seats squeeze",
        target_plan=plan("Pro"),
        email_subject="Room to grow",
        email_body="Hi,\n\n{{ metric }} is at {{ utilization }}.\n\n{{ csm_name }}",
    )

    sign_in(page, base, "admin")
    page.goto(f"{base}/settings/plays/")
    page.get_by_role("link", name="Seats squeeze").click()
    editor = page.locator("#sequence")
    expect(editor).to_contain_text("No steps yet")

    # An email on day 0 (the play's own), a prompt on day 3 whose preview follows the typing, a note to the
    # owner on day 0, which takes its place by its day.
    add_step(page, day="0", kind="Send an email")
    expect(page.locator("#messages")).to_contain_text("Step 1 added: day 0, email.")
    form = page.locator("#step-form")
    form.get_by_label("Day", exact=True).fill("3")
    form.get_by_label("Step", exact=True).select_option(label="Show an in-app prompt")
    form.get_by_label("Body", exact=True).fill("{{ account_name }} uses {{ utilization }} of its {{ metric }}.")
    expect(page.locator("#step-preview .prompt-banner")).to_have_text("Acme Analytics uses 92% of its Seats.")
    form.get_by_role("button", name="Add the step").click()
    expect(page.locator("#messages")).to_contain_text("Step 2 added: day 3, prompt.")
    add_step(page, day="0", kind="Notify the owner", subject="Heads-up: {{ account_name }}")
    expect(page.locator("#messages")).to_contain_text("Step 2 added: day 0, note to the owner.")
    assert timeline(page) == [
        "Day 0: email “Room to grow”",
        "Day 0: note to the owner “Heads-up: Acme Analytics”",
        "Day 3: prompt",
    ]

    # The note goes first; the prompt cannot move before a day-0 step.
    expect(page.get_by_role("button", name="Move step 3 up")).to_be_disabled()
    page.get_by_role("button", name="Move step 2 up").click()
    expect(page.locator("#messages")).to_contain_text("Step moved up: it is step 1 now.")
    assert timeline(page) == [
        "Day 0: note to the owner “Heads-up: Acme Analytics”",
        "Day 0: email “Room to grow”",
        "Day 3: prompt",
    ]
    assert list(SequenceStep.objects.filter(play=play).order_by("position").values_list("kind", flat=True)) == [
        "notify",
        "email",
        "prompt",
    ]
    # The editor's page reloads the same: the order is stored.
    page.reload()
    expect(page.locator(".sequence-timeline__step").first).to_contain_text("note to the owner")

    # Editing a step opens its form with the live preview.
    page.get_by_role("link", name="Edit step 2").click()
    expect(page.locator("#step-form").get_by_role("heading", name="Edit step 2")).to_be_visible()
    expect(page.locator("#step-preview")).to_contain_text("Seats is at 92%.")
    shot(page, screenshot, "settings-play-sequence", element="#sequence")
    page.emulate_media(color_scheme="dark")
    shot(page, screenshot, "settings-play-sequence-dark", element="#sequence")
    page.emulate_media(color_scheme="light")

    # A CSM starts the play on one of her accounts, then pauses it.
    page.context.clear_cookies()
    sign_in(page, base, "csm1")
    # One of her accounts that runs no play yet (the demo's plays run on some of them).
    account = Account.objects.filter(owner__username="csm1", enrollments__isnull=True).order_by("name").first()
    page.goto(f"{base}{account.get_absolute_url()}")
    panel = page.locator("#plays")
    expect(panel).to_contain_text("No plays running")
    panel.get_by_label("Start a play").select_option(label="Seats squeeze")
    panel.get_by_role("button", name="Start").click()
    expect(page.locator("#messages")).to_contain_text("“Seats squeeze” started")
    expect(panel.locator(".badge--enrollment-active")).to_have_text("Running")
    expect(panel).to_contain_text("Step 1: notify the owner")
    expect(panel).to_contain_text("0 of 3")

    panel.get_by_role("button", name="Pause Seats squeeze").click()
    expect(page.locator("#messages")).to_contain_text("“Seats squeeze” paused")
    expect(panel.locator(".badge--enrollment-paused")).to_have_text("Paused")
    expect(panel.get_by_role("button", name="Resume Seats squeeze")).to_be_visible()
    enrollment = Enrollment.objects.get(account=account, play=play)
    assert enrollment.status == Enrollment.Status.PAUSED
    assert enrollment.started_by.username == "csm1"
    assert re.search(r"by \w+", panel.inner_text())

    panel.scroll_into_view_if_needed()
    shot(page, screenshot, "account-plays-running", element="#plays")
    page.emulate_media(color_scheme="dark")
    shot(page, screenshot, "account-plays-running-dark", element="#plays")
    assert failed == []
    assert_no_console_problems(console)
