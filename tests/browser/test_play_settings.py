"""An admin creates a play with an email template in a real browser and watches the preview follow the typing."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import AuditEntry
from playbooks.models import Play
from tests.browser.test_account_journey import assert_no_console_problems, sign_in

pytestmark = pytest.mark.browser


def test_an_admin_creates_a_play_with_an_email_template_and_sees_the_live_preview(
    page, live_server, demo, console, screenshot
):
    base = live_server.url
    sign_in(page, base, "admin")

    page.goto(f"{base}/settings/plays/")
    expect(page.get_by_role("heading", name="Plays", exact=True)).to_be_visible()
    page.get_by_role("link", name="New play").first.click()
    expect(page).to_have_url(f"{base}/settings/plays/new/")

    page.get_by_label("Name").fill("Storage squeeze")
    page.get_by_label("Target plan").select_option(label="Pro")
    page.get_by_label("Trial days").fill("14")
    page.get_by_label("Email subject").fill("{{ account_name }}: more room on {{ target_plan }}")
    page.get_by_label("Email body").fill(
        "Hi,\n\n{{ metric }} is at {{ utilization }}, full around {{ projected_limit_date }}.\n\n"
        "{{ target_plan }} adds {{ price_delta }} a month{% if trial_days %}, with a {{ trial_days }}-day trial"
        "{% endif %}.\n\n{{ csm_name }}"
    )

    # The preview follows the form without a click.
    preview = page.locator("#play-preview")
    expect(preview.locator(".play-preview__subject")).to_have_text("Acme Analytics: more room on Pro")
    expect(preview).to_contain_text("Pro adds 70.00 USD a month, with a 14-day trial.")
    expect(preview).to_contain_text("Seats is at 92%, full around December 3, 2026.")
    screenshot(page, "settings-play-preview")

    # A hostile template shows its error in the preview while typing...
    page.get_by_label("Email body").fill("Hi {{ account.owner.password }}")
    expect(preview.locator(".play-preview__errors")).to_contain_text("dotted names are not allowed")
    # ...and saving it is refused, with the error next to the field.
    page.get_by_role("button", name="Create the play").click()
    expect(page.locator("#id_email_body_error")).to_contain_text("dotted names are not allowed")
    assert not Play.objects.filter(name="Storage squeeze").exists()
    screenshot(page, "settings-play-refused")

    page.get_by_label("Email body").fill("Hi,\n\n{{ metric }} is at {{ utilization }}.\n\n{{ csm_name }}")
    expect(preview.locator(".play-preview__body")).to_contain_text("Seats is at 92%.")
    page.get_by_role("button", name="Create the play").click()

    expect(page).to_have_url(re.compile(r"/settings/plays/\d+/$"))
    expect(page.get_by_text("Play “Storage squeeze” saved.")).to_be_visible()
    play = Play.objects.get(name="Storage squeeze")
    assert play.email_subject == "{{ account_name }}: more room on {{ target_plan }}"
    assert AuditEntry.objects.filter(object_type="playbooks.Play", action="created").count() == 1

    page.get_by_role("link", name="Plays", exact=True).first.click()
    expect(page.get_by_role("link", name="Storage squeeze")).to_be_visible()
    screenshot(page, "settings-plays")
    # The refused save answered 422 on purpose; anything else in the console is a problem.
    assert_no_console_problems([line for line in console if "status of 422" not in line])
