"""A customer unsubscribes from play emails in a real browser: the link from the email, the confirm page, the
confirmation; light and dark."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import EmailOptOut
from playbooks.unsubscribe import unsubscribe_token
from tests.factories import AccountFactory

pytestmark = pytest.mark.browser


def assert_no_console_problems(console: list[str]) -> None:
    # The broken link's page is itself a 400 response, which the browser reports as a failed load.
    expected = "error: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    problems = [
        m for m in console if (m.startswith(("error", "pageerror")) or "Content Security Policy" in m) and m != expected
    ]
    assert problems == []


def test_a_customer_unsubscribes_from_the_link_in_a_play_email(page, live_server, committed_db, console, screenshot):
    account = AccountFactory(name="Acme Analytics")
    token = unsubscribe_token(email="bea.buyer@acme.example", account_id=account.pk, step_run_id=None)
    url = live_server.url + reverse("unsubscribe", args=[token])

    page.goto(url)
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    expect(page.get_by_text("bea.buyer@acme.example").first).to_be_visible()
    screenshot(page, "unsubscribe-confirm")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(300)  # the buttons' colour transition
    screenshot(page, "unsubscribe-confirm-dark")
    page.emulate_media(color_scheme="light")
    assert not EmailOptOut.objects.exists()

    page.get_by_role("button", name="Unsubscribe").click()

    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert EmailOptOut.objects.get().email == "bea.buyer@acme.example"
    screenshot(page, "unsubscribe-done")
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(300)
    screenshot(page, "unsubscribe-done-dark")

    page.goto(live_server.url + reverse("unsubscribe", args=["broken-link"]))
    expect(page.get_by_role("heading", name="This unsubscribe link is not valid")).to_be_visible()
    screenshot(page, "unsubscribe-invalid-dark")
    assert_no_console_problems(console)
